"""What a training run is built from: the device and autocast precision, the
learning-rate schedule, a fine-tuning start, the training forward, and telling an
out-of-memory error apart from other failures."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from asr.audio.files import SAMPLE_RATE, load_audio
from asr.data.manifest import Utterance, sample_indices
from asr.data.text import Tokenizer
from asr.features.frontend import check_stats_features, compute_cmvn_stats
from asr.features.spec_augment import SpecAugment, VocalTractWarp
from asr.model.acoustic import ASRModel
from asr.model.checkpoint import load_model, safe_load
from asr.train.config import OptimConfig, TrainConfig
from asr.train.vocab import fine_tune_vocab

log = logging.getLogger(__name__)


def init_from_checkpoint(
    path: str, cfg: TrainConfig, texts
) -> tuple[ASRModel, Tokenizer]:
    """A new model for ``cfg`` holding a trained checkpoint's weights (fine-tuning).

    The architecture must match (dropout and the intermediate-CTC loss may
    differ: they hold no weights); the vocabulary follows ``fine_tune_vocab``;
    the CMVN statistics come along."""
    trained, tokenizer, _ = load_model(path)
    free = ("dropout", "inter_ctc_weight", "inter_ctc_layer")
    shape = dataclasses.replace(trained.cfg, **{k: getattr(cfg.model, k) for k in free})
    if dataclasses.asdict(shape) != dataclasses.asdict(cfg.model):
        raise ValueError(
            f"trainer.init_from={path}: its model config {trained.cfg} differs from "
            f"model={cfg.model}"
        )
    tokenizer, state = fine_tune_vocab(
        path, tokenizer, trained.float().state_dict(), cfg, texts
    )
    model = ASRModel(cfg.model, cfg.features, len(tokenizer))
    model.load_state_dict(state)
    return model, tokenizer


def lr_lambda(cfg: OptimConfig, total_steps: int) -> Callable[[int], float]:
    """Linear warm-up to the peak, then cosine decay to ``final_lr_ratio``."""

    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * t)
        )

    return f


def is_oom(err: BaseException) -> bool:
    text = str(err)
    return (
        isinstance(err, torch.OutOfMemoryError)
        or "out of memory" in text
        or ("can't allocate memory" in text)
    )


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for trainer.precision on ``device``; None: fp32."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return torch.bfloat16 if precision == "bf16" else None


def oom_message(batch) -> str:
    return (
        f"out of memory on a batch of {len(batch.indices)} "
        f"utterances ({batch.wavs.shape[1] / SAMPLE_RATE:.1f} s long)"
    )


def ctc_loss_sum(
    model: ASRModel,
    log_probs: torch.Tensor,
    out_lens: torch.Tensor,
    inter: torch.Tensor | None,
    targets: torch.Tensor,
    target_lens: torch.Tensor,
) -> torch.Tensor:
    """The training loss summed over the batch (a 0-dim tensor): CTC of the last
    layer, mixed with the intermediate layer's by ``model.cfg.inter_ctc_weight``
    when ``inter`` is given. log_probs, inter: (B, T', V); targets (B, L)."""

    def ctc(lp: torch.Tensor) -> torch.Tensor:
        return nn.functional.ctc_loss(
            lp.float().transpose(0, 1),
            targets,
            out_lens,
            target_lens,
            blank=0,
            reduction="sum",
            zero_infinity=True,
        )

    if inter is None:
        return ctc(log_probs)
    w = model.cfg.inter_ctc_weight
    return (1 - w) * ctc(log_probs) + w * ctc(inter)


class TrainForward(nn.Module):
    """The training forward as one module call, so that DDP sees all of it:
    waveforms (B, S) -> features -> [vocal tract warp] -> [SpecAugment] ->
    log-probs (B, T', V), lens, and the intermediate-CTC log-probs (or None;
    ASRModel.forward_train). The warp applies from the first step, like speed
    perturbation; SpecAugment only when ``use_specaug``."""

    def __init__(
        self,
        model: ASRModel,
        specaug: SpecAugment,
        warp: VocalTractWarp | None = None,
    ):
        super().__init__()
        self.model, self.specaug, self.warp = model, specaug, warp

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor, use_specaug: bool):
        feats, feat_lens = self.model.frontend(wavs, wav_lens)
        if self.warp is not None:
            cmvn = self.model.frontend.cmvn
            feats = self.warp(feats, cmvn.mean, cmvn.std)
        if use_specaug:
            feats = self.specaug(feats)
        return self.model.forward_train(feats, feat_lens)


def training_cmvn_stats(
    cfg: TrainConfig, train_utts: Sequence[Utterance]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The feature statistics a run normalises with: data.cmvn_stats's file
    (checked against the run's features), else measured on up to
    data.cmvn_max_utterances training utterances drawn with the run's seed."""
    if cfg.data.cmvn_stats:
        stats = safe_load(cfg.data.cmvn_stats)
        check_stats_features(stats, cfg.features, cfg.data.cmvn_stats)
        return stats["mean"], stats["std"]
    seed = cfg.trainer.seed
    picked = sample_indices(len(train_utts), cfg.data.cmvn_max_utterances, seed)
    log.info(
        "computing feature statistics over %d of %d utterances",
        len(picked),
        len(train_utts),
    )
    return compute_cmvn_stats(
        (load_audio(train_utts[i].audio_filepath) for i in picked), cfg.features
    )

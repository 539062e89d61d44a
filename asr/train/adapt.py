"""Speaker adaptation (enrolment): fine-tune a trained model on a few recordings
of one voice, so that it learns how that speaker says the words.

Models trained on a handful of speakers confuse the words of a new one in ways no
decoder can repair (a held-out FSDD speaker's *three* heard as *eight* 42 times
of 50). A few labelled clips of that speaker fix most of it: the whole model is
fine-tuned on them for a fixed number of steps, each clip at a random speed, with
a pull back towards the starting weights so that it keeps what it knew.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from asr.audio.files import SAMPLE_RATE, AudioError
from asr.audio.padding import load_padded
from asr.data.dataset import collate, speed_perturb
from asr.data.manifest import Utterance
from asr.data.text import Tokenizer
from asr.features.augment import AugmentConfig
from asr.features.spec_augment import SpecAugment
from asr.model.acoustic import ASRModel
from asr.train.adapt_config import AdaptConfig
from asr.train.setup import TrainForward, ctc_loss_sum


@dataclass
class AdaptResult:
    losses: list[float]  # mean CTC loss per clip, one per step
    n_utterances: int
    audio_seconds: float
    speakers: list[str]
    wall_seconds: float

    def metadata(self, cfg: AdaptConfig, source: str) -> dict:
        """What a checkpoint records of this adaptation (metadata "adaptation")."""
        return {
            "from": source,
            "utterances": self.n_utterances,
            "audio_seconds": round(self.audio_seconds, 2),
            "speakers": self.speakers,
            "steps": cfg.steps,
            "lr": cfg.lr,
            "anchor": cfg.anchor,
            "loss_first": round(self.losses[0], 4),
            "loss_last": round(self.losses[-1], 4),
        }


def check_texts(utts: Sequence[Utterance], tokenizer: Tokenizer) -> None:
    """ValueError unless every clip has a transcript the vocabulary can spell."""
    if not utts:
        raise ValueError("no clips to adapt on")
    known = set(tokenizer.symbols)
    for u in utts:
        if not tokenizer.encode(u.text):
            raise ValueError(f"{u.audio_filepath}: empty transcript")
        unknown = set(u.text) - known
        if unknown:
            raise ValueError(
                f"{u.audio_filepath}: the model cannot spell {sorted(unknown)} "
                f"(in {u.text!r}); its vocabulary is {''.join(tokenizer.symbols[1:])!r}"
            )


def load_clips(utts: Sequence[Utterance], pad_ms: float) -> list[np.ndarray]:
    """The clips as the model reads them at inference: edge-padded to ``pad_ms``
    (the model's own default) where their pauses are shorter."""
    try:
        return [load_padded(u.audio_filepath, pad_ms) for u in utts]
    except AudioError as err:
        raise ValueError(f"cannot adapt on unreadable audio: {err}") from None


def step_batches(n: int, batch_size: int, steps: int, rng: random.Random):
    """``steps`` lists of clip indices: shuffled passes over ``range(n)``, cut
    into batches of ``batch_size`` (every clip once per pass)."""
    order: list[int] = []
    for _ in range(steps):
        if len(order) < min(batch_size, n):
            order = order + rng.sample(range(n), n)
        yield order[:batch_size]
        order = order[batch_size:]


def adapt(
    model: ASRModel,
    tokenizer: Tokenizer,
    utts: Sequence[Utterance],
    cfg: AdaptConfig = AdaptConfig(),
    on_step: Callable[[int, float], None] | None = None,
) -> AdaptResult:
    """Fine-tune ``model`` in place on ``utts`` (transcribed clips of the voice to
    adapt to); it is left in eval mode. Same inputs and seed, same weights."""
    check_texts(utts, tokenizer)
    wavs = load_clips(utts, model.decoding_defaults.get("pad_ms", 0.0))
    targets = [torch.tensor(tokenizer.encode(u.text)) for u in utts]
    device = next(model.parameters()).device
    start = [p.detach().clone() for p in model.parameters()] if cfg.anchor else []
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    net = TrainForward(model, SpecAugment(AugmentConfig()))
    rng, speeds = random.Random(cfg.seed), cfg.speed_factors
    torch.manual_seed(cfg.seed)  # dropout and SpecAugment masks
    # subnormal floats in the first steps' gradients and Adam moments made each
    # step 80x slower on x86 CPUs (1.6 s instead of 0.02 s for a small model);
    # flushing them to zero changes nothing else
    torch.set_flush_denormal(True)
    losses, t0 = [], time.perf_counter()
    model.train()
    try:
        for step, idx in enumerate(
            step_batches(len(wavs), cfg.batch_size, cfg.steps, rng)
        ):
            items = [
                (
                    speed_perturb(torch.from_numpy(wavs[i]), rng.choice(speeds)),
                    targets[i],
                    i,
                )
                for i in idx
            ]
            batch = collate(items).to(device)
            log_probs, out_lens, inter = net(batch.wavs, batch.wav_lens, cfg.specaug)
            loss = ctc_loss_sum(
                model, log_probs, out_lens, inter, batch.targets, batch.target_lens
            ) / len(idx)
            losses.append(loss.item())
            if cfg.anchor:
                loss = loss + cfg.anchor * sum(
                    (p - p0).square().sum() for p, p0 in zip(model.parameters(), start)
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if on_step is not None:
                on_step(step, losses[-1])
    finally:
        model.eval()
    return AdaptResult(
        losses=losses,
        n_utterances=len(utts),
        audio_seconds=sum(len(w) for w in wavs) / SAMPLE_RATE,
        speakers=sorted({u.speaker for u in utts if u.speaker}),
        wall_seconds=time.perf_counter() - t0,
    )

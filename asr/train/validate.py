"""What a training run reports after each epoch: greedy WER and CER on the dev
set (shared out across distributed ranks), logged and written to TensorBoard."""

from __future__ import annotations

import logging

import torch
from torch import nn

from asr.data.dataset import SpeechDataset, collate
from asr.data.manifest import Utterance
from asr.data.sampler import DurationBatchSampler
from asr.data.text import Tokenizer
from asr.decode.metrics import score
from asr.train.distributed import Dist
from asr.transcribe import Transcriber

log = logging.getLogger(__name__)


def validate_greedy(
    model: nn.Module,
    tokenizer: Tokenizer,
    dev_utts: list[Utterance],
    batch_seconds: float,
    dist: Dist,
) -> dict:
    """Greedy-decode the dev set -> {"wer", "cer", "example": (ref, hyp)}.
    Distributed, each rank decodes every W-th batch and all score the gathered
    hypotheses, in one order."""
    utts = sorted(dev_utts, key=lambda u: u.duration)
    sampler = DurationBatchSampler(
        [u.duration for u in utts], batch_seconds, shuffle=False
    )
    greedy = Transcriber(model, tokenizer)
    decoded = []
    for batch in torch.utils.data.DataLoader(
        SpeechDataset(utts, tokenizer),
        batch_sampler=sampler.batches[dist.rank :: dist.world_size],
        collate_fn=collate,
        generator=torch.Generator(),  # leaves the global RNG alone
    ):
        if batch is None:
            continue
        hyps = greedy.decode_batch(batch.wavs, batch.wav_lens)
        decoded += [(i, hyp.text) for i, hyp in zip(batch.indices, hyps)]
    decoded = sorted(x for share in dist.gather(decoded) for x in share)
    # in the model's own units: a phone model's words are pronunciations, so its
    # "WER" is a phone error rate (words apart or not)
    refs = [tokenizer.decode(tokenizer.encode(utts[i].text)) for i, _ in decoded]
    hyps = [h for _, h in decoded]
    report = score(refs, hyps)
    return {
        "wer": report.wer,
        "cer": report.cer,
        "label": tokenizer.error_label,
        "example": (refs[-1], hyps[-1]),
    }


def log_epoch(writer, epoch: int, stats: dict, dev: dict, seconds: float) -> None:
    """One epoch's training speed and dev figures to the log and to TensorBoard
    (``writer``: a SummaryWriter, or None)."""
    if stats:
        log.info(
            "epoch %d: train loss %.3f, %.0f s of audio in %.1f s (%.1f s/s)",
            epoch,
            stats["train_loss"],
            stats["audio_seconds"],
            stats["train_seconds"],
            stats["audio_seconds"] / max(stats["train_seconds"], 1e-9),
        )
    log.info(
        "epoch %d: dev %s %.2f%% CER %.2f%% (validation %.1fs) | %s -> %s",
        epoch,
        dev.get("label", "WER"),
        100 * dev["wer"],
        100 * dev["cer"],
        seconds,
        *dev["example"],
    )
    if writer is not None:
        writer.add_scalar("dev/wer", dev["wer"], epoch)
        writer.add_scalar("dev/cer", dev["cer"], epoch)

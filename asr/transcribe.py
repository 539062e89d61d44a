"""Batched inference: waveforms or files -> hypotheses, and manifest evaluation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.audio import SAMPLE_RATE, AudioError, load_audio
from asr.decoding import Hypothesis, greedy_decode
from asr.model import ASRModel
from asr.text import CharTokenizer


@torch.inference_mode()
def decode_batch(
    model: ASRModel,
    tokenizer: CharTokenizer,
    wavs: torch.Tensor,
    wav_lens: torch.Tensor,
) -> list[Hypothesis]:
    """wavs: shape = (B, S) zero-padded 16 kHz, wav_lens (B,) -> B hypotheses."""
    device = next(model.parameters()).device
    log_probs, out_lens = model(wavs.to(device), wav_lens.to(device))
    return greedy_decode(log_probs.cpu(), out_lens.cpu(), tokenizer)


def transcribe_waveforms(
    model: ASRModel,
    tokenizer: CharTokenizer,
    waveforms: Sequence[np.ndarray],
    batch_seconds: float = 120.0,
) -> list[Hypothesis]:
    """Transcribe waveforms in batches of similar length; results in input order."""
    order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))
    results: list[Hypothesis | None] = [None] * len(waveforms)
    for batch in _length_batches(order, [len(w) for w in waveforms], batch_seconds):
        wavs = [torch.from_numpy(waveforms[i]) for i in batch]
        padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
        lens = torch.tensor([len(w) for w in wavs])
        for i, hyp in zip(batch, decode_batch(model, tokenizer, padded, lens)):
            results[i] = hyp
    return results  # type: ignore[return-value]


@dataclass
class FileResult:
    path: str
    duration: float = 0.0
    hypothesis: Hypothesis | None = None
    error: str | None = None


def transcribe_files(
    model: ASRModel,
    tokenizer: CharTokenizer,
    paths: Iterable[str | Path],
    batch_seconds: float = 120.0,
    files_per_chunk: int = 64,
) -> Iterator[FileResult]:
    """Yield one FileResult per path, in order; unreadable files carry ``error``.

    Files are read ``files_per_chunk`` at a time so memory stays bounded.
    """
    chunk: list[str] = []
    for path in paths:
        chunk.append(str(path))
        if len(chunk) == files_per_chunk:
            yield from _transcribe_chunk(model, tokenizer, chunk, batch_seconds)
            chunk = []
    if chunk:
        yield from _transcribe_chunk(model, tokenizer, chunk, batch_seconds)


def _transcribe_chunk(model, tokenizer, paths, batch_seconds):
    results, good, wavs = [], [], []
    for p in paths:
        try:
            wav = load_audio(p)
        except AudioError as err:
            results.append(FileResult(p, error=str(err)))
            continue
        results.append(FileResult(p, duration=len(wav) / SAMPLE_RATE))
        good.append(len(results) - 1)
        wavs.append(wav)
    for k, hyp in zip(
        good, transcribe_waveforms(model, tokenizer, wavs, batch_seconds)
    ):
        results[k].hypothesis = hyp
    yield from results


def _length_batches(order: list[int], lengths: list[int], batch_seconds: float):
    """Split ``order`` (sorted by length) so padded batch audio stays under budget."""
    budget = batch_seconds * SAMPLE_RATE
    batch: list[int] = []
    for i in order:
        if batch and lengths[i] * (len(batch) + 1) > budget:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch

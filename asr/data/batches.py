"""Inference batches without torch: waveforms grouped by length into zero-padded
numpy arrays whose padded audio stays under a budget of seconds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from asr.audio.files import SAMPLE_RATE


def padded_arrays(
    waveforms: Sequence[np.ndarray], batch_seconds: float
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """Yield (indices, zero-padded float32 (B, S), lengths int64 (B,)) over
    ``waveforms`` in batches of similar length, shortest first."""
    lengths = [len(w) for w in waveforms]
    order = sorted(range(len(waveforms)), key=lengths.__getitem__)
    for batch in length_batches(order, lengths, batch_seconds):
        lens = np.array([lengths[i] for i in batch], dtype=np.int64)
        padded = np.zeros((len(batch), int(lens.max())), dtype=np.float32)
        for row, i in enumerate(batch):
            padded[row, : lens[row]] = waveforms[i]
        yield batch, padded, lens


def length_batches(order: list[int], lengths: list[int], batch_seconds: float):
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

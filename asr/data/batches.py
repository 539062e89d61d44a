"""Inference batches without torch: waveforms grouped by length into zero-padded
numpy arrays whose padded audio stays under a budget of seconds."""

from __future__ import annotations

import itertools
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


def evenest_batch(lengths: Sequence[int], batch_seconds: float) -> list[int]:
    """Indices of the batch to decode first out of a pool of waveforms of these
    lengths: of the runs of length-sorted items whose padded audio fits the
    budget, the one with the least padding per second of audio (then the most
    audio). Runs that fill under 3/4 of the budget count only when no run fills
    more. Sorted by length; O(n log n)."""
    budget = batch_seconds * SAMPLE_RATE
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    sizes = [lengths[i] for i in order]
    total = [0, *itertools.accumulate(sizes)]
    best: tuple[bool, float, int] | None = None
    chosen = (0, 0)
    end = 0  # the longest run from each start ends no earlier than the last one's
    for start in range(len(sizes)):
        end = max(end, start + 1)
        while end < len(sizes) and (end - start + 1) * sizes[end] <= budget:
            end += 1
        padded, audio = (end - start) * sizes[end - 1], total[end] - total[start]
        key = (padded >= 0.75 * budget, audio / max(padded, 1), audio)
        if best is None or key > best:
            best, chosen = key, (start, end)
    return order[chosen[0] : chosen[1]]

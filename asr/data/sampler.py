"""Duration-bucketed batch samplers: batches capped in audio seconds and size,
shuffled per epoch (short-to-long first with SortaGrad), resumable mid-epoch, and
split evenly across distributed ranks."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch


class DurationBatchSampler(torch.utils.data.Sampler):
    """Batches of similar duration, capped in total audio seconds and in size.

    Utterances are sorted by duration and cut into batches; each epoch the order
    of batches is shuffled with (seed, epoch), except in the first epoch when
    ``sortagrad`` keeps them short-to-long. ``start_batch`` skips batches already
    trained on when an interrupted epoch resumes.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        max_size: int = 0,
        shuffle: bool = True,
        sortagrad: bool = False,
        seed: int = 0,
    ):
        self.max_seconds, self.max_size = max_seconds, max_size
        self.shuffle, self.sortagrad, self.seed = shuffle, sortagrad, seed
        self.epoch, self.start_batch = 0, 0
        self.batches = self._make_batches(np.asarray(durations, dtype=float))

    def _make_batches(self, durations: np.ndarray) -> list[list[int]]:
        batches, current, seconds = [], [], 0.0
        for i in np.argsort(durations, kind="stable").tolist():
            full = self.max_size and len(current) >= self.max_size
            if current and (seconds + durations[i] > self.max_seconds or full):
                batches.append(current)
                current, seconds = [], 0.0
            current.append(i)
            seconds += durations[i]
        if current:
            batches.append(current)
        return batches

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def epoch_batches(self) -> list[list[int]]:
        order = list(range(len(self.batches)))
        if self.shuffle and not (self.sortagrad and self.epoch == 0):
            random.Random(self.seed * 100003 + self.epoch).shuffle(order)
        return [self.batches[k] for k in order]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches()[self.start_batch :]

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_batch


class DistributedDurationBatchSampler(DurationBatchSampler):
    """One rank's share of the duration-bucketed batches (DistributedDataParallel).

    Every rank builds the same batches and the same (seed, epoch) order, then rank r
    takes batches r, r + W, r + 2W, ... of it: step s trains on W neighbouring
    batches at once (short-to-long in a ``sortagrad`` first epoch), the shares are
    disjoint and together hold every utterance once an epoch. The largest batches
    are halved until the count is a multiple of W, so every rank takes as many
    steps and none waits alone at the end of an epoch. ``start_batch`` counts this
    rank's steps; with W = 1 this is DurationBatchSampler.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        max_size: int = 0,
        shuffle: bool = True,
        sortagrad: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        super().__init__(durations, max_seconds, max_size, shuffle, sortagrad, seed)
        self.rank, self.world_size = rank, world_size
        self.batches = _split_to_multiple(self.batches, world_size)

    def epoch_batches(self) -> list[list[int]]:
        return super().epoch_batches()[self.rank :: self.world_size]

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches) // self.world_size


def _split_to_multiple(batches: list[list[int]], k: int) -> list[list[int]]:
    """Halve the largest batch (the first of equals) until len(batches) % k == 0;
    when all hold one utterance, merge the two shortest instead."""
    batches = list(batches)
    if sum(map(len, batches)) < k:
        raise ValueError(f"fewer utterances than the {k} processes")
    while len(batches) % k:
        j = max(range(len(batches)), key=lambda n: len(batches[n]))
        if len(batches[j]) == 1:
            for _ in range(len(batches) % k):
                batches[0:2] = [batches[0] + batches[1]]
            break
        half = len(batches[j]) // 2
        batches[j : j + 1] = [batches[j][:half], batches[j][half:]]
    return batches

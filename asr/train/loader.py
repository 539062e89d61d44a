"""The training DataLoader: worker processes sized for the device, pinned batches on
CUDA, and one loader for the whole run whose (persistent) workers still follow
the epoch: the epoch travels with every index, since workers hold copies of the
dataset that the main process can no longer reach."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch

from asr.data.dataset import SpeechDataset, collate
from asr.data.sampler import DurationBatchSampler
from asr.train.config import DataConfig

MAX_CUDA_WORKERS = 8


def loader_options(cfg: DataConfig, device: torch.device) -> dict[str, Any]:
    """DataLoader keyword arguments for ``device``.

    num_workers -1 (auto): 1 on CPU (decoding overlaps the step without taking a
    core from the model), on CUDA this process's share of the cores less one, at
    most 8. prefetch_factor 0 (auto): 2 batches per worker on CPU, 4 on CUDA.
    """
    cuda = device.type == "cuda"
    workers = cfg.num_workers
    if workers < 0:
        per_process = (os.cpu_count() or 1) // int(
            os.environ.get("LOCAL_WORLD_SIZE", 1)
        )
        workers = min(MAX_CUDA_WORKERS, max(1, per_process - 1)) if cuda else 1
    opts: dict[str, Any] = {"num_workers": workers, "pin_memory": cuda}
    if workers > 0:
        opts["prefetch_factor"] = cfg.prefetch_factor or (4 if cuda else 2)
        opts["persistent_workers"] = cfg.persistent_workers
    return opts


class EpochBatches(torch.utils.data.Sampler):
    """A batch sampler's batches as (epoch, index) pairs (see EpochDataset)."""

    def __init__(self, sampler: DurationBatchSampler):
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.sampler.epoch
        for batch in self.sampler:
            yield [(epoch, i) for i in batch]

    def __len__(self) -> int:
        return len(self.sampler)


class EpochDataset(torch.utils.data.Dataset):
    """(epoch, i) -> the dataset's item i as augmented in that epoch."""

    def __init__(self, dataset: SpeechDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        self.dataset.epoch, i = key
        return self.dataset[i]


def train_loader(
    dataset: SpeechDataset,
    sampler: DurationBatchSampler,
    cfg: DataConfig,
    device: torch.device,
    seed: int,
) -> torch.utils.data.DataLoader:
    """One loader for all epochs: call ``sampler.set_epoch`` before each ``iter``.

    Workers draw their base seed from a generator of their own, so the global RNG
    (dropout, SpecAugment) stays in step with an interrupted-and-resumed run.
    """
    return torch.utils.data.DataLoader(
        EpochDataset(dataset),
        batch_sampler=EpochBatches(sampler),
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
        **loader_options(cfg, device),
    )

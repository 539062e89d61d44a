from __future__ import annotations

import torch

from asr.data.dataset import SpeechDataset
from asr.data.manifest import Utterance
from asr.data.sampler import DurationBatchSampler
from asr.data.text import CharTokenizer
from asr.train.config import DataConfig
from asr.train.loader import loader_options, train_loader
from tests.conftest import clip_rows

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_loader_options_for_cpu_and_cuda(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert loader_options(DataConfig(), CPU) == {"num_workers": 0, "pin_memory": False}
    auto = DataConfig(num_workers=-1)
    assert loader_options(auto, CPU) == {
        "num_workers": 1,
        "pin_memory": False,
        "prefetch_factor": 2,
        "persistent_workers": True,
    }
    assert loader_options(auto, CUDA) == {
        "num_workers": 8,
        "pin_memory": True,
        "prefetch_factor": 4,
        "persistent_workers": True,
    }
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # 4 GPUs share the 16 cores
    assert loader_options(auto, CUDA)["num_workers"] == 3
    fixed = DataConfig(num_workers=2, prefetch_factor=6, persistent_workers=False)
    assert loader_options(fixed, CUDA)["prefetch_factor"] == 6
    assert loader_options(fixed, CUDA)["persistent_workers"] is False


def test_persistent_workers_follow_the_epoch():
    """Speed perturbation depends on the epoch; the workers' dataset copies too."""
    utts = [Utterance(str(p), 1.0, t) for p, t in clip_rows()[:2]]
    tok = CharTokenizer.build(u.text for u in utts)
    ds = SpeechDataset(utts, tok, speed_factors=[0.8, 0.9, 1.1, 1.2], seed=1)
    sampler = DurationBatchSampler([1.0, 1.0], 10.0, shuffle=False)
    cfg = DataConfig(num_workers=1, persistent_workers=True)
    loader = train_loader(ds, sampler, cfg, CPU, seed=0)
    lens = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        (batch,) = list(loader)
        ds.epoch = epoch
        assert batch.wav_lens.tolist() == [len(ds[i][0]) for i in batch.indices]
        lens.append(batch.wav_lens.tolist())
    assert len({tuple(x) for x in lens}) > 1  # the epochs did differ

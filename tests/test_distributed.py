"""Distributed training: the sampler's shares, DDP (2 gloo processes on CPU) against
one process that sees the union of the ranks' batches, and resume under DDP."""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from asr.data.sampler import DistributedDurationBatchSampler, DurationBatchSampler
from asr.features.augment import AugmentConfig
from asr.model.acoustic import ModelConfig
from asr.model.checkpoint import load_model, safe_load
from asr.train.config import TrainConfig
from asr.train.distributed import close_distributed
from asr.train.loader import train_loader
from asr.train.trainer import Trainer
from tests.test_training import StopAt, tiny_config

WORLD = 2
EPOCHS = 3  # 2 steps an epoch: the 5 clips make 4 batches (2 per rank)


# ---- the sampler ----------------------------------------------------------------
def shares(durations, epoch: int, world: int, **kw) -> list[list[list[int]]]:
    out = []
    for rank in range(world):
        s = DistributedDurationBatchSampler(
            durations, 5.0, 3, rank=rank, world_size=world, **kw
        )
        s.set_epoch(epoch)
        out.append(list(s))
    return out


@pytest.mark.parametrize("world", [2, 3])
def test_shares_are_disjoint_complete_equal_and_reshuffled(world):
    durations = [random.Random(n).uniform(0.5, 4.0) for n in range(37)]
    kw = {"shuffle": True, "sortagrad": True, "seed": 3}
    epochs = [shares(durations, e, world, **kw) for e in range(3)]
    for per_rank in epochs:
        assert len({len(share) for share in per_rank}) == 1  # equal steps
        every = sorted(i for share in per_rank for batch in share for i in batch)
        assert every == list(range(len(durations)))  # disjoint and complete
    # sortagrad: epoch 0 goes short-to-long, step by step across the ranks
    steps = [sum((s[k] for s in epochs[0]), []) for k in range(len(epochs[0][0]))]
    for a, b in zip(steps, steps[1:]):
        assert max(durations[i] for i in a) <= min(durations[i] for i in b)
    # later epochs: reshuffled from (seed, epoch), the same on every rebuild
    assert epochs[1] != epochs[2] and epochs[1] != epochs[0]
    assert shares(durations, 1, world, **kw) == epochs[1]
    assert shares(durations, 1, world, **{**kw, "seed": 4}) != epochs[1]


def test_start_batch_resumes_a_share_and_one_rank_is_the_plain_sampler():
    durations = [random.Random(n).uniform(0.5, 4.0) for n in range(23)]
    s = DistributedDurationBatchSampler(durations, 5.0, 3, rank=1, world_size=2)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start_batch=3)
    assert list(s) == full[3:] and len(s) == s.steps_per_epoch - 3
    one = DistributedDurationBatchSampler(durations, 5.0, 3, seed=5, world_size=1)
    plain = DurationBatchSampler(durations, 5.0, 3, seed=5)
    for epoch in range(3):
        one.set_epoch(epoch)
        plain.set_epoch(epoch)
        assert list(one) == list(plain)


def test_single_utterance_batches_are_merged_and_too_few_refused():
    s = DistributedDurationBatchSampler([1.0] * 5, 1.0, 1, rank=0, world_size=2)
    assert s.steps_per_epoch == 2 and sorted(sum(s.batches, [])) == list(range(5))
    with pytest.raises(ValueError, match="fewer utterances"):
        DistributedDurationBatchSampler([1.0], 1.0, 1, rank=0, world_size=2)


# ---- DDP training ---------------------------------------------------------------
def exact_config(manifest: Path, out_dir: Path) -> TrainConfig:
    """No randomness besides the data order: no dropout, no augmentation, and a
    constant learning rate (a reference with other step counts gets the same)."""
    cfg = tiny_config(manifest, out_dir, epochs=EPOCHS, augment=False)
    cfg.model = ModelConfig(conv_channels=8, hidden_size=32, n_layers=2, dropout=0.0)
    cfg.augment = AugmentConfig(speed_factors=[], freq_masks=0, time_masks=0)
    cfg.optim.warmup_steps, cfg.optim.final_lr_ratio = 1, 1.0
    cfg.trainer.threads = 1
    return cfg


class Recorder:
    """on_step: the (global) loss after every step; ``stop_at`` stops there."""

    def __init__(self, stop_at: int = 0):
        self.losses: list[float] = []
        self.stop = StopAt(stop_at)

    def __call__(self, trainer: Trainer) -> None:
        self.losses.append(trainer.last_loss)
        self.stop(trainer)


def _worker(rank: int, port: int, manifest: str, out: str) -> None:
    """One rank: a straight run, then a run stopped at step 3 and resumed."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    out_dir = Path(out)
    try:
        rec = Recorder()
        Trainer(exact_config(Path(manifest), out_dir / "straight")).fit(rec)
        torch.save(rec.losses, out_dir / f"losses.{rank}.pt")
        cfg = exact_config(Path(manifest), out_dir / "resumed")
        with pytest.raises(KeyboardInterrupt):
            Trainer(cfg).fit(Recorder(stop_at=3))
        cfg.trainer.resume = True
        Trainer(cfg).fit()
    finally:
        close_distributed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """Both ranks' runs (module-scoped: one spawn serves every DDP test)."""
    import soundfile as sf

    from asr.data.manifest import Utterance, write_manifest
    from tests.conftest import clip_rows

    tmp = tmp_path_factory.mktemp("ddp")
    utts = [Utterance(str(p), sf.info(str(p)).duration, t) for p, t in clip_rows()]
    write_manifest(tmp / "clips.jsonl", utts)
    ctx = mp.spawn(
        _worker,
        args=(free_port(), str(tmp / "clips.jsonl"), str(tmp)),
        nprocs=WORLD,
        join=False,
    )
    deadline = time.monotonic() + 240
    while not ctx.join(timeout=2):
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail("the DDP processes did not finish in time")
    return tmp


class UnionSampler:
    """What one process must see to match DDP: each step, all ranks' batches."""

    def __init__(self, durations, cfg: TrainConfig):
        self.shares = [
            DistributedDurationBatchSampler(
                durations,
                cfg.data.max_batch_seconds,
                cfg.data.max_batch_size,
                sortagrad=cfg.data.sortagrad,
                seed=cfg.trainer.seed,
                rank=r,
                world_size=WORLD,
            )
            for r in range(WORLD)
        ]
        self.epoch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        for s in self.shares:
            s.set_epoch(epoch, start_batch)

    def __iter__(self):
        for batches in zip(*self.shares):
            yield sum(batches, [])

    def __len__(self) -> int:
        return len(self.shares[0])


def test_ddp_matches_one_process_on_the_global_batches(ddp_runs, tmp_path):
    manifest = ddp_runs / "clips.jsonl"
    cfg = exact_config(manifest, tmp_path / "single")
    trainer = Trainer(cfg)
    utts = trainer.train_utts
    trainer.sampler = UnionSampler([utts[i].duration for i in range(len(utts))], cfg)
    trainer.loader = train_loader(
        trainer.dataset, trainer.sampler, cfg.data, trainer.device, 0
    )
    rec = Recorder()
    trainer.fit(rec)
    ddp_losses = [torch.load(ddp_runs / f"losses.{r}.pt") for r in range(WORLD)]
    assert len(rec.losses) == EPOCHS * 2
    assert ddp_losses[0] == ddp_losses[1]  # the reduced loss, the same on all ranks
    assert ddp_losses[0] == pytest.approx(rec.losses, rel=1e-4)
    assert rec.losses[-1] < rec.losses[0]  # it trained
    single = trainer.model.state_dict()
    ddp = load_model(ddp_runs / "straight" / "last.pt")[0].state_dict()
    for k in single:  # Adam magnifies rounding in the odd near-zero gradient
        assert (ddp[k] - single[k]).norm() <= 1e-4 * single[k].norm() + 1e-7, k
    # dev decoding split over the ranks scores like one process on the same weights
    trainer.model.load_state_dict(ddp)
    history = safe_load(ddp_runs / "straight" / "last.state.pt")["progress"]["history"]
    assert trainer.validate()["wer"] == history[-1]["dev_wer"]


def test_only_rank_0_writes_and_the_state_holds_every_rank(ddp_runs):
    run = ddp_runs / "straight"
    assert sorted(p.name for p in run.iterdir()) == [
        "best.pt",
        "last.pt",
        "last.state.pt",
        "summary.json",
        "tensorboard",
    ]
    assert len(list((run / "tensorboard").iterdir())) == 1  # one events file
    state = safe_load(run / "last.state.pt")
    assert state["progress"]["world_size"] == WORLD
    assert len(state["rng_ranks"]) == WORLD
    assert state["progress"]["history"][-1]["audio_seconds"] == pytest.approx(10.4)


def test_ddp_resume_gives_the_same_weights(ddp_runs):
    a = load_model(ddp_runs / "straight" / "last.pt")[0].state_dict()
    b = load_model(ddp_runs / "resumed" / "last.pt")[0].state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

"""What a training run carries across an interruption: its progress, the RNG
states, the resume file (last.state.pt) holding them with the model, optimizer
and scheduler, and signals turned into a stop at the next step boundary."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from asr.model.checkpoint import atomic_save, safe_load
from asr.train.distributed import Dist

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where training stands; saved with the resume state."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_wer: float = math.inf
    skipped_batches: int = 0
    history: list = field(default_factory=list)
    world_size: int = 1  # processes that trained (a step's batch is one per process)


class Interrupted(Exception):
    """Raised inside the loop on SIGINT/SIGTERM after the state is saved."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    random.setstate(_as_tuple(rng["python"]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _as_tuple(x):
    """random.setstate needs tuples where a round trip may give lists."""
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


class signals_interrupt:
    """While training, SIGINT and SIGTERM only raise a flag; the loop stops at the
    next step boundary, so the saved state is never half a step. A second signal
    stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self.old: dict = {}

    def __enter__(self):
        try:
            for sig in self.SIGNALS:
                self.old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self.old = {}
        return self

    def _handle(self, signum, frame):
        if self.received is not None:
            raise Interrupted(f"signal {signum} (second)")
        self.received = signum

    def check(self) -> None:
        if self.received is not None:
            raise Interrupted(f"signal {self.received}")

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old)


def save_run_state(
    path: Path, dist: Dist, model: nn.Module, optimizer, scheduler, progress: Progress
) -> None:
    """Write the resume file. Distributed: rank 0 writes it, with every rank's
    RNG state (a collective: all ranks must call it)."""
    rng = rng_state()
    every_rank = dist.gather(rng)
    if not dist.is_main:
        return
    progress.world_size = dist.world_size
    atomic_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "progress": dataclasses.asdict(progress),
            "rng": rng,
            **({"rng_ranks": every_rank} if dist.active else {}),
        },
        path,
    )


def load_run_state(
    path: Path, dist: Dist, model: nn.Module, optimizer, scheduler
) -> Progress:
    """Restore the resume file into the given objects; returns the progress.
    Rank 0 reads it and sends it to all (no shared disk needed)."""
    s = dist.broadcast(safe_load(path) if dist.is_main else None)
    model.load_state_dict(s["model"])
    optimizer.load_state_dict(s["optimizer"])
    scheduler.load_state_dict(s["scheduler"])
    p = Progress(**s["progress"])
    ranks = s.get("rng_ranks", [])
    same_world = len(ranks) == dist.world_size
    set_rng_state(ranks[dist.rank] if same_world else s["rng"])
    if p.step_in_epoch and p.world_size != dist.world_size:
        log.warning(
            "the state was saved by %d processes, not %d: epoch %d starts over",
            p.world_size,
            dist.world_size,
            p.epoch + 1,
        )
        p.step_in_epoch = 0
    log.info("resumed at epoch %d step %d", p.epoch, p.step_in_epoch)
    return p

"""What a training run carries across an interruption: its progress, the RNG
states, and signals turned into a stop at the next step boundary."""

from __future__ import annotations

import math
import random
import signal
from dataclasses import dataclass, field

import torch


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

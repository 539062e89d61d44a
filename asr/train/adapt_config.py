"""The settings of speaker adaptation (asr.train.adapt), apart from the training
code so that `asr adapt --help` shows them without loading torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdaptConfig:
    steps: int = 60
    lr: float = 1e-3  # Adam, constant
    batch_size: int = 32  # clips per step (all of them when there are fewer)
    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    specaug: bool = True  # SpecAugment as in training (AugmentConfig defaults)
    # weight of the squared distance to the starting weights (L2-SP): keeps what
    # the model knew. The bundled model on 30 of nicolas's digits: AN4 dev WER
    # 6.76% -> 9.98% without it, 7.89% with 0.01 (scripts/bench_adapt.py)
    anchor: float = 0.01
    grad_clip: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")
        if self.lr <= 0 or self.anchor < 0:
            raise ValueError("lr must be > 0 and anchor >= 0")
        if not self.speed_factors or min(self.speed_factors) <= 0:
            raise ValueError("speed_factors must be positive")

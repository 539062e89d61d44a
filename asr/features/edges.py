"""Augmentations at a clip's edges: trimming to the speech, cropping into it and
padding with faint noise (the numpy core, shared with the edge padding inference
applies, is asr.audio.padding)."""

from __future__ import annotations

import random

import torch

from asr.audio.files import SAMPLE_RATE
from asr.audio.padding import FRAME, SPEECH_DB, add_pauses, speech_span
from asr.features.augment import AugmentConfig, check_probability, happens


class _EdgeChange:
    """A change at a waveform's edges, applied with probability ``prob``, of at
    most ``max_ms`` per side; ``KIND`` names its AugmentConfig fields."""

    KIND = ""

    def __init__(self, prob: float, max_ms: float):
        what = f"edge-{self.KIND}"
        check_probability(what, prob)
        if max_ms < 0:
            raise ValueError(f"{what} length must be >= 0 ms, not {max_ms}")
        self.prob, self.max_ms = prob, max_ms

    @classmethod
    def from_config(cls, cfg: AugmentConfig):
        """None when the config's edge_<kind>_prob is 0."""
        prob = getattr(cfg, f"edge_{cls.KIND}_prob")
        if prob <= 0.0:
            return None
        return cls(prob, getattr(cfg, f"edge_{cls.KIND}_max_ms"))


class EdgeTrim(_EdgeChange):
    """Cut the silence before and after the speech of a waveform, leaving a random
    margin of 0 to ``max_ms`` on each side.

    Recordings with silence around the speech teach a model that an utterance
    starts and ends quietly; on clips cut tight to the speech it then drops the
    first or last word (an AN4 model outputs nothing for 31-58% of the digits of
    three of FSDD's four speakers). With probability ``prob`` the speech span is
    found from 10 ms frame powers (frames within ``SPEECH_DB`` of the loudest one)
    and the waveform is cut to it plus the margins; nothing is ever added."""

    KIND = "trim"
    SPEECH_DB = SPEECH_DB

    def __init__(self, prob: float, max_ms: float = 50.0):
        super().__init__(prob, max_ms)

    @staticmethod
    def speech_span(wav: torch.Tensor) -> tuple[int, int] | None:
        """[start, end) samples of the speech (asr.audio.padding.speech_span)."""
        return speech_span(wav.numpy())

    def margins(self, span: tuple[int, int], rng: random.Random) -> tuple[int, int]:
        """Samples kept before and after the speech span (drawn in that order);
        a negative margin cuts into the speech."""
        margin = self.max_ms / 1000 * SAMPLE_RATE
        return int(rng.uniform(0, margin)), int(rng.uniform(0, margin))

    def __call__(self, wav: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if not happens(self.prob, rng):
            return wav
        span = self.speech_span(wav)
        if span is None:
            return wav
        before, after = self.margins(span, rng)
        return wav[max(0, span[0] - before) : min(len(wav), span[1] + after)]


class EdgeCrop(EdgeTrim):
    """Cut a waveform to its speech and then 0 to ``max_ms`` into it at each end
    (drawn per side), keeping at least ``KEEP`` of the speech.

    A silence detector set too tight clips a word's first or last phone: the /th/
    of *three*, the /s/ of *six*. Three of FSDD's four speakers have clips that
    start within 20 dB of their loudest frame (a third to three quarters of
    them), and the held-out speaker whose clips are clipped most is the hardest.
    With probability ``prob`` the speech span (as EdgeTrim finds it) is cut
    short, so that the model also learns words missing their edges: EdgeTrim
    with margins that reach into the speech."""

    KIND = "crop"
    KEEP = 0.5  # the share of the speech span always kept

    def __init__(self, prob: float, max_ms: float = 60.0):
        super().__init__(prob, max_ms)

    def margins(self, span: tuple[int, int], rng: random.Random) -> tuple[int, int]:
        longest = min(
            self.max_ms / 1000 * SAMPLE_RATE, (1 - self.KEEP) / 2 * (span[1] - span[0])
        )
        return -int(rng.uniform(0, longest)), -int(rng.uniform(0, longest))


class EdgePad(_EdgeChange):
    """Add 0 to ``max_ms`` of faint white noise before and after a waveform.

    The noise lies 40-60 dB (drawn) below the loudest 10 ms frame, the level of a
    quiet room's floor; the lengths are drawn independently per side. Together
    with EdgeTrim, every corpus comes both cut tight and with pauses around it."""

    KIND = "pad"
    QUIET_DB = (40.0, 60.0)  # the noise's level below the loudest frame

    def __init__(self, prob: float, max_ms: float = 300.0):
        super().__init__(prob, max_ms)

    def __call__(self, wav: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if not happens(self.prob, rng) or len(wav) < FRAME:
            return wav
        below_db = rng.uniform(*self.QUIET_DB)
        longest = self.max_ms / 1000 * SAMPLE_RATE
        before, after = int(rng.uniform(0, longest)), int(rng.uniform(0, longest))
        return self.add_pauses(wav, before, after, below_db, rng.getrandbits(63))

    @staticmethod
    def add_pauses(
        wav: torch.Tensor, before: int, after: int, below_db: float, seed: int
    ) -> torch.Tensor:
        """``before`` and ``after`` samples of white noise ``below_db`` dB under
        the loudest 10 ms frame of ``wav`` (at least one frame long)."""
        return torch.from_numpy(
            add_pauses(wav.numpy(), before, after, below_db, seed)
        ).to(wav.dtype)

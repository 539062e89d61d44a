"""A clip's edges: trimming to the speech, cropping into it and padding with
faint noise (training augmentations), and the edge padding that inference applies
to clips cut tight to their speech (``pad_edges``, ``load_padded``)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch

from asr.audio.energy import ENERGY_HOP, frame_energy_db
from asr.audio.files import SAMPLE_RATE, load_audio
from asr.features.augment import AugmentConfig, check_probability, happens

FRAME = int(SAMPLE_RATE * ENERGY_HOP)  # samples per frame_energy_db frame (10 ms)


# no signal: the loudest frame's energy is under 1e-10 (-100 dB), i.e. under this
# once frame_energy_db has added its own 1e-10 floor
NO_SIGNAL_DB = 10 * math.log10(2e-10)


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
    SPEECH_DB = 35.0  # frames this far below the loudest frame count as silence

    def __init__(self, prob: float, max_ms: float = 50.0):
        super().__init__(prob, max_ms)

    @staticmethod
    def speech_span(wav: torch.Tensor) -> tuple[int, int] | None:
        """[start, end) samples of the frames within SPEECH_DB of the loudest
        one; None for a waveform shorter than a frame or without any signal."""
        power = frame_energy_db(wav.numpy())
        if len(power) == 0 or power.max() < NO_SIGNAL_DB:
            return None
        loud = np.flatnonzero(power >= power.max() - EdgeTrim.SPEECH_DB)
        return int(loud[0]) * FRAME, min(len(wav), (int(loud[-1]) + 1) * FRAME)

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
        level_db = float(frame_energy_db(wav.numpy()).max()) - below_db
        gen = np.random.default_rng(seed)
        noise = gen.standard_normal(before + after) * 10 ** (level_db / 20)
        noise = torch.from_numpy(noise).to(wav.dtype)
        return torch.cat([noise[:before], wav, noise[before:]])


PAD_BELOW_DB = 50.0  # pad_edges' noise level under the clip's loudest 10 ms frame


def pad_samples(pad_ms: float) -> int:
    """Samples at 16 kHz in ``pad_ms`` milliseconds."""
    return int(round(pad_ms / 1000 * SAMPLE_RATE))


def pad_edges(wav: np.ndarray, pad: int) -> tuple[np.ndarray, int]:
    """Make sure ``wav`` has ``pad`` samples without speech before and after its
    speech -> (the waveform, samples added before it).

    A side whose speech (frames within EdgeTrim.SPEECH_DB of the loudest one)
    starts nearer the edge than ``pad`` is topped up to ``pad`` with white noise
    PAD_BELOW_DB under the loudest 10 ms frame (a quiet room's floor: digital
    silence would be a level the model never heard); a side with enough of a
    pause keeps it as it is, so clips recorded with pauses are left unchanged.
    The noise is the same on every call: transcripts are reproducible. Clips
    without any signal are left alone."""
    span = EdgeTrim.speech_span(torch.from_numpy(wav)) if pad > 0 else None
    if span is None:
        return wav, 0
    before, after = max(0, pad - span[0]), max(0, pad - (len(wav) - span[1]))
    if not before and not after:
        return wav, 0
    out = EdgePad.add_pauses(torch.from_numpy(wav), before, after, PAD_BELOW_DB, 0)
    return out.numpy(), before


def load_padded(path: str | Path, pad_ms: float) -> np.ndarray:
    """A file's 16 kHz audio as a model decoding with ``pad_ms`` reads it
    (``pad_edges``; the original length is lost: for scoring, not word times)."""
    return pad_edges(load_audio(path), pad_samples(pad_ms))[0]

"""Pauses at a clip's edges, in numpy: where its speech starts and ends (10 ms
frame energies against the loudest frame), faint white noise added before and
after it, and the edge padding inference applies to clips cut tight to their
speech (``pad_edges``). asr.features.edges builds training augmentations on it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from asr.audio.energy import ENERGY_HOP, frame_energy_db
from asr.audio.files import SAMPLE_RATE, load_audio

FRAME = int(SAMPLE_RATE * ENERGY_HOP)  # samples per frame_energy_db frame (10 ms)
SPEECH_DB = 35.0  # frames this far below the loudest frame count as silence
# no signal: the loudest frame's energy is under 1e-10 (-100 dB), i.e. under this
# once frame_energy_db has added its own 1e-10 floor
NO_SIGNAL_DB = 10 * math.log10(2e-10)


def speech_span(wav: np.ndarray) -> tuple[int, int] | None:
    """[start, end) samples of the frames within SPEECH_DB of the loudest one;
    None for a waveform shorter than a frame or without any signal."""
    power = frame_energy_db(wav)
    if len(power) == 0 or power.max() < NO_SIGNAL_DB:
        return None
    loud = np.flatnonzero(power >= power.max() - SPEECH_DB)
    return int(loud[0]) * FRAME, min(len(wav), (int(loud[-1]) + 1) * FRAME)


def add_pauses(
    wav: np.ndarray, before: int, after: int, below_db: float, seed: int
) -> np.ndarray:
    """``before`` and ``after`` samples of white noise ``below_db`` dB under the
    loudest 10 ms frame of ``wav`` (at least one frame long), drawn with ``seed``."""
    level_db = float(frame_energy_db(wav).max()) - below_db
    gen = np.random.default_rng(seed)
    noise = (gen.standard_normal(before + after) * 10 ** (level_db / 20)).astype(
        wav.dtype
    )
    return np.concatenate([noise[:before], wav, noise[before:]])


PAD_BELOW_DB = 50.0  # pad_edges' noise level under the clip's loudest 10 ms frame


def pad_samples(pad_ms: float) -> int:
    """Samples at 16 kHz in ``pad_ms`` milliseconds."""
    return int(round(pad_ms / 1000 * SAMPLE_RATE))


def pad_edges(wav: np.ndarray, pad: int) -> tuple[np.ndarray, int]:
    """Make sure ``wav`` has ``pad`` samples without speech before and after its
    speech -> (the waveform, samples added before it).

    A side whose speech (frames within SPEECH_DB of the loudest one)
    starts nearer the edge than ``pad`` is topped up to ``pad`` with white noise
    PAD_BELOW_DB under the loudest 10 ms frame (a quiet room's floor: digital
    silence would be a level the model never heard); a side with enough of a
    pause keeps it as it is, so clips recorded with pauses are left unchanged.
    The noise is the same on every call: transcripts are reproducible. Clips
    without any signal are left alone."""
    span = speech_span(wav) if pad > 0 else None
    if span is None:
        return wav, 0
    before, after = max(0, pad - span[0]), max(0, pad - (len(wav) - span[1]))
    if not before and not after:
        return wav, 0
    return add_pauses(wav, before, after, PAD_BELOW_DB, 0), before


def load_padded(path: str | Path, pad_ms: float) -> np.ndarray:
    """A file's 16 kHz audio as a model decoding with ``pad_ms`` reads it
    (``pad_edges``; the original length is lost: for scoring, not word times)."""
    return pad_edges(load_audio(path), pad_samples(pad_ms))[0]

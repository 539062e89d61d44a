"""Augmentation settings (one dataclass for every augmentation, from conf/augment)
and the probability helpers the augmentations share. The augmentations themselves:
spec_augment.py (features), wave_augment.py and edges.py (waveforms)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class AugmentConfig:
    speed_factors: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    freq_masks: int = 2
    freq_mask_width: int = 15  # widest frequency mask, in mel bins
    time_masks: int = 2
    time_mask_width: int = 40  # widest time mask, in frames (10 ms each)
    time_mask_max_ratio: float = 0.1  # and at most this share of the batch length
    specaug_start_epoch: int = 2  # 0-based epoch from which SpecAugment applies
    noise_prob: float = 0.0  # share of training utterances that get additive noise
    noise_snr_db: list[float] = field(default_factory=lambda: [10.0, 40.0])
    noise_manifest: str = ""  # recordings to mix in; empty: white/pink/brown noise
    # share of training utterances band-limited as if recorded at a lower rate
    # (telephone audio: 8 kHz), and the rates drawn from
    band_limit_prob: float = 0.0
    band_limit_rates: list[int] = field(default_factory=lambda: [8000])
    # share of training utterances whose leading and trailing non-speech is cut to
    # a random margin of at most edge_trim_max_ms (clips cut tight by a VAD or an
    # editor, as in the Free Spoken Digit Dataset, start right at the first phone)
    edge_trim_prob: float = 0.0
    edge_trim_max_ms: float = 50.0
    # share of training utterances given 0 to edge_pad_max_ms of faint noise
    # (40-60 dB below the speech) before and after: clips cut tight (FSDD) then
    # also come padded, so tightness stops telling the model which corpus it hears
    edge_pad_prob: float = 0.0
    edge_pad_max_ms: float = 300.0
    # share of training utterances cut into their speech: 0 to edge_crop_max_ms of
    # it is removed at each end (EdgeCrop; clips whose silence detector clipped the
    # first or last phone, as many of FSDD's are)
    edge_crop_prob: float = 0.0
    edge_crop_max_ms: float = 60.0
    # share of training utterances whose spectrum gets a random smooth tilt of up
    # to +-eq_max_db (RandomEQ): another microphone, channel or voice's colouring
    eq_prob: float = 0.0
    eq_max_db: float = 10.0
    # share of training utterances whose frequency axis is warped by a factor drawn
    # uniformly from vtlp_range (VocalTractWarp: another speaker's vocal tract
    # length, with the timing and pitch left as they are)
    vtlp_prob: float = 0.0
    vtlp_range: list[float] = field(default_factory=lambda: [0.9, 1.1])


def check_probability(what: str, prob: float) -> None:
    """ValueError unless ``prob`` is a probability (``what`` names the change)."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"{what} probability must be in [0, 1], not {prob}")


def happens(prob: float, rng: random.Random) -> bool:
    """True with probability ``prob``; ``rng`` is drawn from only when prob > 0."""
    return prob > 0.0 and rng.random() < prob

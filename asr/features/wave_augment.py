"""Augmentation on waveforms: additive noise, band-limiting as if recorded at a
lower rate, and random smooth EQ (speed perturbation is in asr.data.dataset)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

from asr.audio.files import MIN_SAMPLE_RATE, SAMPLE_RATE, resample
from asr.features.augment import AugmentConfig, check_probability, happens

NOISE_COLOURS = ("white", "pink", "brown")


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise: white (flat), pink (1/f) or brown (1/f^2) power spectrum."""
    noise = rng.standard_normal(n)
    if colour != "white":
        spectrum = np.fft.rfft(noise)
        f = np.arange(len(spectrum), dtype=float)
        f[0] = 1.0
        spectrum /= f ** (0.5 if colour == "pink" else 1.0)
        noise = np.fft.irfft(spectrum, n)
    return noise / (noise.std() + 1e-12)


class AdditiveNoise:
    """Mix noise into a waveform at a random SNR (uniform in dB over
    ``snr_db``), relative to the utterance's own power.

    The noise is a random stretch of one of ``sources`` (waveforms, looped when
    shorter than the utterance) or, without sources, coloured noise of a random
    colour. Everything random comes from the ``rng`` passed in, so the caller
    decides what is reproducible."""

    def __init__(
        self,
        prob: float,
        snr_db: Sequence[float],
        sources: Sequence[np.ndarray] = (),
    ):
        check_probability("noise", prob)
        if len(snr_db) != 2 or snr_db[0] > snr_db[1]:
            raise ValueError(f"noise SNR range must be [low, high] dB, not {snr_db}")
        self.prob, self.snr_db = prob, (float(snr_db[0]), float(snr_db[1]))
        self.sources = [np.asarray(s, dtype=np.float32) for s in sources if len(s)]

    @classmethod
    def from_config(
        cls, cfg: AugmentConfig, sources: Sequence[np.ndarray] = ()
    ) -> AdditiveNoise | None:
        """The noise of ``cfg`` (noise_prob, noise_snr_db) over ``sources``, the
        recordings of noise_manifest (asr.data.dataset.noise_recordings reads
        them); None when noise_prob is 0."""
        if cfg.noise_prob <= 0.0:
            return None
        return cls(cfg.noise_prob, cfg.noise_snr_db, sources)

    def __call__(self, wav: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if not happens(self.prob, rng) or len(wav) == 0:
            return wav
        n = len(wav)
        np_rng = np.random.default_rng(rng.getrandbits(64))
        if self.sources:
            src = self.sources[rng.randrange(len(self.sources))]
            start = rng.randrange(len(src))
            noise = np.resize(np.roll(src, -start), n).astype(np.float64)
        else:
            noise = coloured_noise(n, rng.choice(NOISE_COLOURS), np_rng)
        power = float(wav.double().pow(2).mean())
        noise_power = float(np.mean(noise**2))
        if power == 0.0 or noise_power == 0.0:
            return wav
        snr = rng.uniform(*self.snr_db)
        gain = (power / noise_power / 10 ** (snr / 10)) ** 0.5
        return wav + torch.from_numpy(gain * noise).to(wav.dtype)


class BandLimit:
    """Make a 16 kHz waveform sound as if it had been recorded at a lower rate.

    With probability ``prob`` the waveform is resampled to one of ``rates`` and back,
    through the resampler that the loader uses for files at those rates: what is
    left is the audio of a real file at that rate (an 8 kHz telephone recording
    holds nothing above 4 kHz), so a model trained with it does not turn such
    files into gibberish."""

    def __init__(self, prob: float, rates: Sequence[int] = (8000,)):
        check_probability("band-limit", prob)
        bad = [r for r in rates if not MIN_SAMPLE_RATE <= int(r) < SAMPLE_RATE]
        if bad or (prob > 0.0 and not rates):
            raise ValueError(
                f"band-limit rates must lie in [{MIN_SAMPLE_RATE}, {SAMPLE_RATE}) Hz,"
                f" not {list(rates)}"
            )
        self.prob, self.rates = prob, [int(r) for r in rates]

    @classmethod
    def from_config(cls, cfg: AugmentConfig) -> BandLimit | None:
        """None when band_limit_prob is 0."""
        if cfg.band_limit_prob <= 0.0:
            return None
        return cls(cfg.band_limit_prob, cfg.band_limit_rates)

    def __call__(self, wav: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if not happens(self.prob, rng) or len(wav) == 0:
            return wav
        rate = rng.choice(self.rates)
        low = resample(wav.numpy(), SAMPLE_RATE, rate)
        back = resample(low, rate, SAMPLE_RATE)[: len(wav)]
        out = np.zeros(len(wav), dtype=np.float32)  # same length as the input
        out[: len(back)] = back
        return torch.from_numpy(out).to(wav.dtype)


class RandomEQ:
    """Colour a waveform's spectrum with a random smooth gain curve.

    With probability ``prob``, gains drawn uniformly in [-max_db, +max_db] dB at
    ``ANCHORS`` frequencies spaced evenly on a log scale from LOW_HZ to HIGH_HZ are
    joined linearly (in dB over log frequency; flat beyond the ends) and applied to
    the whole clip's spectrum (zero phase). Each speaker of a small corpus comes
    with one microphone and one voice, so its spectral tilt says who is talking; a
    model trained with these curves cannot lean on it (FSDD's four speakers differ
    by up to 10 dB in their low band)."""

    LOW_HZ, HIGH_HZ, ANCHORS = 100.0, 6000.0, 6

    def __init__(self, prob: float, max_db: float = 10.0):
        check_probability("EQ", prob)
        if not 0.0 <= max_db <= 40.0:
            raise ValueError(f"EQ gains must be within 0-40 dB, not {max_db}")
        self.prob, self.max_db = prob, max_db

    @classmethod
    def from_config(cls, cfg: AugmentConfig) -> RandomEQ | None:
        """None when eq_prob is 0."""
        if cfg.eq_prob <= 0.0:
            return None
        return cls(cfg.eq_prob, cfg.eq_max_db)

    def __call__(self, wav: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if not happens(self.prob, rng) or len(wav) < 2:
            return wav
        gains = [rng.uniform(-self.max_db, self.max_db) for _ in range(self.ANCHORS)]
        return self.apply(wav, gains)

    def curve_db(self, freqs: np.ndarray, gains_db: Sequence[float]) -> np.ndarray:
        """The gain (dB) at ``freqs`` (Hz) of the curve through ``gains_db`` at the
        anchor frequencies."""
        return gain_curve_db(freqs, self.anchors(), gains_db)

    def anchors(self) -> np.ndarray:
        return np.geomspace(self.LOW_HZ, self.HIGH_HZ, self.ANCHORS)

    def apply(self, wav: torch.Tensor, gains_db: Sequence[float]) -> torch.Tensor:
        """``wav`` through the curve with ``gains_db`` at the anchors."""
        out = spectral_gain(wav.numpy(), self.anchors(), gains_db)
        return torch.from_numpy(out).to(wav.dtype)


def spectral_gain(
    wav: np.ndarray,
    anchors_hz: np.ndarray,
    gains_db: Sequence[float],
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """``wav`` through a zero-phase filter with the gain curve of
    ``gain_curve_db`` (float64 out)."""
    x = np.asarray(wav, dtype=np.float64)
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    curve = gain_curve_db(freqs, anchors_hz, gains_db)
    return np.fft.irfft(np.fft.rfft(x) * 10 ** (curve / 20), n=len(x))


def gain_curve_db(
    freqs: np.ndarray, anchors_hz: np.ndarray, gains_db: Sequence[float]
) -> np.ndarray:
    """The gain (dB) at ``freqs`` (Hz) of the curve joining ``gains_db`` at
    ``anchors_hz`` linearly over log frequency, flat beyond the end anchors."""
    where = np.log(np.clip(freqs, anchors_hz[0], anchors_hz[-1]))
    return np.interp(where, np.log(anchors_hz), np.asarray(gains_db, dtype=float))

"""Augmentation: SpecAugment and vocal tract length perturbation on features;
additive noise, band-limiting, random EQ and edge trimming, cropping and padding
on waveforms (speed perturbation is in data.py)."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torchaudio
from torch import nn

from asr.alignment import ENERGY_HOP, frame_energy_db
from asr.audio import MIN_SAMPLE_RATE, SAMPLE_RATE, resample

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


class SpecAugment(nn.Module):
    """Independent frequency and time masks per utterance (Park et al., 2019)."""

    def __init__(self, cfg: AugmentConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats: shape = (B, T, F), normalised (so masking with 0 = the mean)."""
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        for _ in range(self.cfg.freq_masks):
            x = torchaudio.functional.mask_along_axis_iid(
                x, self.cfg.freq_mask_width, 0.0, axis=2
            )
        for _ in range(self.cfg.time_masks):
            x = torchaudio.functional.mask_along_axis_iid(
                x, self.cfg.time_mask_width, 0.0, axis=3, p=self.cfg.time_mask_max_ratio
            )
        return x.squeeze(1).transpose(1, 2)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)  # HTK's scale, torchaudio's default


class VocalTractWarp(nn.Module):
    """Vocal tract length perturbation (Jaitly and Hinton, 2013) on log-mel frames.

    A longer or shorter vocal tract moves every formant by about the same factor.
    Each chosen utterance gets a factor ``a`` from ``vtlp_range``: the warped
    spectrum at frequency ``w(f)`` is the original's at ``f``, with ``w(f) = a f``
    up to a knee and a straight line from there to the Nyquist frequency (so the
    band stays full). Unlike speed perturbation, timing and pitch stay as they are.
    Frames are interpolated along the mel axis, between the centres of the mel
    filters, on the raw log energies (before the global normalisation).
    """

    KNEE_HZ = 4800.0  # w is linear in f up to KNEE_HZ * min(a, 1) / a

    def __init__(self, cfg: AugmentConfig, sample_rate: int, n_mels: int):
        super().__init__()
        check_probability("vocal tract warp", cfg.vtlp_prob)
        lo, hi = cfg.vtlp_range
        if not 0.5 <= lo <= hi <= 2.0:
            raise ValueError(
                f"vtlp_range must be within [0.5, 2], not {cfg.vtlp_range}"
            )
        self.prob, self.lo, self.hi = cfg.vtlp_prob, lo, hi
        self.nyquist = sample_rate / 2
        mels = np.linspace(0.0, _hz_to_mel(np.array(self.nyquist)), n_mels + 2)
        self.mel_step = float(mels[1])
        # the filters' centre frequencies (torchaudio's mel filterbank, f_min = 0)
        self.centres = 700.0 * (10 ** (mels[1:-1] / 2595.0) - 1.0)

    @classmethod
    def from_config(
        cls, cfg: AugmentConfig, sample_rate: int, n_mels: int
    ) -> VocalTractWarp | None:
        return cls(cfg, sample_rate, n_mels) if cfg.vtlp_prob > 0 else None

    def warp_hz(self, f: np.ndarray, factor: float) -> np.ndarray:
        """Where the warp by ``factor`` moves frequencies ``f`` (Hz)."""
        knee = self.KNEE_HZ * min(factor, 1.0) / factor
        top = self.nyquist - factor * knee
        upper = factor * knee + top * (f - knee) / (self.nyquist - knee)
        return np.where(f <= knee, factor * f, upper)

    def source_bins(self, factor: float) -> np.ndarray:
        """Fractional mel-bin index each output bin reads from, for ``factor``."""
        grid = np.linspace(0.0, self.nyquist, 2049)
        source_hz = np.interp(self.centres, self.warp_hz(grid, factor), grid)
        index = _hz_to_mel(source_hz) / self.mel_step - 1.0
        return np.clip(index, 0.0, len(self.centres) - 1.0)

    def apply(self, logmel: torch.Tensor, factors: Sequence[float]) -> torch.Tensor:
        """logmel: shape = (B, T, F) raw log energies; one factor per utterance."""
        index = torch.tensor(
            np.stack([self.source_bins(a) for a in factors]),
            dtype=logmel.dtype,
            device=logmel.device,
        )  # (B, F)
        low = index.floor().long()
        high = (low + 1).clamp(max=logmel.shape[2] - 1)
        frac = (index - low)[:, None, :]
        t = logmel.shape[1]

        def take(i: torch.Tensor) -> torch.Tensor:
            return logmel.gather(2, i[:, None, :].expand(-1, t, -1))

        return take(low) * (1 - frac) + take(high) * frac

    def forward(
        self, feats: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
    ) -> torch.Tensor:
        """feats: shape = (B, T, F), normalised by ``mean`` and ``std`` (F,)."""
        chosen = (torch.rand(feats.shape[0]) < self.prob).to(feats.device)
        if not chosen.any():
            return feats
        factors = torch.empty(int(chosen.sum())).uniform_(self.lo, self.hi)
        raw = feats[chosen] * std + mean
        feats = feats.clone()
        feats[chosen] = (self.apply(raw, factors.tolist()) - mean) / std
        return feats


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
    def from_config(cls, cfg: AugmentConfig) -> AdditiveNoise | None:
        """The noise of ``cfg`` (noise_prob, noise_snr_db and the recordings of
        noise_manifest, all held in memory); None when noise_prob is 0."""
        if cfg.noise_prob <= 0.0:
            return None
        sources = []
        if cfg.noise_manifest:
            from asr.audio import load_audio
            from asr.data import read_manifest  # asr.data imports this module

            utts = read_manifest(cfg.noise_manifest)
            sources = [load_audio(u.audio_filepath) for u in utts]
            log.info("noise: %d recordings from %s", len(sources), cfg.noise_manifest)
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

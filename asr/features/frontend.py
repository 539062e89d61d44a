"""Log-mel filterbank frames and global mean/variance normalisation (the frontend)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio
from torch import nn

from asr.audio.files import SAMPLE_RATE


@dataclass
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    # scale each utterance so its speech (the louder half of its 10 ms frames) sits
    # at this level in dBFS; None: leave levels as recorded
    level_db: float | None = None
    # add the power of white noise at this level (dBFS, after the level
    # normalisation) to every frame's spectrum before the log, so that digital
    # silence and a quiet recording's hiss look alike (dither, in expectation and
    # without its randomness); None: only a 1e-10 floor against log(0)
    floor_dbfs: float | None = None

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))


CHUNK_SAMPLES = 10 * SAMPLE_RATE  # LogMel works on about this much audio at once


class LogMel(nn.Module):
    """Waveforms -> natural-log mel energies (torchaudio's window and mel filters).

    Frames are not centred, so every frame sees only real samples of its own
    utterance: padding a batch never changes the frames of a shorter member.
    """

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        # its window and mel filters are the buffers used (and saved in checkpoints)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.n_fft,
            win_length=cfg.win_length,
            hop_length=cfg.hop_length,
            n_mels=cfg.n_mels,
            center=False,
            power=2.0,
        )
        # not saved in checkpoints: it follows from the config
        self.register_buffer("power_floor", self._power_floor(), persistent=False)

    def _power_floor(self) -> torch.Tensor:
        """(n_mels,) the mel power of white noise at ``floor_dbfs`` (E|X_k|^2 =
        variance * sum(window^2) in every bin); zeros without a floor."""
        if self.cfg.floor_dbfs is None:
            return torch.zeros(self.cfg.n_mels)
        variance = 10 ** (self.cfg.floor_dbfs / 10)
        per_bin = variance * float(self.mel.spectrogram.window.square().sum())
        return per_bin * self.mel.mel_scale.fb.sum(dim=0)

    def log(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel power (..., n_mels) -> log features, with the floor added."""
        return (mel + self.power_floor).clamp(min=1e-10).log()

    def frame_lens(self, wav_lens: torch.Tensor) -> torch.Tensor:
        """Number of frames for each waveform length (at least 1)."""
        # torch.stft frames span n_fft samples (the window is centred inside)
        n = (
            torch.div(
                wav_lens - self.cfg.n_fft, self.cfg.hop_length, rounding_mode="floor"
            )
            + 1
        )
        return n.clamp(min=1)

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor):
        """wavs: shape = (B, S) float; wav_lens: (B,) -> feats (B, T, n_mels), (B,)."""
        short = self.cfg.n_fft - wavs.shape[1]
        if short > 0:
            wavs = nn.functional.pad(wavs, (0, short))
        # a few rows at a time: each pass over the frames then stays in the CPU's
        # cache (a whole batch at once was 1.7x slower per second of audio)
        rows = max(1, CHUNK_SAMPLES // wavs.shape[1])
        feats = torch.cat([self._log_mel(part) for part in wavs.float().split(rows)])
        return feats, self.frame_lens(wav_lens)

    def _log_mel(self, wavs: torch.Tensor) -> torch.Tensor:
        """wavs: shape = (B, S) float32, S >= n_fft -> (B, T, n_mels)."""
        # the frames as a strided view and one real FFT over them: what torch.stft
        # computes (its window centred in n_fft), without its copies and transposes
        n_fft, window = self.cfg.n_fft, self.mel.spectrogram.window
        left = (n_fft - window.shape[0]) // 2
        window = nn.functional.pad(window, (left, n_fft - window.shape[0] - left))
        frames = wavs.unfold(1, n_fft, self.cfg.hop_length)  # (B, T, n_fft)
        spec = torch.fft.rfft(frames * window, dim=-1)  # (B, T, n_fft // 2 + 1)
        # |X|^2 as re^2 + im^2: abs().pow(2) (torchaudio's way) takes a square
        # root per bin and was half the time of the whole frontend
        power = spec.real.square() + spec.imag.square()
        return self.log(power @ self.mel.mel_scale.fb)  # (B, T, n_mels)


class GlobalCMVN(nn.Module):
    """(x - mean) / std with corpus-level statistics stored as buffers."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-5))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.mean) / self.std


class Frontend(nn.Module):
    """[level normalisation] + LogMel + GlobalCMVN, in float32 even under autocast."""

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        self.logmel = LogMel(cfg)
        self.cmvn = GlobalCMVN(cfg.n_mels)

    def forward(
        self,
        wavs: torch.Tensor,
        wav_lens: torch.Tensor,
        gains: torch.Tensor | None = None,
    ):
        """wavs: (B, S), wav_lens (B,); gains (B,) overrides the level gains."""
        with torch.autocast(wavs.device.type, enabled=False):
            wavs = wavs.float()
            if gains is None and self.cfg.level_db is not None:
                gains = level_gains(wavs, wav_lens, self.cfg.level_db)
            if gains is not None:
                wavs = wavs * gains[:, None]
            feats, feat_lens = self.logmel(wavs, wav_lens)
            return self.cmvn(feats), feat_lens


SILENCE_DB = -60.0  # quieter than this is no speech: left as it is
MAX_GAIN_DB = 40.0
TOP_SHARE = 0.2  # the level is the mean power of the loudest fifth of the frames


def level_gains(
    wavs: torch.Tensor, wav_lens: torch.Tensor, level_db: float
) -> torch.Tensor:
    """Gain per utterance that brings its speech level to ``level_db`` dBFS.

    The level is the mean power of the loudest TOP_SHARE of its 10 ms frames (valid
    samples only); gains are limited to +-40 dB and silence keeps gain 1.
    wavs: shape = (B, S) -> (B,).
    """
    hop = 160
    n = wavs.shape[1] // hop
    if n == 0:
        return torch.ones(wavs.shape[0], device=wavs.device)
    power = wavs[:, : n * hop].reshape(wavs.shape[0], n, hop).pow(2).mean(-1)
    valid = torch.arange(n, device=wavs.device)[None] < (wav_lens[:, None] // hop)
    power = torch.where(valid, power, torch.full_like(power, -1.0))
    ranked = power.sort(dim=1, descending=True).values
    n_top = (valid.sum(1) * TOP_SHARE).ceil().long()
    top = torch.arange(n, device=wavs.device)[None] < n_top[:, None]
    mean = (ranked * top).sum(1) / n_top.clamp(min=1)
    level = 10 * torch.log10(mean.clamp(min=1e-12))
    gain_db = (level_db - level).clamp(-MAX_GAIN_DB, MAX_GAIN_DB)
    gain_db = torch.where(level < SILENCE_DB, torch.zeros_like(gain_db), gain_db)
    return 10 ** (gain_db / 20)


def compute_cmvn_stats(
    waveforms: Iterable[np.ndarray], cfg: FeatureConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of log-mel frames over a corpus. Returns two (n_mels,) tensors."""
    logmel = LogMel(cfg)
    total = torch.zeros(cfg.n_mels, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    n_frames = 0
    with torch.no_grad():
        for wav in waveforms:
            x = torch.from_numpy(wav).unsqueeze(0)
            if cfg.level_db is not None:
                x = (
                    x
                    * level_gains(x, torch.tensor([x.shape[1]]), cfg.level_db)[:, None]
                )
            feats, _ = logmel(x, torch.tensor([x.shape[1]]))
            f = feats[0].double()
            total += f.sum(0)
            total_sq += (f * f).sum(0)
            n_frames += f.shape[0]
    if n_frames == 0:
        raise ValueError("cannot compute feature statistics from no audio")
    mean = total / n_frames
    std = (total_sq / n_frames - mean * mean).clamp(min=1e-10).sqrt()
    return mean.float(), std.float()


# the features that change what a frame's statistics are (hop_ms only changes
# how many frames there are)
STATS_FIELDS = ("level_db", "sample_rate", "n_mels", "win_ms", "n_fft", "floor_dbfs")


def check_stats_features(stats: dict, cfg: FeatureConfig, path: str) -> None:
    """ValueError unless the `asr stats` file ``stats`` (read from ``path``)
    measured the features ``cfg`` computes. Files from before `asr stats` recorded
    its features are checked on their level and band count."""
    made = dict(stats.get("features") or {"n_mels": len(stats["mean"])})
    made["level_db"] = stats.get("level_db")  # every file has it (None: not set)
    wrong = [
        f"features.{k}={getattr(cfg, k)} (the file's: {made[k]})"
        for k in STATS_FIELDS
        if k in made and made[k] != getattr(cfg, k)
    ]
    if wrong:
        raise ValueError(
            f"{path} measured other features than this run's {', '.join(wrong)}: "
            "rerun `asr stats` with the run's --level-db and features.* overrides"
        )

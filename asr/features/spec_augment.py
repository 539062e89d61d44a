"""Augmentation on log-mel features: SpecAugment's frequency and time masks and
vocal tract length perturbation (a warp of the mel axis)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torchaudio
from torch import nn

from asr.features.augment import AugmentConfig, check_probability


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

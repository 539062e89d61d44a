"""Feature augmentation (SpecAugment); waveform speed perturbation is in data.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torchaudio
from torch import nn


@dataclass
class AugmentConfig:
    speed_factors: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    freq_masks: int = 2
    freq_mask_width: int = 15  # widest frequency mask, in mel bins
    time_masks: int = 2
    time_mask_width: int = 40  # widest time mask, in frames (10 ms each)
    time_mask_max_ratio: float = 0.1  # and at most this share of the batch length
    specaug_start_epoch: int = 2  # 0-based epoch from which SpecAugment applies


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

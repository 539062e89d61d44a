"""Where a model runs: the device a name asks for, and the device a model's
inputs must go to (a checkpoint's weights say; an export runs on the CPU)."""

from __future__ import annotations

import torch


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU; other names as torch reads."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def model_device(model) -> torch.device:
    """Where a model's inputs go: a module's weights say, an exported model knows."""
    if isinstance(model, torch.nn.Module):
        return next(model.parameters()).device
    return model.device

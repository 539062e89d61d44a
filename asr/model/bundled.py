"""Model files without torch: the models the package ships (a checkpoint and its
int8 ONNX export) and the error that names a model file that cannot be used."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unsafe, or not an asr model."""


def default_model_path() -> Path:
    """The model bundled inside the package (the checkpoint)."""
    return ASSETS / "default_bilstm.pt"


def default_export_path() -> Path:
    """The bundled model's ONNX export, int8 unless that cost accuracy
    (scripts/bundle_model.py makes it; `asr info` says which)."""
    return ASSETS / "default_bilstm.onnx"


def default_inference_path(prefer_export: bool) -> Path:
    """The bundled model to transcribe with: its ONNX export when asked for,
    shipped and runnable (onnxruntime installed), else the checkpoint."""
    export = default_export_path()
    runnable = importlib.util.find_spec("onnxruntime") is not None
    if prefer_export and runnable and export.is_file():
        return export
    return default_model_path()

"""Model files without torch: the models the package ships (each a checkpoint and
its ONNX export), the names ``--model`` knows them by, and the error that names a
model file that cannot be used."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"


# `--model NAME` -> the file stem in assets/ (NAME.pt and NAME.onnx). "commands"
# is the default: AN4's letters, digits and dates, the digits and the command
# words (asr/assets/MODEL.md); "english" transcribes general English through a
# pronunciation lexicon and the general-English LM, but not AN4 as well.
BUNDLED_MODELS = {"commands": "default_bilstm", "english": "english_bilstm"}
DEFAULT_MODEL = "commands"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unsafe, or not an asr model."""


def missing_model(path: Path) -> CheckpointError:
    """The error for a ``--model`` that is neither a file nor a bundled name."""
    return CheckpointError(
        f"{path}: no such model file (bundled models: {', '.join(BUNDLED_MODELS)})"
    )


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """A bundled model's checkpoint (``name`` from BUNDLED_MODELS)."""
    return ASSETS / f"{BUNDLED_MODELS[name]}.pt"


def bundled_export_path(name: str = DEFAULT_MODEL) -> Path:
    """A bundled model's ONNX export, int8 unless that cost accuracy
    (scripts/bundle_model.py makes it; `asr info` says which)."""
    return ASSETS / f"{BUNDLED_MODELS[name]}.onnx"


def default_model_path() -> Path:
    """The default bundled model (the checkpoint)."""
    return bundled_model_path(DEFAULT_MODEL)


def default_export_path() -> Path:
    """The default bundled model's ONNX export."""
    return bundled_export_path(DEFAULT_MODEL)


def resolve_model(spec: str | Path | None, prefer_export: bool = False) -> Path:
    """What ``--model SPEC`` names: an existing file as given; else a bundled
    model's name (None: the default). A bundled model is its ONNX export when
    ``prefer_export`` and the export is shipped and runnable (onnxruntime
    installed), else its checkpoint. Anything else stays a path, so that loading
    it says what is wrong."""
    if spec is not None and (Path(spec).exists() or str(spec) not in BUNDLED_MODELS):
        return Path(spec)
    name = DEFAULT_MODEL if spec is None else str(spec)
    export = bundled_export_path(name)
    runnable = importlib.util.find_spec("onnxruntime") is not None
    if prefer_export and runnable and export.is_file():
        return export
    return bundled_model_path(name)

"""Self-describing model checkpoints: atomic writes, weights-only loads."""

from __future__ import annotations

import dataclasses
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from asr.data.text import Tokenizer, tokenizer_from_dict
from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ASRModel, ModelConfig
from asr.model.bundled import CheckpointError, missing_model

FORMAT_VERSION = 1


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename:
    a crash at any moment leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only=True; a file carrying code is refused."""
    path = Path(path)
    if not path.is_file():
        raise missing_model(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than plain "
            f"tensors and containers (possibly unsafe code): {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({err})") from None


def model_to_dict(
    model: ASRModel,
    tokenizer: Tokenizer,
    metadata: dict | None = None,
    half: bool = False,
) -> dict:
    """Everything needed to rebuild the model, as plain containers and tensors."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
        for k, v in model.state_dict().items()
    }
    return {
        "format_version": FORMAT_VERSION,
        "model_config": dataclasses.asdict(model.cfg),
        "feature_config": dataclasses.asdict(model.feature_cfg),
        "tokenizer": tokenizer.to_dict(),
        "state_dict": state,
        "metadata": metadata or {},
    }


def save_model(
    path: str | Path,
    model: ASRModel,
    tokenizer: Tokenizer,
    metadata: dict | None = None,
    half: bool = False,
) -> None:
    atomic_save(model_to_dict(model, tokenizer, metadata, half), path)


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[ASRModel, Tokenizer, dict]:
    """Rebuild (model in eval mode, tokenizer, metadata) from a checkpoint file."""
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not an asr model checkpoint")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this asr"
        )
    tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    model = ASRModel(
        ModelConfig(**ckpt["model_config"]),
        FeatureConfig(**ckpt["feature_config"]),
        len(tokenizer),
    )
    state = {
        k: v.float() if v.is_floating_point() else v
        for k, v in ckpt["state_dict"].items()
    }
    model.load_state_dict(state)
    meta = ckpt.get("metadata", {})
    model.decoding_defaults = dict(meta.get("decoding", {}))
    return model.to(device).eval(), tokenizer, meta


def stored_half(path: str | Path) -> bool:
    """Whether the checkpoint at ``path`` stores its weights in float16."""
    state = safe_load(path).get("state_dict", {})
    return any(v.dtype == torch.float16 for v in state.values())


def average_checkpoints(paths: list[str | Path]) -> dict:
    """One checkpoint whose floating-point weights are the mean of ``paths``'
    (same model config and vocabulary); other entries come from the last one.

    Averaging the weights of the last few epochs smooths out the noise of the
    final updates (as in ESPnet's and fairseq's checkpoint averaging)."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    ckpts = [safe_load(path) for path in paths]
    for path, ckpt in zip(paths, ckpts):
        if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
            raise CheckpointError(f"{path}: not an asr model checkpoint")
        for key in ("model_config", "feature_config", "tokenizer"):
            if ckpt.get(key) != ckpts[0].get(key):
                raise CheckpointError(
                    f"{path}: its {key} differs from {paths[0]}'s: cannot average"
                )
        if ckpt["state_dict"].keys() != ckpts[0]["state_dict"].keys():
            raise CheckpointError(f"{path}: its weights differ from {paths[0]}'s")
    averaged = dict(ckpts[-1])
    state = {}
    for key, last in ckpts[-1]["state_dict"].items():
        if last.is_floating_point():
            total = sum(c["state_dict"][key].double() for c in ckpts)
            state[key] = (total / len(ckpts)).to(last.dtype)
        else:
            state[key] = last
    averaged["state_dict"] = state
    averaged["metadata"] = {
        **ckpts[-1].get("metadata", {}),
        "averaged_from": [str(path) for path in paths],
    }
    return averaged

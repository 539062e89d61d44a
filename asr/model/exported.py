"""Exported models for inference: an .onnx file (onnxruntime) or a TorchScript
archive in ASRModel's role, and ``load_inference_model`` that opens any model file
(checkpoint or export). asr/model/export.py writes them.
"""

from __future__ import annotations

import importlib
import json
import warnings
import zipfile
from pathlib import Path

import torch

from asr.data.text import CharTokenizer
from asr.model.acoustic import ASRModel
from asr.model.checkpoint import CheckpointError, load_model

EXPORT_VERSION = 1
META_FILE = "asr.json"  # the TorchScript extra file holding the metadata
INPUTS, OUTPUTS = ["wavs", "wav_lens"], ["log_probs", "out_lens"]
METADATA_KEYS = (
    "asr_export_version",
    "tokenizer",
    "frame_seconds",
    "sample_rate",
    "model_config",
    "feature_config",
    "n_params",
    "quantize",
    "decoding",
)  # ONNX metadata_props (JSON values); other tools add their own


def import_optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        msg = f"ONNX export and inference need {name}: pip install 'asr[export]'"
        raise ValueError(msg) from None


class ExportedModel:
    """An exported file in ASRModel's role for inference: called with CPU tensors
    wavs (B, S), wav_lens (B,), it returns log_probs (B, T', V), out_lens (B,)."""

    device = torch.device("cpu")

    def __init__(self, path: Path, meta: dict):
        if not isinstance(meta, dict) or "tokenizer" not in meta:
            raise CheckpointError(f"{path}: not an asr export (no vocabulary in it)")
        if meta.get("asr_export_version", 0) > EXPORT_VERSION:
            raise CheckpointError(f"{path}: export format is newer than this asr")
        self.path, self.meta = path, meta
        self.tokenizer = CharTokenizer.from_dict(meta["tokenizer"])
        self.frame_seconds: float = meta["frame_seconds"]
        self.sample_rate: int = meta["sample_rate"]

    def n_params(self) -> int:
        return self.meta["n_params"]

    @property
    def decoding_defaults(self) -> dict:
        """As ASRModel.decoding_defaults (exports made before it: none)."""
        return dict(self.meta.get("decoding") or {})

    def __call__(self, wavs: torch.Tensor, wav_lens: torch.Tensor):
        raise NotImplementedError


class OnnxModel(ExportedModel):
    """An .onnx export run by onnxruntime on the CPU (torch's thread count)."""

    def __init__(self, path: Path, threads: int | None = None):
        ort = import_optional("onnxruntime")

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own untyped errors
            msg = f"{path}: not a readable ONNX model ({err})"
            raise CheckpointError(msg) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        ours = {k: json.loads(v) for k, v in meta.items() if k in METADATA_KEYS}
        super().__init__(path, ours)

    def __call__(self, wavs: torch.Tensor, wav_lens: torch.Tensor):
        feeds = {"wavs": wavs.float().numpy(), "wav_lens": wav_lens.long().numpy()}
        log_probs, out_lens = self.session.run(OUTPUTS, feeds)
        return torch.from_numpy(log_probs), torch.from_numpy(out_lens)


class TorchScriptModel(ExportedModel):
    """A TorchScript export run by torch.jit on the CPU."""

    def __init__(self, path: Path):
        extra = {META_FILE: ""}
        try:
            with warnings.catch_warnings():  # deprecated in favour of torch.export,
                warnings.simplefilter("ignore")  # which has no LSTM for ONNX yet
                self.module = torch.jit.load(str(path), "cpu", _extra_files=extra)
        except RuntimeError as err:
            msg = f"{path}: not a readable TorchScript file ({err})"
            raise CheckpointError(msg) from None
        super().__init__(path, json.loads(extra[META_FILE] or "null"))

    def __call__(self, wavs: torch.Tensor, wav_lens: torch.Tensor):
        with torch.no_grad():
            return self.module(wavs.float(), wav_lens.long())


def load_inference_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[ASRModel | ExportedModel, CharTokenizer]:
    """A model to transcribe with: a checkpoint, an .onnx or a TorchScript export."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if is_export(path):
        if torch.device(device).type != "cpu":
            raise ValueError(f"{path}: exported models run on the CPU (--device cpu)")
        exported = OnnxModel(path) if path.suffix == ".onnx" else TorchScriptModel(path)
        return exported, exported.tokenizer
    model, tokenizer, _ = load_model(path, device)
    return model, tokenizer


def is_export(path: Path) -> bool:
    """An .onnx or TorchScript export (not a checkpoint)."""
    return path.suffix == ".onnx" or is_torchscript(path)


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files holding code/; torch.save files do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())

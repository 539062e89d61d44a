"""Exported models for inference: an .onnx file (onnxruntime, no torch needed)
or a TorchScript archive in ASRModel's role, and ``load_inference_model`` that
opens any model file (checkpoint or export). asr/model/export.py writes them.

An ONNX model is read, run and decoded with numpy alone: torch is imported only
for a checkpoint, a TorchScript file, or callers that hand in tensors.
"""

from __future__ import annotations

import importlib
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from asr.data.text import tokenizer_from_dict
from asr.model.bundled import CheckpointError, missing_model

FORMATS = {"onnx": ".onnx", "torchscript": ".ts"}
QUANTIZE = ("int8", "fp16")  # int8 weights, or float16 storage (float32 compute)
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
    """An exported file in ASRModel's role for inference. ``infer`` takes numpy
    wavs (B, S) float32 and wav_lens (B,) and returns log_probs (B, T', V) float32
    and out_lens (B,); calling it with CPU tensors returns tensors."""

    device = "cpu"

    def __init__(self, path: Path, meta: dict):
        if not isinstance(meta, dict) or "tokenizer" not in meta:
            raise CheckpointError(f"{path}: not an asr export (no vocabulary in it)")
        if meta.get("asr_export_version", 0) > EXPORT_VERSION:
            raise CheckpointError(f"{path}: export format is newer than this asr")
        self.path, self.meta = path, meta
        self.tokenizer = tokenizer_from_dict(meta["tokenizer"])
        self.frame_seconds: float = meta["frame_seconds"]
        self.sample_rate: int = meta["sample_rate"]

    def n_params(self) -> int:
        return self.meta["n_params"]

    @property
    def decoding_defaults(self) -> dict:
        """As ASRModel.decoding_defaults (exports made before it: none)."""
        return dict(self.meta.get("decoding") or {})

    def infer(self, wavs: np.ndarray, wav_lens: np.ndarray):
        raise NotImplementedError

    def __call__(self, wavs, wav_lens):
        """Tensors in, tensors out (as ASRModel), through ``infer``."""
        import torch  # lazily: loaded already by whoever hands in tensors

        log_probs, out_lens = self.infer(wavs.float().numpy(), wav_lens.numpy())
        return torch.from_numpy(log_probs), torch.from_numpy(out_lens)


class OnnxModel(ExportedModel):
    """An .onnx export run by onnxruntime on the CPU."""

    def __init__(self, path: Path, threads: int | None = None):
        ort = import_optional("onnxruntime")

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
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

    def infer(self, wavs: np.ndarray, wav_lens: np.ndarray):
        feeds = {
            "wavs": np.asarray(wavs, dtype=np.float32),
            "wav_lens": np.asarray(wav_lens, dtype=np.int64),
        }
        log_probs, out_lens = self.session.run(OUTPUTS, feeds)
        return log_probs, out_lens


class TorchScriptModel(ExportedModel):
    """A TorchScript export run by torch.jit on the CPU."""

    def __init__(self, path: Path):
        import torch  # lazily, for start-up: only TorchScript files need it

        extra = {META_FILE: ""}
        try:
            with warnings.catch_warnings():  # deprecated in favour of torch.export,
                warnings.simplefilter("ignore")  # which has no LSTM for ONNX yet
                self.module = torch.jit.load(str(path), "cpu", _extra_files=extra)
        except RuntimeError as err:
            msg = f"{path}: not a readable TorchScript file ({err})"
            raise CheckpointError(msg) from None
        super().__init__(path, json.loads(extra[META_FILE] or "null"))

    def infer(self, wavs: np.ndarray, wav_lens: np.ndarray):
        import torch  # lazily: loaded in __init__ already

        with torch.no_grad():
            log_probs, out_lens = self.module(
                torch.from_numpy(np.asarray(wavs, dtype=np.float32)),
                torch.from_numpy(np.asarray(wav_lens, dtype=np.int64)),
            )
        return log_probs.numpy(), out_lens.numpy()


def load_inference_model(path: str | Path, device="cpu") -> tuple:
    """(model, tokenizer) to transcribe with: a checkpoint (an ASRModel on
    ``device``), an .onnx or a TorchScript export (CPU)."""
    path = Path(path)
    if not path.is_file():
        raise missing_model(path)
    if is_export(path):
        if str(device) not in ("cpu", "auto"):
            raise ValueError(f"{path}: exported models run on the CPU (--device cpu)")
        exported = OnnxModel(path) if path.suffix == ".onnx" else TorchScriptModel(path)
        return exported, exported.tokenizer
    # lazily, for start-up: a checkpoint needs torch, an ONNX export does not
    from asr.model.checkpoint import load_model
    from asr.model.device import pick_device

    model, tokenizer, _ = load_model(path, pick_device(str(device)))
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

"""Export: the whole waveform -> log-probs model as one TorchScript or ONNX file.

    export_model(model, tokenizer, "model.onnx")           # or "model.ts", fmt=...
    model, tokenizer = load_inference_model("model.onnx")  # .onnx | TorchScript | .pt
    log_probs, out_lens = model(wavs, wav_lens)            # as ASRModel does

The exported graph takes wavs (B, S) float32 + wav_lens (B,) int64, both dynamic,
and returns log_probs (B, T', V) + out_lens (B,), with T' = max(out_lens). The file
carries what decoding needs (vocabulary, frame seconds, sample rate) in ONNX
metadata_props or TorchScript extra files. Two parts of ASRModel do not export and
are rewritten here with the same weights and the same outputs on padded batches:
the STFT (complex tensors) and the packed-sequence BiLSTM.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from asr.data.dataset import padded_batches
from asr.data.text import Tokenizer
from asr.features.frontend import LogMel, level_gains
from asr.model.acoustic import ASRModel, BiLSTMEncoder, ConvSubsampling, rnn_direction
from asr.model.exported import (
    EXPORT_VERSION,
    FORMATS,
    INPUTS,
    META_FILE,
    OUTPUTS,
    QUANTIZE,
    import_optional,
)

ONNX_OPSET = 17


class DFTLogMel(LogMel):
    """LogMel with the STFT as a strided conv1d over a fixed windowed DFT basis.

    torch.stft returns complex tensors, which the TorchScript-based ONNX exporter
    refuses; real and imaginary parts as two banks of filters export anywhere.
    Window and mel filters are the given LogMel's (as loaded from the checkpoint).
    The filters span only the window (win_length samples, not n_fft): the zeros
    around it that torch.stft centres it in would be a fifth of the work for nothing.
    """

    def __init__(self, logmel: LogMel):
        super().__init__(logmel.cfg)
        self.mel.load_state_dict(logmel.mel.state_dict())
        n_fft, spec = logmel.cfg.n_fft, self.mel.spectrogram
        self.left = (n_fft - spec.win_length) // 2  # torch.stft centres the window
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
        n = torch.arange(self.left, self.left + spec.win_length, dtype=torch.float64)
        angle = 2 * math.pi * k * n / n_fft
        basis = torch.cat([angle.cos(), -angle.sin()]) * spec.window.double()
        self.register_buffer("basis", basis.float()[:, None])  # (2K, 1, win_length)

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor):
        """wavs: shape = (B, S) -> feats (B, T, n_mels), feat_lens (B,).

        T = max(feat_lens): the zero padding that guarantees one frame is cut off.
        """
        # frame t is n_fft samples from t * hop, its window from t * hop + left
        x = F.pad(wavs, (0, self.cfg.n_fft))[:, None, self.left :]
        spec = F.conv1d(x, self.basis, stride=self.cfg.hop_length)  # (B, 2K, T+)
        re, im = spec.chunk(2, dim=1)
        fb = self.mel.mel_scale.fb  # (K, n_mels)
        mel = (re * re + im * im).transpose(1, 2) @ fb  # (B, T+, n_mels)
        feat_lens = self.frame_lens(wav_lens)
        return self.log(_first_frames(mel, feat_lens)), feat_lens


class PaddedBiRNN(nn.Module):
    """BiLSTMEncoder over a zero-padded batch instead of a packed sequence.

    Each direction is a unidirectional LSTM/GRU sharing the trained weights; the
    backward one reads each row reversed within its own length (a gather), so
    padding stays behind the real frames in both directions and never reaches them.
    """

    def __init__(self, encoder: BiLSTMEncoder):
        super().__init__()
        self.forward_rnns = nn.ModuleList(rnn_direction(r, "") for r in encoder.layers)
        self.backward_rnns = nn.ModuleList(
            rnn_direction(r, "_reverse") for r in encoder.layers
        )
        self.norms = encoder.norms

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """x: shape = (B, T, D), lens (B,) -> (B, T, 2H); frames past lens are 0."""
        t = torch.ones_like(x[:1, :, 0], dtype=torch.long).cumsum(1) - 1  # (1, T)
        valid = t < lens[:, None]  # (B, T)
        rev = torch.where(valid, lens[:, None] - 1 - t, t)  # its own inverse
        for fwd, bwd, norm in zip(self.forward_rnns, self.backward_rnns, self.norms):
            forward = fwd(x)[0]
            backward = _gather_frames(bwd(_gather_frames(x, rev))[0], rev)
            x = norm(torch.cat([forward, backward], dim=-1))
        return x * valid[..., None]


class ExportableModel(nn.Module):
    """ASRModel's forward pass in ops that trace and export with dynamic shapes."""

    def __init__(self, model: ASRModel):
        super().__init__()
        self.level_db = model.feature_cfg.level_db
        self.logmel = DFTLogMel(model.frontend.logmel)
        self.cmvn = model.frontend.cmvn
        self.conv = model.subsampling.conv
        self.encoder = PaddedBiRNN(model.encoder)
        self.head = model.head

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor):
        """wavs: shape = (B, S) float32, wav_lens (B,) int64
        -> log_probs (B, T', V), out_lens (B,); T' = max(out_lens)."""
        wavs = wavs.float()
        if self.level_db is not None:
            # one extra 10 ms frame of zeros (never valid) keeps level_gains off
            # its empty-input branch for every S, so the trace holds for all
            hop = 160  # level_gains' 10 ms frames
            gains = level_gains(F.pad(wavs, (0, hop)), wav_lens, self.level_db)
            wavs = wavs * gains[:, None]
        feats, feat_lens = self.logmel(wavs, wav_lens)
        feats = F.pad(self.cmvn(feats), (0, 0, 0, 6))  # 7 frames make one output
        x = self.conv(feats[:, None]).permute(0, 2, 1, 3).flatten(2)  # (B, T', C*F')
        lens = ConvSubsampling.out_lens(feat_lens).clamp(min=1)
        x = _first_frames(x, lens)
        return self.head(self.encoder(x, lens)), lens


def _first_frames(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """x: shape = (B, T, D) -> (B, max(lens), D), as a traceable gather."""
    return x.index_select(1, torch.arange(lens.max(), device=x.device))


def _gather_frames(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x: shape = (B, T, D), index (B, T) -> x[b, index[b, t]]."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[2]))


def export_model(
    model: ASRModel,
    tokenizer: Tokenizer,
    path: str | Path,
    fmt: str | None = None,
    quantize: str | None = None,
) -> Path:
    """Write ``model`` as one TorchScript or ONNX file (atomically).

    fmt: "onnx" | "torchscript" (default: from the suffix, .onnx or else
    TorchScript). quantize: "int8" for dynamic int8 weights in the recurrent and
    output layers (torch.ao for TorchScript, onnxruntime for ONNX).
    """
    path = Path(path)
    fmt = fmt or ("onnx" if path.suffix == ".onnx" else "torchscript")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (one of {sorted(FORMATS)})")
    if (fmt == "onnx") != (path.suffix == ".onnx"):
        raise ValueError(f"{path}: ONNX files, and only they, end in .onnx")
    if quantize not in (None, *QUANTIZE):
        raise ValueError(f"unknown quantisation {quantize!r} (one of {QUANTIZE})")
    model = copy.deepcopy(model).float().cpu().eval()
    wrapper = ExportableModel(model).eval()
    example = _example_batch(model.feature_cfg.sample_rate)
    meta = export_metadata(model, tokenizer, quantize)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        out = Path(tmp) / path.name
        with warnings.catch_warnings(), torch.no_grad():
            # the tracer warns about shapes it records; they are meant dynamic
            warnings.simplefilter("ignore")
            if fmt == "torchscript":
                _save_torchscript(wrapper, example, out, meta, quantize)
            else:
                _save_onnx(wrapper, example, out, meta, quantize)
        os.replace(out, path)
    return path


def export_metadata(
    model: ASRModel, tokenizer: Tokenizer, quantize: str | None
) -> dict:
    """What decoding needs, and what the file is, as JSON-able values."""
    return {
        "asr_export_version": EXPORT_VERSION,
        "tokenizer": tokenizer.to_dict(),
        "frame_seconds": model.frame_seconds,
        "sample_rate": model.feature_cfg.sample_rate,
        "model_config": dataclasses.asdict(model.cfg),
        "feature_config": dataclasses.asdict(model.feature_cfg),
        "n_params": model.n_params(),
        "quantize": quantize,
        "decoding": model.decoding_defaults,
    }


def _example_batch(sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two noise waveforms of different lengths: the shapes traced are dynamic."""
    gen = torch.Generator().manual_seed(0)
    wavs = 0.1 * torch.randn(2, 2 * sample_rate, generator=gen)
    return wavs, torch.tensor([2 * sample_rate, sample_rate])


def _save_torchscript(wrapper, example, out: Path, meta: dict, quantize) -> None:
    if quantize == "fp16":
        raise ValueError("fp16 storage is for ONNX exports (TorchScript: int8)")
    if quantize:
        wrapper = torch.ao.quantization.quantize_dynamic(
            wrapper, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8
        )
    traced = torch.jit.trace(wrapper, example, check_trace=False)
    torch.jit.save(traced, str(out), _extra_files={META_FILE: json.dumps(meta)})


def _save_onnx(wrapper, example, out: Path, meta: dict, quantize) -> None:
    onnx = import_optional("onnx")

    frames = {0: "batch", 1: "frames"}
    torch.onnx.export(
        wrapper,
        example,
        str(out),
        dynamo=False,  # the TorchScript-based exporter maps nn.LSTM/GRU to ONNX ops
        opset_version=ONNX_OPSET,
        input_names=INPUTS,
        output_names=OUTPUTS,
        dynamic_axes={
            "wavs": {0: "batch", 1: "samples"},
            "wav_lens": {0: "batch"},
            "log_probs": frames,
            "out_lens": {0: "batch"},
        },
    )
    if quantize == "int8":
        _quantize_onnx(out)
    proto = onnx.load(str(out))
    if quantize == "fp16":
        _store_half(proto)
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(proto, str(out))


def _store_half(proto, min_size: int = 1024) -> None:
    """Store the large float32 weights of an ONNX graph as float16, each cast
    back to float32 where the graph reads it: half the file, the same
    arithmetic (onnxruntime folds the casts when it loads the model). Exact for
    weights that came from a half-precision checkpoint, as the bundled one (the
    frontend's constants stay float32)."""
    onnx = import_optional("onnx")
    numpy_helper = onnx.numpy_helper

    graph, casts = proto.graph, []
    # the frontend's DFT basis and mel filters are computed in float32, not trained
    frontend = {i for n in graph.node if "logmel" in n.name for i in n.input}
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or init.name in frontend:
            continue
        values = numpy_helper.to_array(init)
        if values.size < min_size:
            continue
        name = init.name
        init.CopyFrom(
            numpy_helper.from_array(values.astype(np.float16), name + "_fp16")
        )
        casts.append(
            onnx.helper.make_node(
                "Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT
            )
        )
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)


def _quantize_onnx(path: Path) -> None:
    """onnxruntime dynamic int8 for the LSTMs and the head's MatMul; the frontend
    (DFT, mel filters) and the convolutions stay float32."""
    # lazily: optional (asr[export]), and only quantisation needs them
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    frontend = [n.name for n in onnx.load(str(path)).graph.node if "logmel" in n.name]
    fp32 = path.with_suffix(".fp32.onnx")
    os.replace(path, fp32)
    logging.getLogger().disabled = True  # its advice to pre-process, at WARNING
    try:
        quantize_dynamic(
            fp32,
            path,
            op_types_to_quantize=["LSTM", "MatMul"],
            nodes_to_exclude=frontend,
            weight_type=QuantType.QInt8,
        )
    finally:
        logging.getLogger().disabled = False


def quantize_model(model: ASRModel) -> nn.Module:
    """Dynamic int8 weights for the LSTMs/GRUs and the head (eager PyTorch, CPU).

    torch.ao.quantization is deprecated (for torchao) but still ships with torch.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).cpu().eval(),
            {nn.LSTM, nn.GRU, nn.Linear},
            dtype=torch.qint8,
        )


@torch.inference_mode()
def max_difference(
    reference, candidate, waveforms: Sequence[np.ndarray], batch_seconds: float = 60.0
) -> float:
    """Largest |log-prob difference| of two models over the valid frames of
    ``waveforms``, batched (and padded) as the Transcriber batches them."""
    worst = 0.0
    for _, padded, lens in padded_batches(waveforms, batch_seconds):
        a, a_lens = reference(padded, lens)
        b, b_lens = candidate(padded, lens)
        if not torch.equal(a_lens.cpu(), b_lens.cpu()):
            raise ValueError("the two models give different output lengths")
        valid = torch.arange(a.shape[1])[None] < a_lens[:, None]
        n = int(a_lens.max())
        worst = max(worst, float((a[:, :n] - b[:, :n]).abs()[valid[:, :n]].max()))
    return worst

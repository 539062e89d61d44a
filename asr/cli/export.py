"""`asr export`: a model as one TorchScript or ONNX file (see asr/model/export.py)."""

from __future__ import annotations

from pathlib import Path

from asr.model.bundled import default_model_path, resolve_model
from asr.model.exported import FORMATS, QUANTIZE


def add_export_command(sub) -> None:
    p = sub.add_parser(
        "export", help="export a model (waveform -> log-probs) to TorchScript or ONNX"
    )
    p.add_argument(
        "--model",
        default=None,
        help="checkpoint or bundled model name (default: the default bundled model)",
    )
    p.add_argument(
        "--format",
        choices=sorted(FORMATS),
        help="default: onnx for an .onnx output, torchscript otherwise",
    )
    p.add_argument("--output", type=Path, required=True)
    p.add_argument(
        "--quantize",
        choices=QUANTIZE,
        help="int8: dynamic int8 weights in the recurrent and output layers (CPU); "
        "fp16: weights stored as float16, computed in float32 (ONNX, half the file)",
    )
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from asr.audio.files import load_audio
    from asr.model.checkpoint import load_model
    from asr.model.export import export_model, max_difference
    from asr.model.exported import OnnxModel, load_inference_model

    model, tokenizer, _ = load_model(resolve_model(args.model))
    path = export_model(model, tokenizer, args.output, args.format, args.quantize)
    exported, _ = load_inference_model(path)
    folder = default_model_path().parent / "clips"
    rows = (folder / "references.tsv").read_text(encoding="utf-8").splitlines()
    clips = [folder / row.split("\t")[0] for row in rows]
    diff = max_difference(model, exported, [load_audio(p) for p in clips])
    kind = "ONNX" if isinstance(exported, OnnxModel) else "TorchScript"
    quantized = f", {args.quantize}" if args.quantize else ""
    print(
        f"{path} ({kind}{quantized}, {path.stat().st_size / 2**20:.1f} MiB); "
        f"largest log-prob difference to the checkpoint on {len(clips)} clips: "
        f"{diff:.2g}"
    )
    return 0

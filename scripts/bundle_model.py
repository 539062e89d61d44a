"""Copy a trained checkpoint into the package as the default model (fp16 weights),
with its ONNX export for torch-free transcription.

    python scripts/bundle_model.py exp/an4/best.pt --pad-ms 200 \
        --check data/commands/an4_dev.jsonl data/commands/synth_dev.jsonl

Training configuration is dropped from the metadata (paths of this machine);
everything needed to rebuild and run the model stays. The export is int8 when, on
every --check manifest (the model card's test sets), its WER is within
--max-int8-loss points of the bundled checkpoint's with the model's own decoding
defaults; otherwise its float32 weights are stored as float16 (the checkpoint's
own precision, so the same results). `asr transcribe` and `asr evaluate` use it by
default when onnxruntime is installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.data.manifest import read_manifest
from asr.decode.decoder import DecodingOptions, model_decoding_defaults
from asr.decode.metrics import score
from asr.model.bundled import default_export_path, default_model_path
from asr.model.checkpoint import load_model, save_model
from asr.model.export import export_model
from asr.model.exported import load_inference_model
from asr.transcribe import Transcriber

MAX_BYTES = 20 * 1024 * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--output", type=Path, default=default_model_path())
    ap.add_argument(
        "--level-db",
        type=float,
        default=None,
        help="normalise each utterance's speech level to this dBFS "
        "(FeatureConfig.level_db) in the bundled model",
    )
    ap.add_argument(
        "--pad-ms",
        type=float,
        default=None,
        help="edge padding the model is decoded with unless told otherwise "
        "(DecodingOptions.pad_ms, stored as metadata 'decoding')",
    )
    ap.add_argument(
        "--export",
        type=Path,
        default=default_export_path(),
        help="the ONNX export to write beside it",
    )
    ap.add_argument(
        "--check",
        type=Path,
        nargs="*",
        default=[],
        help="manifests on which the int8 export must match the checkpoint's WER",
    )
    ap.add_argument("--max-int8-loss", type=float, default=0.3, help="WER points")
    ap.add_argument(
        "--export-only",
        action="store_true",
        help="CHECKPOINT is bundled already: only (re)make its export",
    )
    args = ap.parse_args()
    if args.export_only:
        bundle_export(args.checkpoint, args.export, args.check, args.max_int8_loss)
        return
    model, tok, meta = load_model(args.checkpoint)
    if args.pad_ms is not None:
        DecodingOptions(pad_ms=args.pad_ms)  # checks the value
        meta["decoding"] = {**meta.get("decoding", {}), "pad_ms": args.pad_ms}
    if args.level_db is not None:
        model.feature_cfg.level_db = args.level_db
        meta["level_db_added_at_bundling"] = args.level_db
    cfg = meta.pop("config", {})
    meta["train_manifest"] = Path(meta.get("train_manifest", "")).name
    meta["training"] = {k: cfg.get(k) for k in ("model", "optim", "augment")}
    meta["epochs_configured"] = cfg.get("trainer", {}).get("epochs")
    save_model(args.output, model, tok, meta, half=True)
    size = args.output.stat().st_size
    print(
        f"{args.output}: {size / 2**20:.1f} MiB, {model.n_params() / 1e6:.2f} M "
        f"parameters, dev {tok.error_label} {100 * meta['dev_wer']:.2f}%"
    )
    if size > MAX_BYTES:
        raise SystemExit(f"{args.output} is over 20 MiB: too large to bundle")
    bundle_export(args.output, args.export, args.check, args.max_int8_loss)


def bundle_export(
    checkpoint: Path, out: Path, manifests: list[Path], max_loss: float
) -> str:
    """Export the bundled checkpoint as int8 ONNX, or with its float32 weights
    stored as float16 (the checkpoint's own precision: the same results, half the
    size of float32) when int8 costs more than ``max_loss`` WER points on any
    manifest; returns the kind written."""
    model, tok, _ = load_model(checkpoint)
    export_model(model, tok, out, "onnx", "int8")
    worst = 0.0
    for manifest in manifests:
        ours, theirs = wer(checkpoint, manifest), wer(out, manifest)
        worst = max(worst, theirs - ours)
        print(f"{manifest}: checkpoint {ours:.2f}%, int8 ONNX {theirs:.2f}%")
    kind = "int8"
    if worst > max_loss:
        kind = "fp16"
        export_model(model, tok, out, "onnx", kind)
        print(f"{manifests[0]}: fp16-stored ONNX {wer(out, manifests[0]):.2f}%")
    size = out.stat().st_size
    print(f"{out}: {kind} ONNX, {size / 2**20:.1f} MiB (int8 loses {worst:.2f})")
    if size > MAX_BYTES:
        raise SystemExit(f"{out} is over 20 MiB: too large to bundle")
    return kind


def wer(model_path: Path, manifest: Path) -> float:
    """WER (%) of a model file on a manifest with its decoding defaults."""
    model, tok = load_inference_model(model_path)
    options = DecodingOptions.for_model(model_decoding_defaults(model, tok))
    utts = read_manifest(manifest)
    tr = Transcriber(model, tok, options)
    hyps = [t.text for t in tr.transcribe_files(u.audio_filepath for u in utts)]
    return 100 * score([u.text for u in utts], hyps).wer


if __name__ == "__main__":
    main()

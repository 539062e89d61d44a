"""Copy a trained checkpoint into the package as the default model (fp16 weights).

    python scripts/bundle_model.py exp/an4/best.pt --pad-ms 200

Training configuration is dropped from the metadata (paths of this machine);
everything needed to rebuild and run the model stays.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.decode.decoder import DecodingOptions
from asr.model.checkpoint import default_model_path, load_model, save_model

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
    args = ap.parse_args()
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
        f"parameters, dev WER {100 * meta['dev_wer']:.2f}%"
    )
    if size > MAX_BYTES:
        raise SystemExit(f"{args.output} is over 20 MiB: too large to bundle")


if __name__ == "__main__":
    main()

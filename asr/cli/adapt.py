"""`asr adapt`: fine-tune a model on a few transcribed clips of one voice (see
asr/train/adapt.py); the result is a checkpoint like any other."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from asr.train.adapt_config import AdaptConfig


def add_adapt_command(sub) -> None:
    p = sub.add_parser(
        "adapt",
        help="adapt a model to a speaker from a few transcribed clips (enrolment)",
    )
    p.add_argument(
        "manifest",
        type=Path,
        help="JSONL manifest of the speaker's clips with their transcripts "
        "(e.g. each command word said 3 times)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="checkpoint or bundled model name to start from (default: the default "
        "bundled model)",
    )
    p.add_argument("--output", type=Path, required=True, help="adapted checkpoint")
    d = AdaptConfig()
    p.add_argument("--steps", type=int, default=d.steps, help=f"default {d.steps}")
    p.add_argument("--lr", type=float, default=d.lr, help=f"default {d.lr:g}")
    p.add_argument(
        "--anchor",
        type=float,
        default=d.anchor,
        help=f"pull towards the starting weights (L2-SP weight; default {d.anchor:g})",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--device", default="cpu", help="compute device: cpu | cuda | cuda:N | auto"
    )
    p.set_defaults(func=cmd_adapt)


def cmd_adapt(args) -> int:
    from asr.data.manifest import read_manifest
    from asr.model.bundled import resolve_model
    from asr.model.checkpoint import load_model, save_model, stored_half
    from asr.model.device import pick_device
    from asr.model.exported import is_export
    from asr.train.adapt import adapt

    source = resolve_model(args.model)
    if is_export(Path(source)):
        raise ValueError(
            f"{source} is an exported model (inference only): adapt its .pt "
            "checkpoint, then export the result"
        )
    utts = read_manifest(args.manifest)
    model, tokenizer, meta = load_model(source, pick_device(args.device))
    cfg = AdaptConfig(steps=args.steps, lr=args.lr, anchor=args.anchor, seed=args.seed)
    with tqdm(total=cfg.steps, unit="step", disable=None, file=sys.stderr) as bar:

        def on_step(step: int, loss: float) -> None:
            bar.set_postfix(loss=f"{loss:.2f}", refresh=False)
            bar.update()

        result = adapt(model, tokenizer, utts, cfg, on_step)  # ValueError -> main
    meta = dict(meta)
    meta["adaptation"] = [
        *meta.get("adaptation", []),
        result.metadata(cfg, Path(source).name),
    ]
    save_model(args.output, model, tokenizer, meta, half=stored_half(source))
    print(
        f"{args.output}: adapted on {result.n_utterances} clips "
        f"({result.audio_seconds:.1f} s of audio) in {cfg.steps} steps, "
        f"{result.wall_seconds:.0f} s; loss per clip {result.losses[0]:.2f} -> "
        f"{result.losses[-1]:.2f}"
    )
    return 0

"""The `asr` command: transcribe | evaluate | stats | info."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

from asr.audio import load_audio
from asr.checkpoint import CheckpointError, atomic_save, default_model_path, load_model
from asr.data import ManifestError, read_manifest
from asr.features import FeatureConfig, compute_cmvn_stats
from asr.metrics import score
from asr.training import pick_device
from asr.transcribe import transcribe_files


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return args.func(args)
    except (CheckpointError, ManifestError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="asr", description="BiLSTM-CTC speech recognition"
    )
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument(
        "files", nargs="+", help="audio files (wav, flac, ogg, mp3, sph, ...)"
    )
    _model_args(p)
    p.add_argument("--format", choices=["txt", "json"], default="txt")
    p.add_argument(
        "--output-dir",
        type=Path,
        help="write <stem>.txt/.json here instead of printing",
    )
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("evaluate", help="WER/CER of a model on a JSONL manifest")
    p.add_argument("manifest", type=Path)
    _model_args(p)
    p.add_argument(
        "--report",
        type=Path,
        help="per-utterance TSV report (default: <manifest stem>.report.tsv)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("stats", help="feature mean/std of a training manifest")
    p.add_argument("manifest", type=Path)
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("demo", help="transcribe the bundled AN4 clips")
    _model_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("info", help="describe a model checkpoint")
    _model_args(p)
    p.set_defaults(func=cmd_info)
    return ap


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="checkpoint (default: the bundled AN4 model)",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument(
        "--batch-seconds",
        type=float,
        default=120.0,
        help="padded audio seconds per inference batch",
    )


def _load(args):
    return load_model(args.model or default_model_path(), pick_device(args.device))


def cmd_transcribe(args) -> int:
    model, tokenizer, _ = _load(args)
    n_failed = 0
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    for res in transcribe_files(model, tokenizer, args.files, args.batch_seconds):
        if res.error:
            n_failed += 1
            print(f"error: {res.error}", file=sys.stderr)
            continue
        text = res.hypothesis.text
        if args.output_dir is None:
            print(
                f"{res.path}\t{text}"
                if args.format == "txt"
                else json.dumps(
                    {"file": res.path, "text": text, "duration": round(res.duration, 3)}
                ),
                flush=True,
            )
            continue
        out = args.output_dir / f"{Path(res.path).stem}.{args.format}"
        body = (
            text + "\n"
            if args.format == "txt"
            else json.dumps(
                {"text": text, "duration": round(res.duration, 3)}, indent=2
            )
            + "\n"
        )
        out.write_text(body, encoding="utf-8")
    if n_failed:
        print(f"{n_failed} file(s) failed", file=sys.stderr)
    return 1 if n_failed else 0


def cmd_evaluate(args) -> int:
    utts = read_manifest(args.manifest)
    model, tokenizer, _ = _load(args)
    refs, hyps, ids, n_failed = [], [], [], 0
    results = transcribe_files(
        model, tokenizer, [u.audio_filepath for u in utts], args.batch_seconds
    )
    for utt, res in zip(utts, results):
        if res.error:
            n_failed += 1
            print(f"error: {res.error} (skipped)", file=sys.stderr)
            continue
        refs.append(utt.text)
        hyps.append(res.hypothesis.text)
        ids.append(utt.id)
    report = score(refs, hyps)
    out = args.report or Path(f"{args.manifest.stem}.report.tsv")
    _write_report(out, ids, report)
    print(f"utterances: {len(refs)} (failed: {n_failed})")
    print(f"WER: {100 * report.wer:.2f}%  CER: {100 * report.cer:.2f}%")
    print(f"report: {out}")
    return 1 if n_failed else 0


def _write_report(path: Path, ids: list[str], report) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(
            [
                "id",
                "reference",
                "hypothesis",
                "ref_words",
                "substitutions",
                "deletions",
                "insertions",
                "word_errors",
                "char_errors",
            ]
        )
        for uid, u in zip(ids, report.utterances):
            w.writerow(
                [
                    uid,
                    u.reference,
                    u.hypothesis,
                    u.n_ref_words,
                    u.substitutions,
                    u.deletions,
                    u.insertions,
                    u.word_errors,
                    u.char_errors,
                ]
            )


def cmd_stats(args) -> int:
    utts = read_manifest(args.manifest)
    cfg = FeatureConfig()
    mean, std = compute_cmvn_stats((load_audio(u.audio_filepath) for u in utts), cfg)
    atomic_save(
        {"mean": mean, "std": std, "n_mels": cfg.n_mels, "n_utterances": len(utts)},
        args.output,
    )
    print(f"feature statistics of {len(utts)} utterances -> {args.output}")
    return 0


def cmd_demo(args) -> int:
    clips = default_model_path().parent / "clips"
    rows = [
        line.split("\t")
        for line in (clips / "references.tsv").read_text(encoding="utf-8").splitlines()
    ]
    model, tokenizer, meta = _load(args)
    print(
        f"model: {args.model or default_model_path()} "
        f"({model.n_params() / 1e6:.1f} M parameters, "
        f"dev WER {100 * meta.get('dev_wer', float('nan')):.1f}%)"
    )
    results = transcribe_files(model, tokenizer, [clips / name for name, _ in rows])
    refs, hyps = [], []
    for (name, ref), res in zip(rows, results):
        hyp = res.hypothesis.text if res.hypothesis else f"<error: {res.error}>"
        print(f"\n{name}\n  reference:  {ref}\n  recognised: {hyp}")
        refs.append(ref)
        hyps.append(hyp)
    report = score(refs, hyps)
    print(
        f"\nWER on these {len(rows)} clips: {100 * report.wer:.1f}% "
        f"(CER {100 * report.cer:.1f}%)"
    )
    return 0


def cmd_info(args) -> int:
    model, tokenizer, meta = _load(args)
    meta = {k: v for k, v in meta.items() if k != "config"}
    print(
        json.dumps(
            {
                "parameters": model.n_params(),
                "vocabulary": tokenizer.symbols,
                "model_config": vars(model.cfg),
                "metadata": meta,
            },
            indent=2,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

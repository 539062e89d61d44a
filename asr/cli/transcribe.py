"""`asr transcribe` and `asr evaluate`: files, folders, manifests or standard
input -> transcripts in every output format; WER/CER with per-utterance reports."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from asr.audio.files import AudioError, decode_audio_bytes
from asr.cli.common import (
    decoding_args,
    expand_inputs,
    load_transcriber,
    model_args,
    speaker_eq_arg,
    speaker_eq_filter,
)
from asr.data.manifest import Utterance, read_manifest
from asr.decode.metrics import score
from asr.output import FORMATS, render, write_outputs
from asr.transcribe import Transcriber, Transcript


def add_transcribe_commands(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files, folders (searched recursively), JSONL manifests, "
        "or - for a WAV on standard input",
    )
    model_args(p)
    decoding_args(p)
    speaker_eq_arg(p, "all the input files as one speaker's")
    p.add_argument("--format", default="txt", choices=[*FORMATS, "all"])
    p.add_argument(
        "--output-dir",
        type=Path,
        help="write <stem>.<format> files here instead of printing",
    )
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("evaluate", help="WER/CER of a model on a JSONL manifest")
    p.add_argument("manifest", type=Path)
    model_args(p)
    decoding_args(p)
    speaker_eq_arg(p, "each speaker of the manifest on all of his clips")
    p.add_argument(
        "--report",
        type=Path,
        help="per-utterance TSV report (default: <manifest stem>.report.tsv)",
    )
    p.set_defaults(func=cmd_evaluate)


def _transcripts(tr: Transcriber, inputs: list[str]):
    files = [i for i in inputs if i != "-"]
    results = tr.transcribe_files(files)
    for item in inputs:
        if item == "-":
            try:
                yield tr.transcribe_array(
                    "-", decode_audio_bytes(sys.stdin.buffer.read())
                )
            except AudioError as err:
                yield Transcript("-", error=str(err))
        else:
            yield next(results)


def cmd_transcribe(args) -> int:
    inputs = expand_inputs(args.inputs)
    one_speaker = [Utterance(i, 0.0, "", "inputs") for i in inputs if i != "-"]
    tr = load_transcriber(
        args, audio_filter=speaker_eq_filter(args, one_speaker), prefer_export=True
    )
    formats = list(FORMATS) if args.format == "all" else [args.format]
    words = tr.options.word_timestamps
    n_failed = 0
    taken: set[str] = set()
    bar = tqdm(
        total=len(inputs),
        unit="file",
        disable=len(inputs) < 10 or None,
        file=sys.stderr,
    )
    for t in _transcripts(tr, inputs):
        bar.update()
        if t.error:
            n_failed += 1
            bar.write(f"error: {t.error}", file=sys.stderr)
        elif args.output_dir:
            paths = write_outputs(t, args.output_dir, formats, words, taken)
            if paths[0].stem != Path(t.path).stem and t.path != "-":
                bar.write(
                    f"note: {t.path}: written as {paths[0].stem}.* (another "
                    "input has the same name)",
                    file=sys.stderr,
                )
        elif formats == ["txt"]:
            print(f"{t.path}\t{t.text}", flush=True)
        elif formats == ["json"]:  # JSON Lines: one object per input
            print(json.dumps({"file": t.path, **t.to_dict(words)}), flush=True)
        else:
            for fmt in formats:
                print(f"==> {t.path} [{fmt}] <==\n{render(t, fmt, words)}", flush=True)
    bar.close()
    if n_failed:
        print(f"{n_failed} of {len(inputs)} file(s) failed", file=sys.stderr)
    return 1 if n_failed else 0


def cmd_evaluate(args) -> int:
    utts = read_manifest(args.manifest)
    counts = Counter(u.id for u in utts)
    dups = sorted(i for i, n in counts.items() if n > 1)
    if dups:
        print(
            f"warning: {args.manifest}: {len(dups)} utterance id(s) occur more "
            f"than once (e.g. {dups[0]}); each line is scored",
            file=sys.stderr,
        )
    tr = load_transcriber(
        args, audio_filter=speaker_eq_filter(args, utts), prefer_export=True
    )
    refs, hyps, ids, n_failed = [], [], [], 0
    for utt, t in zip(utts, tr.transcribe_files(u.audio_filepath for u in utts)):
        if t.error:
            n_failed += 1
            print(f"error: {t.error} (skipped)", file=sys.stderr)
            continue
        refs.append(utt.text)
        hyps.append(t.text)
        ids.append(utt.id)
    report = score(refs, hyps)
    out = args.report or Path(f"{args.manifest.stem}.report.tsv")
    write_report(out, ids, report)
    print(
        f"utterances: {len(refs)} (failed: {n_failed})  decoder: {tr.options.decoder}"
        + (f"  edge padding: {tr.options.pad_ms:g} ms" if tr.options.pad_ms else "")
    )
    print(f"WER: {100 * report.wer:.2f}%  CER: {100 * report.cer:.2f}%")
    print(f"report: {out}")
    return 1 if n_failed else 0


def write_report(path: Path, ids: list[str], report) -> None:
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

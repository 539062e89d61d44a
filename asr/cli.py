"""The `asr` command: transcribe, evaluate, and the tools around them (lm,
tune-decoder, stats, info, average, demo, stream, commands, explain, export, adapt)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import sys
from collections import Counter
from pathlib import Path

from asr.audio import AUDIO_EXTENSIONS, AudioError, decode_audio_bytes
from asr.checkpoint import CheckpointError, default_model_path
from asr.data import ManifestError, Utterance, read_manifest
from asr.decoding import DecodingOptions
from asr.export import load_inference_model
from asr.metrics import score
from asr.mic import MicrophoneError
from asr.output import FORMATS, render, write_outputs
from asr.train_setup import pick_device
from asr.transcribe import Transcriber, Transcript


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return args.func(args)
    except (
        CheckpointError,
        ManifestError,
        AudioError,
        ValueError,
        FileNotFoundError,
        MicrophoneError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="asr", description="BiLSTM-CTC speech recognition"
    )
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files, folders (searched recursively), JSONL manifests, "
        "or - for a WAV on standard input",
    )
    _model_args(p)
    _decoding_args(p)
    _speaker_eq_arg(p, "all the input files as one speaker's")
    p.add_argument("--format", default="txt", choices=[*FORMATS, "all"])
    p.add_argument(
        "--output-dir",
        type=Path,
        help="write <stem>.<format> files here instead of printing",
    )
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("evaluate", help="WER/CER of a model on a JSONL manifest")
    p.add_argument("manifest", type=Path)
    _model_args(p)
    _decoding_args(p)
    _speaker_eq_arg(p, "each speaker of the manifest on all of his clips")
    p.add_argument(
        "--report",
        type=Path,
        help="per-utterance TSV report (default: <manifest stem>.report.tsv)",
    )
    p.set_defaults(func=cmd_evaluate)

    from asr.cli_tools import add_tool_commands

    add_tool_commands(sub, _model_args, _decoding_args)
    from asr.cli_stream import add_stream_commands

    add_stream_commands(sub, _model_args)
    from asr.cli_explain import add_explain_command

    add_explain_command(sub, _model_args, _decoding_args)
    from asr.cli_export import add_export_command

    add_export_command(sub)
    from asr.cli_adapt import add_adapt_command

    add_adapt_command(sub)
    return ap


def _model_args(p: argparse.ArgumentParser, compute_flag: str = "--device") -> None:
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="checkpoint (default: the bundled AN4 model)",
    )
    p.add_argument(
        compute_flag,
        dest="device",
        default="cpu",
        help="compute device: cpu | cuda | cuda:N | auto",
    )
    p.add_argument(
        "--batch-seconds",
        type=float,
        default=120.0,
        help="padded audio seconds per inference batch",
    )
    p.add_argument(
        "--max-segment-seconds",
        type=float,
        default=30.0,
        help="longer files are cut at pauses into pieces this long",
    )


def _speaker_eq_arg(p: argparse.ArgumentParser, measured: str) -> None:
    p.add_argument(
        "--speaker-eq",
        type=Path,
        metavar="REFERENCE",
        help="for a model trained on speaker-equalised audio (the digits recipe's): "
        "filter the inputs towards this reference (asr speaker-eq reference; the "
        f"recipe keeps it as EXP/speaker_eq.json), measuring {measured}",
    )


def speaker_eq_filter(args, utts):
    """``--speaker-eq``: an audio filter for the Transcriber, each clip of
    ``utts`` through its speaker's filter; None without the option."""
    if not args.speaker_eq:
        return None
    from asr import speaker_eq

    gains = speaker_eq.clip_gains(utts, speaker_eq.load_reference(args.speaker_eq))
    print(
        f"speaker equalisation towards {args.speaker_eq}: "
        f"{len({speaker_eq.speaker_of(u) for u in utts if u.audio_filepath in gains})}"
        " speaker(s), "
        f"{len(gains)} of {len(utts)} clips measured",
        file=sys.stderr,
    )

    def equalise(name: str, wav):
        if name not in gains:
            return wav
        return speaker_eq.as_pcm16(speaker_eq.equalise(wav, gains[name]))

    return equalise


def _decoding_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding")
    g.add_argument(
        "--decoding-config",
        type=Path,
        help="JSON decoding options (e.g. from asr tune-decoder); "
        "the flags below override it",
    )
    g.add_argument("--decoder", choices=["greedy", "beam"])
    g.add_argument("--beam-size", type=int)
    g.add_argument(
        "--nbest",
        type=int,
        help="keep N hypotheses per segment (JSON: segments[].alternatives)",
    )
    g.add_argument("--lm", help="word n-gram LM (ARPA, or KenLM binary with --lexicon)")
    g.add_argument("--lexicon", help="lexicon file: 'word w o r d |' per line")
    g.add_argument("--lm-weight", type=float)
    g.add_argument("--word-bonus", type=float, dest="word_score")
    g.add_argument("--word-timestamps", action="store_true", default=None)
    g.add_argument(
        "--pad-ms",
        type=float,
        help="top up the pause before and after each clip's speech to this "
        "many ms with faint noise before decoding (for clips cut tight to the "
        "speech; word times stay the file's). Default: the model's own (the "
        "bundled model: 200), else 0",
    )


def decoding_options(args, model_defaults: dict | None = None) -> DecodingOptions:
    """Options from --decoding-config (else the model's own defaults, e.g. the
    bundled model's pad_ms), overridden by explicit flags."""
    opts = (
        DecodingOptions.from_file(args.decoding_config)
        if args.decoding_config
        else DecodingOptions.for_model(model_defaults or {})
    )
    flags = {
        k: getattr(args, k)
        for k in (
            "decoder",
            "beam_size",
            "nbest",
            "lm",
            "lexicon",
            "lm_weight",
            "word_score",
            "word_timestamps",
            "pad_ms",
        )
        if getattr(args, k, None) is not None
    }
    wants_beam = flags.get("lm") or flags.get("lexicon") or flags.get("nbest", 1) > 1
    if wants_beam and "decoder" not in flags:
        flags["decoder"] = "beam"  # these only make sense with beam search
    return dataclasses.replace(opts, **flags)


def load_transcriber(
    args, options: DecodingOptions | None = None, audio_filter=None
) -> Transcriber:
    model, tokenizer = load_inference_model(
        args.model or default_model_path(), pick_device(args.device)
    )
    return Transcriber(
        model,
        tokenizer,
        options or decoding_options(args, model.decoding_defaults),
        args.batch_seconds,
        args.max_segment_seconds,
        audio_filter,
    )


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files as given; folders -> their audio files (recursive, sorted);
    *.jsonl -> the manifest's audio paths; '-' stays (standard input)."""
    out: list[str] = []
    for item in inputs:
        path = Path(item)
        if item == "-":
            out.append(item)
        elif path.is_dir():
            out += sorted(
                str(p)
                for p in path.rglob("*")
                if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
            )
        elif path.suffix == ".jsonl":
            out += [u.audio_filepath for u in read_manifest(path)]
        else:
            out.append(item)
    return out


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
    from tqdm import tqdm

    inputs = expand_inputs(args.inputs)
    one_speaker = [Utterance(i, 0.0, "", "inputs") for i in inputs if i != "-"]
    tr = load_transcriber(args, audio_filter=speaker_eq_filter(args, one_speaker))
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
    tr = load_transcriber(args, audio_filter=speaker_eq_filter(args, utts))
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


if __name__ == "__main__":
    sys.exit(main())

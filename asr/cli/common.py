"""What the `asr` command groups share: the model and decoding flags, decoding
options from flags and files, the transcriber they build, and input expansion."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from asr.audio.files import AUDIO_EXTENSIONS
from asr.data.manifest import read_manifest
from asr.decode.decoder import DecodingOptions, model_decoding_defaults
from asr.model.bundled import BUNDLED_MODELS, DEFAULT_MODEL, resolve_model
from asr.model.exported import load_inference_model
from asr.transcribe import Transcriber

MODEL_HELP = (
    "a checkpoint or export file, or a bundled model: "
    + ", ".join(BUNDLED_MODELS)
    + f" (default: {DEFAULT_MODEL}; asr/assets/MODEL.md)"
)


def model_args(p: argparse.ArgumentParser, compute_flag: str = "--device") -> None:
    p.add_argument(
        "--model",
        default=None,
        help=MODEL_HELP,
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
        default=60.0,
        help="padded audio seconds per inference batch (on 2 CPU cores, 60 "
        "ran faster than 120; a GPU may want more)",
    )
    p.add_argument(
        "--max-segment-seconds",
        type=float,
        default=30.0,
        help="longer files are cut at pauses into pieces this long",
    )


def speaker_eq_arg(p: argparse.ArgumentParser, measured: str) -> None:
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
    from asr.data import speaker_eq

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


def decoding_args(p: argparse.ArgumentParser) -> None:
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
        "--beam-size-token",
        type=int,
        help="extend hypotheses by only the N likeliest tokens of each frame "
        "(default: the model's own, else all)",
    )
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
    g.add_argument(
        "--word-pause",
        type=float,
        help="greedy decoding: this many seconds of blank frames between two "
        "letters start a new word (default 0.4; 0: never)",
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
            "beam_size_token",
            "nbest",
            "lm",
            "lexicon",
            "lm_weight",
            "word_score",
            "word_timestamps",
            "pad_ms",
            "word_pause",
        )
        if getattr(args, k, None) is not None
    }
    wants_beam = flags.get("lm") or flags.get("lexicon") or flags.get("nbest", 1) > 1
    if wants_beam and "decoder" not in flags:
        flags["decoder"] = "beam"  # these only make sense with beam search
    if flags.get("decoder") == "greedy" and not wants_beam:
        flags |= {"lm": None, "lexicon": None}  # a phone model's LM default: off
    return dataclasses.replace(opts, **flags)


def load_transcriber(
    args,
    options: DecodingOptions | None = None,
    audio_filter=None,
    prefer_export: bool = False,
) -> Transcriber:
    """The transcriber of ``--model`` (default: the bundled model; with
    ``prefer_export``, its int8 ONNX export when onnxruntime is installed: what
    transcribe and evaluate use, torch-free)."""
    path = resolve_model(args.model, prefer_export)
    model, tokenizer = load_inference_model(path, args.device)
    return Transcriber(
        model,
        tokenizer,
        options or decoding_options(args, model_decoding_defaults(model, tokenizer)),
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

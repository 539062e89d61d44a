"""`asr` sub-commands around the models: lm build, tune-decoder, stats,
speaker-eq, import-kaldi, info, average, demo."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from asr.cli.common import decoding_args, load_transcriber, model_args
from asr.data.manifest import read_manifest, write_manifest
from asr.model.bundled import default_model_path, resolve_model

if TYPE_CHECKING:  # asr.features.frontend loads torchaudio: not for every command
    from asr.features.frontend import FeatureConfig


def add_tool_commands(sub) -> None:
    p = sub.add_parser("lm", help="word n-gram language models")
    lm_sub = p.add_subparsers(dest="lm_command", required=True)
    b = lm_sub.add_parser("build", help="estimate a modified Kneser-Ney LM -> ARPA")
    b.add_argument(
        "sources",
        nargs="+",
        type=Path,
        help="text files (one sentence a line) or JSONL manifests",
    )
    b.add_argument("--order", type=int, default=3)
    b.add_argument(
        "--vocab",
        type=Path,
        action="append",
        default=[],
        help="more vocabulary words the text may lack: a word list, lexicon or "
        "pronunciation dictionary (first field per line); repeatable",
    )
    b.add_argument("--output", type=Path, required=True)
    b.set_defaults(func=cmd_lm_build)
    e = lm_sub.add_parser(
        "english",
        help="the general-English 3-gram LM (from pocketsphinx's en-us model) -> ARPA",
    )
    e.add_argument(
        "--output",
        type=Path,
        help="write it here (default: the cache that `--lm english` reads)",
    )
    e.add_argument("--max-words", type=int, default=50_000)
    e.add_argument("--max-bigrams", type=int, default=1_000_000)
    e.add_argument("--max-trigrams", type=int, default=1_000_000)
    e.set_defaults(func=cmd_lm_english)

    p = sub.add_parser("tune-decoder", help="search LM weight and word bonus on dev")
    p.add_argument("--manifest", type=Path, required=True)
    model_args(p)
    decoding_args(p)
    p.add_argument("--lm-weights", default="0,0.25,0.5,0.75,1,1.5,2,3")
    p.add_argument("--word-bonuses", default="-1,0,0.5,1,2,3")
    p.add_argument("--output", type=Path, default=Path("decoding.json"))
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("stats", help="feature mean/std of a training manifest")
    p.add_argument("manifest", type=Path)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument(
        "--level-db",
        type=float,
        default=None,
        help="normalise each utterance's speech level to this dBFS first "
        "(must match the training config's features.level_db)",
    )
    p.add_argument(
        "--overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="the training run's Hydra overrides, as they are: the features.* ones "
        "(e.g. features.n_mels=40) set the features measured, the others are ignored",
    )
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "speaker-eq",
        help="bring each speaker's long-term spectrum to a reference (no transcripts)",
    )
    eq_sub = p.add_subparsers(dest="eq_command", required=True)
    r = eq_sub.add_parser(
        "reference", help="the average spectrum of a manifest's speakers"
    )
    r.add_argument("manifest", type=Path)
    r.add_argument("--output", type=Path, required=True, help="reference JSON")
    r.set_defaults(func=cmd_eq_reference)
    a = eq_sub.add_parser(
        "apply", help="filter every clip by its speaker's gains -> audio + manifest"
    )
    a.add_argument("manifest", type=Path)
    a.add_argument(
        "--reference",
        type=Path,
        required=True,
        help="JSON of `asr speaker-eq reference` (a digits model keeps its own as "
        "speaker_eq.json)",
    )
    a.add_argument(
        "--out", type=Path, required=True, help="folder for wav/ and the manifests"
    )
    a.add_argument(
        "--stats-clips",
        type=int,
        default=0,
        help="measure each speaker on this many of its clips (drawn with a fixed "
        "seed; 0: all); the others go to OUT/unseen.jsonl",
    )
    a.add_argument("--max-db", type=float, default=15.0, help="largest gain or cut")
    a.add_argument(
        "--smooth-bands",
        type=int,
        default=5,
        help="the filter is a moving average over this many of the 32 bands (odd)",
    )
    a.set_defaults(func=cmd_eq_apply)

    p = sub.add_parser(
        "import-kaldi", help="a Kaldi data directory -> a JSONL manifest"
    )
    p.add_argument("data_dir", type=Path, help="folder with wav.scp, text, utt2spk")
    p.add_argument("--output", type=Path, required=True, help="the manifest to write")
    p.add_argument(
        "--audio-root",
        type=Path,
        help="relative wav.scp paths start here (default: DATA_DIR's parent)",
    )
    p.add_argument(
        "--audio-out",
        type=Path,
        help="folder for the WAVs of segments and of piped wav.scp entries",
    )
    p.add_argument(
        "--run-pipes",
        action="store_true",
        help="run wav.scp commands ('sph2pipe ... |'); off: such entries are skipped",
    )
    p.set_defaults(func=cmd_import_kaldi)

    p = sub.add_parser("info", help="describe a model checkpoint or export")
    model_args(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("average", help="average the weights of checkpoints")
    p.add_argument("checkpoints", nargs="+", type=Path, help="same model and alphabet")
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("demo", help="transcribe the bundled AN4 clips")
    model_args(p)
    decoding_args(p)
    p.set_defaults(func=cmd_demo)


def read_sentences(sources: list[Path]) -> list[str]:
    """Normalised sentences from text files and JSONL manifests."""
    from asr.data.text import normalize_text

    sentences = []
    for src in sources:
        if src.suffix == ".jsonl":
            sentences += [u.text for u in read_manifest(src)]
        else:
            sentences += src.read_text(encoding="utf-8", errors="replace").splitlines()
    return [s for s in map(normalize_text, sentences) if s]


def cmd_lm_build(args) -> int:
    from asr.decode.lm import estimate, read_vocab, write_arpa

    sentences = read_sentences(args.sources)
    vocab = [w for path in args.vocab for w in read_vocab(path)]
    model = estimate(sentences, args.order, vocab)
    write_arpa(model, args.output)
    sizes = ", ".join(f"{n + 1}-grams: {len(p)}" for n, p in enumerate(model.probs))
    seen = {w for s in sentences for w in s.split()}
    extra = f", {len(set(vocab) - seen)} words only from --vocab" if vocab else ""
    print(f"{len(sentences)} sentences -> {args.output} ({sizes}{extra})")
    return 0


def cmd_lm_english(args) -> int:
    from asr.decode.english_lm import (
        EnglishLMSize,
        build_english_lm,
        english_lm_path,
    )

    size = EnglishLMSize(args.max_words, args.max_bigrams, args.max_trigrams)
    path = build_english_lm(args.output, size) if args.output else english_lm_path(size)
    print(path)
    return 0


def cmd_tune(args) -> int:
    from asr.decode.tuning import compute_emissions, tune_decoder

    tr = load_transcriber(args)  # its options: flags over the model's defaults
    base = dataclasses.replace(tr.options, decoder="beam")
    utts = read_manifest(args.manifest)
    emissions = compute_emissions(tr.model, utts, args.batch_seconds, base.pad_ms)
    result = tune_decoder(
        emissions,
        [u.text for u in utts],
        tr.tokenizer,
        base,
        _floats(args.lm_weights),
        _floats(args.word_bonuses),
    )
    print("lm_weight\tword_bonus\tWER")
    for lm_weight, bonus, wer in result.table:
        print(f"{lm_weight}\t{bonus}\t{100 * wer:.2f}%")
    result.best.save(args.output)
    print(
        f"best: lm_weight={result.best.lm_weight} word_bonus={result.best.word_score}"
        f" WER {100 * result.best_wer:.2f}% -> {args.output}"
    )
    return 0


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def feature_config(base: FeatureConfig, overrides: list[str]) -> FeatureConfig:
    """``base`` (a FeatureConfig) with the ``features.KEY=VALUE`` items of
    ``overrides`` applied; items for other config groups are skipped, so a recipe
    can hand `asr stats` the overrides it gives training."""
    values = {}
    names = {f.name for f in dataclasses.fields(base)}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.removeprefix("++")  # Hydra's "set or add": training sets it too
        if not key.startswith("features."):
            continue
        name = key.removeprefix("features.")
        if not sep or name not in names:
            raise ValueError(
                f"{item!r}: expected features.KEY=VALUE with KEY one of {sorted(names)}"
            )
        if value.lower() in ("null", "none"):
            values[name] = None
            continue
        kind = int if isinstance(getattr(base, name), int) else float
        try:
            values[name] = kind(value)
        except ValueError:
            raise ValueError(f"{item!r}: {value!r} is not {kind.__name__}") from None
    return dataclasses.replace(base, **values)


def cmd_stats(args) -> int:
    from asr.audio.files import load_audio
    from asr.features.frontend import FeatureConfig, compute_cmvn_stats
    from asr.model.checkpoint import atomic_save

    cfg = feature_config(FeatureConfig(level_db=args.level_db), args.overrides)
    utts = read_manifest(args.manifest)
    mean, std = compute_cmvn_stats((load_audio(u.audio_filepath) for u in utts), cfg)
    stats = {"mean": mean, "std": std, "n_mels": cfg.n_mels, "n_utterances": len(utts)}
    stats["features"] = dataclasses.asdict(cfg)
    atomic_save({**stats, "level_db": cfg.level_db}, args.output)
    print(f"feature statistics of {len(utts)} utterances -> {args.output}")
    return 0


def cmd_eq_reference(args) -> int:
    from asr.data import speaker_eq

    levels, _ = speaker_eq.speaker_levels(read_manifest(args.manifest))
    speaker_eq.save_reference(
        args.output, speaker_eq.reference_levels(levels), len(levels)
    )
    print(f"average spectrum of {len(levels)} speakers -> {args.output}")
    return 0


def cmd_eq_apply(args) -> int:
    from asr.data import speaker_eq

    utts = read_manifest(args.manifest)
    out, unseen, gains = speaker_eq.equalise_manifest(
        utts,
        speaker_eq.load_reference(args.reference),
        args.out,
        args.stats_clips,
        args.max_db,
        args.smooth_bands,
    )
    write_manifest(args.out / "manifest.jsonl", out)
    doc = {spk: [round(float(g), 2) for g in v] for spk, v in sorted(gains.items())}
    (args.out / "gains.json").write_text(json.dumps(doc) + "\n")
    print(speaker_eq.describe_gains(gains, list(gains)[:8]))
    n = len(gains)
    print(f"{len(out)} utterances of {n} speakers -> {args.out}/manifest.jsonl")
    if args.stats_clips:
        write_manifest(args.out / "unseen.jsonl", unseen)
        print(f"{len(unseen)} not measured -> {args.out}/unseen.jsonl")
    return 0


def cmd_import_kaldi(args) -> int:
    from asr.data.kaldi import import_kaldi_dir

    done = import_kaldi_dir(
        args.data_dir, args.audio_root, args.audio_out, run_pipes=args.run_pipes
    )
    for line in done.skipped:
        print(f"warning: skipped {line}", file=sys.stderr)
    if not done.utts:
        print(
            f"error: {args.data_dir}: no utterance could be imported", file=sys.stderr
        )
        return 1
    write_manifest(args.output, done.utts)
    hours = sum(u.duration for u in done.utts) / 3600
    speakers = len({u.speaker for u in done.utts})
    print(
        f"{len(done.utts)} utterances, {hours:.2f} h, {speakers} speakers, "
        f"{len(done.skipped)} skipped -> {args.output}"
    )
    return 0


def cmd_info(args) -> int:
    from asr.model.checkpoint import load_model
    from asr.model.exported import is_export, load_inference_model

    path = resolve_model(args.model)
    if path.is_file() and is_export(path):  # .onnx / TorchScript: stored metadata
        model, tokenizer = load_inference_model(path)
        meta = model.meta
        details = {
            "model_config": meta["model_config"],
            "feature_config": meta["feature_config"],
            "export": {
                "format": "onnx" if path.suffix == ".onnx" else "torchscript",
                "quantize": meta.get("quantize"),
                "asr_export_version": meta.get("asr_export_version"),
                "decoding": meta.get("decoding"),
            },
        }
    else:
        model, tokenizer, meta = load_model(path)
        details = {
            "model_config": vars(model.cfg),
            "feature_config": vars(model.feature_cfg),
            "metadata": {k: v for k, v in meta.items() if k != "config"},
        }
    info = {
        "parameters": model.n_params(),
        "vocabulary": tokenizer.symbols,
        **details,
    }
    print(json.dumps(info, indent=2, default=str))
    return 0


def cmd_average(args) -> int:
    from asr.model.checkpoint import atomic_save, average_checkpoints

    atomic_save(average_checkpoints(args.checkpoints), args.output)
    print(f"{args.output}: mean weights of {len(args.checkpoints)} checkpoints")
    return 0


def cmd_demo(args) -> int:
    from asr.decode.metrics import score

    clips = default_model_path().parent / "clips"
    rows = [
        line.split("\t")
        for line in (clips / "references.tsv").read_text(encoding="utf-8").splitlines()
    ]
    tr = load_transcriber(args, prefer_export=True)
    print(
        f"model: {resolve_model(args.model, prefer_export=True)} "
        f"({tr.model.n_params() / 1e6:.1f} M parameters), decoder: {tr.options.decoder}"
    )
    refs, hyps = [], []
    for (name, ref), t in zip(rows, tr.transcribe_files(clips / n for n, _ in rows)):
        hyp = t.text if t.error is None else f"<error: {t.error}>"
        print(f"\n{name}\n  reference:  {ref}\n  recognised: {hyp}")
        refs.append(ref)
        hyps.append(hyp)
    report = score(refs, hyps)
    print(
        f"\nWER on these {len(rows)} clips: {100 * report.wer:.1f}% "
        f"(CER {100 * report.cer:.1f}%)"
    )
    return 0

"""Speaker adaptation benchmark: how much do K clips per word of a new speaker help?

For each speaker, K clips of each word (drawn at random, ``--draws`` times) are
the enrolment set; the model is adapted on them (asr.train.adapt) and scored on the
speaker's other clips, next to the unadapted model on the same clips. With
``--keep`` it also scores another manifest before and after (what adaptation
costs elsewhere). Every draw starts from the original weights.

    # each FSDD fold's model on its own held-out speaker (recipes/digits/folds.sh)
    python scripts/bench_adapt.py --model 'exp/digits_folds_ictc/{speaker}/last.pt' \\
        --manifest 'data/digits_folds/{speaker}/dev.jsonl' \\
        --lexicon 'data/digits_folds/{speaker}/lexicon.txt' --per-word 1 3 5
    # the bundled model on nicolas, and its AN4 dev WER after
    python scripts/bench_adapt.py --speakers nicolas --manifest data/digits/dev.jsonl \\
        --lexicon data/digits/lexicon.txt --keep data/an4/dev.jsonl
    # nicolas's first draw of 3 clips per digit, for asr adapt and eval_commands
    python scripts/bench_adapt.py --speakers nicolas --manifest data/digits/dev.jsonl \\
        --per-word 3 --write-split data/adapt
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.data.manifest import Utterance, read_manifest, write_manifest  # noqa: E402
from asr.decode.decoder import DecodingOptions  # noqa: E402
from asr.decode.metrics import score  # noqa: E402
from asr.decode.tuning import compute_emissions, decode_emissions  # noqa: E402
from asr.model.bundled import default_model_path  # noqa: E402
from asr.model.checkpoint import load_model  # noqa: E402
from asr.train.adapt import AdaptConfig, adapt  # noqa: E402


def enrolment(utts: list[Utterance], k: int, seed: int) -> tuple[list, list]:
    """(K clips of each transcript drawn with ``seed``, all the others)."""
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(utts):
        by_text[u.text].append(i)
    rng = random.Random(seed)
    picked = {i for ids in by_text.values() for i in rng.sample(ids, min(k, len(ids)))}
    return (
        [u for i, u in enumerate(utts) if i in picked],
        [u for i, u in enumerate(utts) if i not in picked],
    )


def errors(model, tokenizer, utts, options: DecodingOptions) -> tuple[int, int]:
    """(word errors, reference words) of ``model`` on ``utts``."""
    hyps = decode_emissions(
        options, tokenizer, compute_emissions(model, utts, pad_ms=options.pad_ms)
    )
    report = score([u.text for u in utts], hyps).utterances
    return sum(u.word_errors for u in report), sum(u.n_ref_words for u in report)


def pct(e_n: tuple[int, int]) -> str:
    return f"{100 * e_n[0] / max(1, e_n[1]):.2f}%"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model",
        default=str(default_model_path()),
        help="checkpoint; {speaker} is replaced by each speaker",
    )
    ap.add_argument("--manifest", required=True, help="{speaker} as for --model")
    ap.add_argument(
        "--speakers", nargs="+", default=["george", "jackson", "lucas", "nicolas"]
    )
    ap.add_argument("--lexicon", help="beam + lexicon decoding ({speaker} allowed)")
    ap.add_argument("--per-word", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--keep", help="manifest scored (greedy) before and after")
    ap.add_argument("--steps", type=int, default=AdaptConfig.steps)
    ap.add_argument("--lr", type=float, default=AdaptConfig.lr)
    ap.add_argument("--anchor", type=float, default=AdaptConfig.anchor)
    ap.add_argument(
        "--specaug", action=argparse.BooleanOptionalAction, default=AdaptConfig.specaug
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--write-split",
        type=Path,
        metavar="DIR",
        help="only write each speaker's first draw of the first --per-word as "
        "DIR/<speaker>_enrol<K>.jsonl and _test<K>.jsonl (for asr adapt)",
    )
    return ap.parse_args()


def write_split(args) -> None:
    k = args.per_word[0]
    for spk in args.speakers:
        utts = read_manifest(args.manifest.format(speaker=spk))
        enrol, test = enrolment([u for u in utts if u.speaker in (None, spk)], k, 0)
        for name, part in (("enrol", enrol), ("test", test)):
            path = args.write_split / f"{spk}_{name}{k}.jsonl"
            write_manifest(path, part)
            print(f"{path}: {len(part)} clips")


def run_speaker(args, spk: str, pooled: dict, keep_utts: list) -> None:
    """Every (clips per word, draw) of one speaker: a table row each, and the
    counts added to ``pooled[k]`` (unadapted, adapted, kept manifest after)."""
    path = args.model.format(speaker=spk)
    utts = read_manifest(args.manifest.format(speaker=spk))
    utts = [u for u in utts if u.speaker in (None, spk)] or utts
    pad_ms = load_model(path)[2].get("decoding", {}).get("pad_ms", 0.0)
    greedy = DecodingOptions(pad_ms=pad_ms)
    opts = greedy
    if args.lexicon:
        lexicon = args.lexicon.format(speaker=spk)
        opts = DecodingOptions(decoder="beam", lexicon=lexicon, pad_ms=pad_ms)
    for k in args.per_word:
        for draw in range(args.draws):
            enrol, test = enrolment(utts, k, draw)
            model, tok, _ = load_model(path)
            base = errors(model, tok, test, opts)
            cfg = AdaptConfig(
                steps=args.steps,
                lr=args.lr,
                anchor=args.anchor,
                specaug=args.specaug,
                seed=draw,
            )
            adapt(model, tok, enrol, cfg)
            counts = [base, errors(model, tok, test, opts)]
            if keep_utts:
                counts.append(errors(model, tok, keep_utts, greedy))
            print(
                f"| {spk} | {k} | {draw} | {len(test)} | "
                + " | ".join(pct(c) for c in counts)
                + " |",
                flush=True,
            )
            pooled[k] = [
                (a[0] + c[0], a[1] + c[1])
                for a, c in zip(pooled.get(k, [(0, 0)] * len(counts)), counts)
            ]


def main() -> int:
    args = parse_args()
    if args.write_split:
        write_split(args)
        return 0
    torch.set_num_threads(args.threads)
    keep_utts = read_manifest(args.keep) if args.keep else []
    if keep_utts:
        model, tok, meta = load_model(args.model.format(speaker=args.speakers[0]))
        pad_ms = meta.get("decoding", {}).get("pad_ms", 0.0)
        kept = errors(model, tok, keep_utts, DecodingOptions(pad_ms=pad_ms))
        print(f"{args.keep} (kept manifest), unadapted: {pct(kept)}\n")
    extra = " kept manifest, after |" if keep_utts else ""
    print(
        f"| speaker | clips per word | draw | test clips | unadapted | adapted |{extra}"
    )
    print("|---|---|---|---|---|---|" + ("---|" if keep_utts else ""))
    pooled: dict[int, list[tuple[int, int]]] = {}
    for spk in args.speakers:
        run_speaker(args, spk, pooled, keep_utts)
    print(f"\n| clips per word | unadapted, pooled | adapted, pooled |{extra}")
    print("|---|---|---|" + ("---|" if keep_utts else ""))
    for k, counts in sorted(pooled.items()):
        print(f"| {k} | " + " | ".join(pct(c) for c in counts) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

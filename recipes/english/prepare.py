"""One general-English training set from every real corpus here, with whole
speakers of each corpus held out as its own dev set.

Inputs are manifests made by the other recipes' stages (recipes/english/run.sh):
the commands recipe's folder (AN4 + FSDD + synthetic command words, non-speech
clips, and their dev sets), LibriSpeech dev-clean, and speechocean762's train
split (`asr import-kaldi`). Writes to --out:

  train.jsonl      commands' train_nonspeech + LibriSpeech and speechocean762
                   training speakers
  dev.jsonl        an4_dev + ls_dev + so_dev: picks the best epoch
  ls_dev.jsonl     LibriSpeech speakers held out (--ls-dev-speakers)
  so_dev.jsonl     speechocean762 speakers held out (--so-dev-speakers)
  an4_dev, an4_commands, fsdd_dev, synth_dev .jsonl: the commands recipe's
  ls_train.jsonl, so_train.jsonl: the training parts, for data-size curves
  train_25.jsonl, ... (with --fractions 0.25 ...) train with that fraction of
                   the LibriSpeech and of the speechocean762 training speakers,
                   whole (the rest as in train); drawn in one seeded order, so a
                   smaller fraction's speakers are among a larger one's
  train_synth.jsonl  (with --synth-sentences) train + synthetic speech of
                   general-English sentences (recipes/english/sentences.py)

    python recipes/english/prepare.py --commands data/commands \
        --librispeech data/librispeech/dev-clean.jsonl \
        --speechocean data/speechocean762/train.jsonl --out data/english
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from asr.data.manifest import (
    Utterance,
    absolute_paths,
    read_manifest,
    split_speakers,
    write_manifest,
)

# the commands recipe's sets carried over as they are
COMMAND_SETS = ("an4_dev", "an4_commands", "fsdd_dev", "synth_dev")


def held_out(path: Path, n_dev: int, seed: int, tag: str) -> tuple[list, list]:
    """(train, dev) of one corpus; speakers are prefixed with ``tag`` so that
    ids of different corpora never collide."""
    utts = absolute_paths(read_manifest(path))
    for u in utts:
        u.speaker = f"{tag}:{u.speaker}"
    return split_speakers(utts, n_dev, seed)


def speaker_fraction(utts: list[Utterance], fraction: float, seed: int) -> list:
    """The utterances of the first ``fraction`` of the speakers (at least one) in
    an order drawn with ``seed``."""
    speakers = sorted({u.speaker for u in utts})
    random.Random(seed).shuffle(speakers)
    keep = set(speakers[: max(1, round(fraction * len(speakers)))])
    return [u for u in utts if u.speaker in keep]


def describe(name: str, utts: list[Utterance]) -> str:
    hours = sum(u.duration for u in utts) / 3600
    speakers = len({u.speaker for u in utts})
    return f"{name}: {len(utts)} utterances, {hours:.2f} h, {speakers} speakers"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=Path, required=True, help="data/commands")
    ap.add_argument("--librispeech", type=Path, required=True, help="a manifest")
    ap.add_argument("--speechocean", type=Path, required=True, help="a manifest")
    ap.add_argument("--ls-dev-speakers", type=int, default=4)
    ap.add_argument("--so-dev-speakers", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--synth-sentences", type=Path, help="a synthesize.py manifest of sentences"
    )
    ap.add_argument(
        "--fractions",
        type=float,
        nargs="*",
        default=[],
        help="also write train_<percent>.jsonl with these fractions of the "
        "LibriSpeech and speechocean762 training speakers (data-size curves)",
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if not all(0 < f < 1 for f in args.fractions):
        ap.error(f"--fractions must lie between 0 and 1, not {args.fractions}")

    ls_train, ls_dev = held_out(args.librispeech, args.ls_dev_speakers, args.seed, "ls")
    so_train, so_dev = held_out(args.speechocean, args.so_dev_speakers, args.seed, "so")
    sets = {
        name: absolute_paths(read_manifest(args.commands / f"{name}.jsonl"))
        for name in COMMAND_SETS
    }
    commands_train = absolute_paths(
        read_manifest(args.commands / "train_nonspeech.jsonl")
    )
    sets |= {
        "train": commands_train + ls_train + so_train,
        "dev": sets["an4_dev"] + ls_dev + so_dev,
        "ls_dev": ls_dev,
        "so_dev": so_dev,
        "ls_train": ls_train,
        "so_train": so_train,
    }
    for f in args.fractions:
        part = [speaker_fraction(t, f, args.seed) for t in (ls_train, so_train)]
        sets[f"train_{round(100 * f)}"] = commands_train + part[0] + part[1]
    if args.synth_sentences:
        synth = absolute_paths(read_manifest(args.synth_sentences))
        sets["train_synth"] = sets["train"] + synth
    for name, utts in sets.items():
        write_manifest(args.out / f"{name}.jsonl", utts)
        print(describe(name, utts))
    for name in ("ls_dev", "so_dev"):
        speakers = sorted({u.speaker for u in sets[name]})
        print(f"{name} speakers: {' '.join(speakers)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training and evaluation manifests for the bundled command-ready model.

Joins prepared manifests (absolute audio paths, so the result works from any
folder) and cuts the evaluation sets:

  train.jsonl          AN4 train + FSDD train speakers + synthetic command words
  train_nonspeech.jsonl  the same + noise/tone/hum clips with empty transcripts
  an4_dev.jsonl        AN4 dev (8 held-out speakers), for checkpoint selection
  an4_commands.jsonl   the AN4 dev utterances that are one command word or digit
  fsdd_dev.jsonl       FSDD's held-out speaker (digits, 8 kHz, real speech)
  synth_dev.jsonl      synthetic command words from voices held out of training
  an4_dev_words.jsonl  (--dev-words) every command word and digit inside AN4 dev's
                       phrases, cut out at its force-aligned times (8 real
                       speakers never heard in training, words from connected
                       speech); the audio in an4_dev_words/

    python recipes/commands/prepare.py --an4 data/an4 --digits data/digits \
        --synth data/synth/cmd_train --synth-dev data/synth/cmd_dev --out data/commands
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.data.manifest import absolute_paths, read_manifest, write_manifest
from asr.stream.grammar import DIGIT_WORDS, Grammar

GRAMMAR = Path(__file__).resolve().parents[2] / "examples" / "commands.yaml"


def command_words(grammar: Path = GRAMMAR) -> list[str]:
    """The one-word phrases of the demo grammar, plus the digit words and 'oh'."""
    words = [c.phrase for c in Grammar.load(grammar).commands if " " not in c.phrase]
    return [w for w in words if not w.startswith("<")] + [*DIGIT_WORDS, "oh"]


def is_command(text: str, words: set[str]) -> bool:
    return len(text.split()) == 1 and text.strip() in words


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--an4", type=Path, required=True, help="recipes/an4 manifests")
    ap.add_argument("--digits", type=Path, required=True, help="recipes/digits ones")
    ap.add_argument("--synth", type=Path, required=True, help="synthesize.py output")
    ap.add_argument("--synth-dev", type=Path, help="held-out-voice synthetic set")
    ap.add_argument(
        "--nonspeech", type=Path, help="synthesize.py --nonspeech output (for stage 5)"
    )
    ap.add_argument(
        "--dev-words",
        action="store_true",
        help="also cut the grammar's words out of AN4 dev's phrases (bundled model)",
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    an4_train = absolute_paths(read_manifest(args.an4 / "train.jsonl"))
    an4_dev = absolute_paths(read_manifest(args.an4 / "dev.jsonl"))
    fsdd_train = absolute_paths(read_manifest(args.digits / "train.jsonl"))
    fsdd_dev = absolute_paths(read_manifest(args.digits / "dev.jsonl"))
    synth = absolute_paths(read_manifest(args.synth / "manifest.jsonl"))
    overlap = {u.speaker for u in fsdd_train} & {u.speaker for u in fsdd_dev}
    if overlap:
        raise SystemExit(f"error: FSDD speakers in both train and dev: {overlap}")

    words = set(command_words())
    sets = {
        "train": an4_train + fsdd_train + synth,
        "an4_dev": an4_dev,
        "an4_commands": [u for u in an4_dev if is_command(u.text, words)],
        "fsdd_dev": fsdd_dev,
    }
    if args.synth_dev:
        dev = absolute_paths(read_manifest(args.synth_dev / "manifest.jsonl"))
        leaked = {u.speaker for u in dev} & {u.speaker for u in synth}
        if leaked:
            raise SystemExit(f"error: voices in both synthetic sets: {sorted(leaked)}")
        sets["synth_dev"] = dev
    if args.nonspeech:
        noise = absolute_paths(read_manifest(args.nonspeech / "manifest.jsonl"))
        sets["train_nonspeech"] = sets["train"] + noise
    if args.dev_words:
        # one-word utterances are an4_commands already: the words inside phrases
        from asr.decode.alignment import cut_manifest_words

        folder = args.out / "an4_dev_words"
        sets["an4_dev_words"] = cut_manifest_words(an4_dev, words, folder, min_words=2)
    for name, utts in sets.items():
        write_manifest(args.out / f"{name}.jsonl", utts)
        minutes = sum(u.duration for u in utts) / 60
        print(f"{name}: {len(utts)} utterances, {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Commands with a user's own words, on real speech of held-out speakers: cut
every grammar phrase out of a manifest's sentences at its force-aligned times,
and as many other word spans the same way, for `scripts/eval_commands.py`.

Writes to --out:

  phrases.jsonl   each occurrence of a grammar phrase (slots expanded), cut with
                  ``--margin`` seconds each side: must fire that phrase
  others.jsonl    per sentence one span of 1-2 words that shares no word with
                  any phrase (seeded draw), cut the same way: must fire nothing
  the clips, 16 kHz WAV, in clips/

    python recipes/english/own_words.py data/english/so_dev.jsonl \
        --grammar examples/own_words.yaml --model exp/english/best.pt \
        --out data/english/own_words
    python scripts/eval_commands.py data/english/own_words/phrases.jsonl \
        data/english/own_words/others.jsonl data/english/so_dev.jsonl \
        --grammar examples/own_words.yaml --model exp/english/best.pt --pad-ms 200

The alignment model should know the speakers' kind of speech (the general-English
model does; the AN4 model does not).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import soundfile as sf

from asr.audio.files import SAMPLE_RATE, load_audio
from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.decode.alignment import cut_words, has_phrase
from asr.model.checkpoint import load_model
from asr.stream.grammar import Grammar


def other_span(words: list[str], avoid: set[str], rng: random.Random) -> str | None:
    """A span of 1-2 consecutive words none of which is in ``avoid``, or None."""
    spans = [
        " ".join(words[i : i + n])
        for n in (1, 2)
        for i in range(len(words) - n + 1)
        if not avoid & set(words[i : i + n])
    ]
    return rng.choice(spans) if spans else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path, help="sentences of held-out speakers")
    ap.add_argument("--grammar", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True, help="aligns the words")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--margin", type=float, default=0.03, help="seconds each side")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    grammar = Grammar.load(args.grammar)
    phrases = {text for c in grammar.commands for text, _ in c.expansions}
    avoid = {w for p in phrases for w in p.split()}
    model, tokenizer, _ = load_model(args.model)
    model.eval()
    rng = random.Random(args.seed)
    clips = args.out / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    sets: dict[str, list[Utterance]] = {"phrases": [], "others": []}
    for u in read_manifest(args.manifest):
        words = u.text.split()
        other = other_span(words, avoid, rng)
        keep = phrases | ({other} if other else set())
        if not has_phrase(u.text, keep):
            continue
        wav = load_audio(u.audio_filepath)
        for k, (text, samples) in enumerate(
            cut_words(model, tokenizer, wav, u.text, keep, args.margin)
        ):
            which = "phrases" if text in phrases else "others"
            path = (
                clips
                / f"{Path(u.audio_filepath).stem}_{k}_{text.replace(' ', '_')}.wav"
            )
            sf.write(str(path), samples, SAMPLE_RATE, subtype="PCM_16")
            sets[which].append(
                Utterance(
                    str(path.resolve()), len(samples) / SAMPLE_RATE, text, u.speaker
                )
            )
    for name, utts in sets.items():
        write_manifest(args.out / f"{name}.jsonl", utts)
        print(f"{args.out / name}.jsonl: {len(utts)} clips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

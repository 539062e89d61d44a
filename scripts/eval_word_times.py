"""Word-boundary accuracy of `--word-timestamps` against independent references.

    python scripts/eval_word_times.py --manifest data/an4/dev.jsonl
    python scripts/eval_word_times.py --fsdd ../shared/data/fsdd/recordings \
        --speakers lucas,nicolas [--no-snap]

References: with --manifest, the speech islands of each utterance
(asr.metrics.speech_islands) where they are as many as its words; with --fsdd,
sequences of three trimmed Free Spoken Digit clips joined with quiet-room noise,
whose word boundaries are known by construction. --no-snap measures the CTC
alignment alone (without refining boundaries on the waveform).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from asr.data.manifest import read_manifest
from asr.decode.alignment import (
    concatenated_references,
    island_references,
    word_boundary_errors,
)
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.stream.grammar import DIGIT_WORDS as DIGITS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--fsdd", type=Path, help="folder of {digit}_{speaker}_{n}.wav")
    ap.add_argument("--speakers", default="lucas,nicolas")
    ap.add_argument("--items", type=int, default=80)
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--no-snap", action="store_true")
    args = ap.parse_args()
    model, tok, _ = load_model(args.model)
    if args.fsdd:
        speakers = set(args.speakers.split(","))
        clips = [
            (p, DIGITS[int(p.name[0])])
            for p in sorted(args.fsdd.glob("*.wav"))
            if p.stem.split("_")[1] in speakers
        ]
        items = concatenated_references(clips, args.items)
    else:
        utts = read_manifest(args.manifest)
        items = island_references((u.audio_filepath, u.text) for u in utts)
    s, e = word_boundary_errors(model, tok, items, snap=not args.no_snap)
    both = np.abs(np.concatenate([s, e]))
    print(f"words with a reference: {len(s)}")
    for name, x in (("start", s), ("end", e)):
        print(
            f"{name}: median {np.median(x):+.3f} s, "
            f"within 100 ms: {np.mean(np.abs(x) <= 0.1):.1%}"
        )
    print(
        f"all boundaries: within 100 ms {np.mean(both <= 0.1):.1%}, "
        f"within 200 ms {np.mean(both <= 0.2):.1%}, "
        f"median |error| {np.median(both):.3f} s"
    )


if __name__ == "__main__":
    main()

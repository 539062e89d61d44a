"""Measure word-boundary errors of CTC alignment against silence-based boundaries.

    python scripts/calibrate_word_times.py --manifest data/an4/train.jsonl \
        --model exp/an4/best.pt [--start-pad 0.0 --end-pad 0.0]

Utterances whose speech islands (asr.metrics.speech_islands) number as many as
their words give one reference span per word. Prints the error distribution and
the pads (median errors) that would centre it. Calibrate on training data and
check on held-out speakers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from asr.alignment import END_PAD, START_PAD, word_boundary_errors
from asr.checkpoint import default_model_path, load_model
from asr.data import read_manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--start-pad", type=float, default=START_PAD)
    ap.add_argument("--end-pad", type=float, default=END_PAD)
    args = ap.parse_args()
    model, tok, _ = load_model(args.model)
    utts = read_manifest(args.manifest)
    s, e = word_boundary_errors(
        model,
        tok,
        [(u.audio_filepath, u.text) for u in utts],
        args.start_pad,
        args.end_pad,
    )
    both = np.abs(np.concatenate([s, e]))
    print(f"words with a reference: {len(s)}")
    for name, x in (("start", s), ("end", e)):
        print(
            f"{name}: median {np.median(x):+.3f} s, mean {x.mean():+.3f} s, "
            f"within 100 ms: {np.mean(np.abs(x) <= 0.1):.1%}"
        )
    print(
        f"all boundaries within 100 ms: {np.mean(both <= 0.1):.1%}, "
        f"median |error| {np.median(both):.3f} s"
    )
    print(
        f"pads that centre the medians: start_pad={args.start_pad + np.median(s):.2f}"
        f" end_pad={args.end_pad - np.median(e):.2f}"
    )


if __name__ == "__main__":
    main()

"""A manifest whose transcripts are a model's hypotheses (pseudo-labels), for
unsupervised adaptation: `asr adapt` on a speaker's clips that nobody transcribed.

    asr evaluate clips.jsonl --model M --decoder beam --lexicon L --report clips.tsv
    python scripts/pseudo_labels.py clips.jsonl clips.tsv --output pseudo.jsonl
    asr adapt pseudo.jsonl --model M --output adapted.pt

The report's rows follow the manifest's lines (`asr evaluate` writes them in that
order, skipping unreadable clips, which are left out here too); clips with an
empty hypothesis are left out (nothing to learn from). The manifest's own
transcripts are only used to say how many pseudo-labels are wrong, when it has
them.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.data.manifest import Utterance, read_manifest, write_manifest  # noqa: E402


def pseudo_labelled(
    utts: list[Utterance], rows: list[dict]
) -> tuple[list[Utterance], int]:
    """``utts`` with each report row's hypothesis as its text (rows matched to
    the clips by id, in order). Returns them and how many differ from the
    manifest's transcripts."""
    out, wrong, k = [], 0, 0
    for row in rows:
        while k < len(utts) and utts[k].id != row["id"]:
            k += 1  # a clip the report skipped (unreadable)
        if k == len(utts):
            raise ValueError(f"report row {row['id']!r} is not in the manifest's order")
        u, k = utts[k], k + 1
        hyp = row["hypothesis"].strip()
        if hyp:
            out.append(Utterance(u.audio_filepath, u.duration, hyp, u.speaker))
            wrong += bool(u.text) and hyp != u.text
    return out, wrong


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path, help="the clips `asr evaluate` read")
    ap.add_argument("report", type=Path, help="its per-utterance TSV report")
    ap.add_argument("--output", type=Path, required=True)
    args = ap.parse_args(argv)
    with open(args.report, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    utts = read_manifest(args.manifest)
    out, wrong = pseudo_labelled(utts, rows)
    write_manifest(args.output, out)
    print(
        f"{args.output}: {len(out)} of {len(utts)} clips pseudo-labelled; "
        f"{wrong} differ from the manifest's transcripts"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

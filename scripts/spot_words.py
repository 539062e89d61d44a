"""Word spotting on a manifest: does the free transcription of each utterance
contain the command words (and digits) its reference has?

For recordings where the words occur inside phrases ("agent logged off"), where
`asr commands` (which matches whole utterances against a grammar) has nothing to
fire, this still says whether the model hears the word. The target words are the
grammar's (its phrases, slots expanded: the demo's command words, the digits and
"oh"). A hit is a target word of the reference that the greedy transcript of the
utterance also has; a false alarm is a target word in the transcript that the
reference lacks.

    python scripts/spot_words.py data/realclips/manifest.jsonl [--model M] [--show]
        [--grammar examples/commands.yaml]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr.audio.files import load_audio  # noqa: E402
from asr.data.manifest import read_manifest  # noqa: E402
from asr.model.bundled import default_model_path  # noqa: E402
from asr.model.checkpoint import load_model  # noqa: E402
from asr.stream.grammar import Grammar  # noqa: E402
from asr.transcribe import Transcriber  # noqa: E402


def spot(refs: list[str], hyps: list[str], targets: list[str]) -> dict[str, Counter]:
    """Per target word: occurrences in references, hits, false alarms."""
    table: dict[str, Counter] = {w: Counter() for w in targets}
    for ref, hyp in zip(refs, hyps):
        ref_words, hyp_words = Counter(ref.split()), Counter(hyp.split())
        for word in targets:
            table[word]["occurrences"] += ref_words[word]
            table[word]["hits"] += min(ref_words[word], hyp_words[word])
            table[word]["false_alarms"] += max(0, hyp_words[word] - ref_words[word])
    return table


def format_table(table: dict[str, Counter]) -> str:
    lines = ["| word | in references | heard | false alarms |", "|---|---|---|---|"]
    total = Counter()
    for word, c in table.items():
        if c["occurrences"] or c["false_alarms"]:
            lines.append(
                f"| {word} | {c['occurrences']} | {c['hits']} | {c['false_alarms']} |"
            )
            total.update(c)
    lines.append(
        f"| **all** | {total['occurrences']} | {total['hits']} | "
        f"{total['false_alarms']} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument(
        "--grammar",
        type=Path,
        default=Path(__file__).parents[1] / "examples/commands.yaml",
        help="the target words are this grammar's",
    )
    ap.add_argument("--show", action="store_true", help="print each transcript")
    args = ap.parse_args(argv)
    model, tokenizer, _ = load_model(args.model or default_model_path())
    utts = read_manifest(args.manifest)
    hyps = Transcriber(model, tokenizer).transcribe_waveforms(
        [load_audio(u.audio_filepath) for u in utts]
    )
    texts = [h.text for h in hyps]
    if args.show:
        for u, text in zip(utts, texts):
            print(f"{u.speaker}\t{u.text}\t->\t{text}")
    targets = Grammar.load(args.grammar).words()
    print(format_table(spot([u.text for u in utts], texts, targets)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

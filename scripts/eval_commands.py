"""Voice-command accuracy of a model on manifests: what `asr commands` would fire.

For every utterance the whole-utterance log-probs go through the grammar matcher
(asr.commands.CommandMatcher, as in `asr commands`). An utterance whose reference
is one of the grammar's phrases counts as correct when exactly that phrase fires,
wrong when another fires, missed when nothing does; any other utterance counts as
a false accept when something fires.

    python scripts/eval_commands.py data/commands/synth_dev.jsonl \
        --model exp/commands/best.pt --grammar examples/commands.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr.audio import load_audio  # noqa: E402
from asr.checkpoint import default_model_path, load_model  # noqa: E402
from asr.commands import CommandMatcher, Grammar  # noqa: E402
from asr.data import read_manifest  # noqa: E402
from asr.transcribe import padded_batches  # noqa: E402

OUTCOMES = ("correct", "wrong", "missed", "false_accept", "rejected")


def evaluate(model, tokenizer, grammar: Grammar, utts) -> dict[str, dict[str, int]]:
    """Per reference text (other speech pooled as '<other>'): outcome -> count."""
    matcher = CommandMatcher(grammar, tokenizer)
    phrases = {text for _, text, _ in matcher.candidates}
    wavs = [load_audio(u.audio_filepath) for u in utts]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    model.eval()
    for batch, padded, lens in padded_batches(wavs, 120.0):
        with torch.inference_mode():
            log_probs, out_lens = model(padded, lens)
        for i, lp, n in zip(batch, log_probs, out_lens.tolist()):
            ref = utts[i].text
            fired = matcher.match(lp[:n])
            if ref in phrases:
                outcome = (
                    "missed"
                    if fired is None
                    else "correct"
                    if fired.text == ref
                    else "wrong"
                )
                counts[ref][outcome] += 1
            else:
                counts["<other>"]["rejected" if fired is None else "false_accept"] += 1
    return dict(counts)


def format_table(counts: dict[str, dict[str, int]]) -> str:
    rows = ["| reference | n | correct | wrong | missed | false accept |"]
    rows.append("|---|---|---|---|---|---|")
    total = dict.fromkeys(OUTCOMES, 0)
    for ref in sorted(counts, key=lambda r: (r == "<other>", r)):
        c = counts[ref]
        n = sum(c.values())
        for k in OUTCOMES:
            total[k] += c[k]
        rows.append(
            f"| {ref} | {n} | {c['correct']} | {c['wrong']} | {c['missed']} "
            f"| {c['false_accept']} |"
        )
    n_cmd = total["correct"] + total["wrong"] + total["missed"]
    n_other = total["false_accept"] + total["rejected"]
    acc = total["correct"] / n_cmd if n_cmd else float("nan")
    fa = total["false_accept"] / n_other if n_other else float("nan")
    rows.append(
        f"\ncommand utterances: {n_cmd}, fired right: {total['correct']} "
        f"({100 * acc:.1f}%); other utterances: {n_other}, "
        f"false accepts: {total['false_accept']} ({100 * fa:.1f}%)"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument(
        "--grammar",
        type=Path,
        default=Path(__file__).parents[1] / "examples/commands.yaml",
    )
    args = ap.parse_args(argv)
    model, tokenizer, _ = load_model(args.model or default_model_path())
    grammar = Grammar.load(args.grammar)
    for manifest in args.manifests:
        utts = read_manifest(manifest)
        print(f"\n### {manifest} ({len(utts)} utterances)\n")
        print(format_table(evaluate(model, tokenizer, grammar, utts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

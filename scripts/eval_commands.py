"""Voice-command accuracy of a model on manifests: what `asr commands` would fire.

For every utterance the whole-utterance log-probs go through the grammar matcher
(asr.commands.CommandMatcher, as in `asr commands`). An utterance whose reference
is one of the grammar's phrases counts as correct when exactly that phrase fires,
wrong when another fires, missed when nothing does; any other utterance counts as
a false accept when something fires.

With ``--stream`` the manifest's clips are instead played one after another, with
1 s of quiet-room noise between them, through what `asr commands` runs on a
microphone (its settings: webrtcvad endpointer, the final re-decode of each
utterance, the matcher; a sure match fires at a short pause, before the endpointer
decides). A command fired during a clip (start to end + 0.5 s) counts for that
clip; a clip with two fired counts as wrong unless all are right.

    python scripts/eval_commands.py data/commands/synth_dev.jsonl \
        --model exp/commands/best.pt --grammar examples/commands.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr.audio.files import load_audio  # noqa: E402
from asr.audio.padding import load_padded
from asr.data.dataset import padded_batches  # noqa: E402
from asr.data.manifest import read_manifest  # noqa: E402
from asr.model.bundled import default_model_path  # noqa: E402
from asr.model.checkpoint import load_model  # noqa: E402
from asr.stream.grammar import CommandMatcher, Grammar  # noqa: E402

OUTCOMES = ("correct", "wrong", "missed", "false_accept", "rejected")


def evaluate(
    model, tokenizer, grammar: Grammar, utts, pad_ms: float = 0.0
) -> dict[str, dict[str, int]]:
    """Per reference text (other speech pooled as '<other>'): outcome -> count.
    ``pad_ms``: clips with shorter pauses around their speech are topped up first
    (as transcription does; the endpointer's pre- and post-roll give a live
    microphone's utterances such pauses)."""
    matcher = CommandMatcher(grammar, tokenizer)
    phrases = {text for _, text, _ in matcher.candidates}
    wavs = [load_padded(u.audio_filepath, pad_ms) for u in utts]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    model.eval()
    for batch, padded, lens in padded_batches(wavs, 120.0):
        with torch.inference_mode():
            log_probs, out_lens = model(padded, lens)
        for i, lp, n in zip(batch, log_probs, out_lens.tolist()):
            fired = matcher.match(lp[:n])
            tally(counts, phrases, utts[i].text, [] if fired is None else [fired.text])
    return dict(counts)


def tally(counts, phrases: set[str], ref: str, fired: list[str]) -> None:
    """Count one utterance's outcome: ``fired``, the texts of the commands that
    fired for it, against its reference (correct only if all of them are it)."""
    if ref in phrases:
        outcome = (
            "missed" if not fired else "correct" if set(fired) == {ref} else "wrong"
        )
        counts[ref][outcome] += 1
    else:
        counts["<other>"]["rejected" if not fired else "false_accept"] += 1


PAUSE_SECONDS = 1.0  # between clips in --stream mode
LATE_SECONDS = 0.5  # a command fired this long after a clip ends is still its


def evaluate_stream(
    model, tokenizer, grammar: Grammar, utts
) -> dict[str, dict[str, int]]:
    """As ``evaluate``, through the streaming recognizer (``--stream``)."""
    from asr.cli.stream import (
        COMMANDS_EARLY_MS,
        COMMANDS_ENDPOINT_MS,
        COMMANDS_VAD_FRAME_MS,
    )
    from asr.stream.grammar import CommandSpotter
    from asr.stream.recognizer import StreamingConfig, StreamingRecognizer

    matcher = CommandMatcher(grammar, tokenizer)
    spotter = CommandSpotter(matcher)
    phrases = {text for _, text, _ in matcher.candidates}
    cfg = StreamingConfig(
        padding_ms=COMMANDS_ENDPOINT_MS,
        pause_ms=COMMANDS_EARLY_MS,
        vad_frame_ms=COMMANDS_VAD_FRAME_MS,
    )
    rec = StreamingRecognizer(model, tokenizer, cfg)
    rng = np.random.default_rng(0)
    spans, fired, t = [], [], 0.0
    for u in [*utts, None]:  # a last pause lets the final utterance end
        noise = 3e-4 * rng.standard_normal(int(PAUSE_SECONDS * 16000))
        pause = noise.astype(np.float32)
        clip = pause[:0] if u is None else load_audio(u.audio_filepath)
        t += PAUSE_SECONDS
        if u is not None:
            spans.append((t, t + len(clip) / 16000))
        t += len(clip) / 16000
        for event in rec.feed(np.concatenate([pause, clip])):
            m = spotter.spot(event)
            if m is not None:
                fired.append((event.start, event.end, m.text))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for u, (start, end) in zip(utts, spans):
        texts = [x for s, e, x in fired if s < end + LATE_SECONDS and e > start]
        tally(counts, phrases, u.text, texts)
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
    ap.add_argument(
        "--pad-ms",
        type=float,
        default=0.0,
        help="top up each clip's pauses to this many ms first (default 0: as is)",
    )
    ap.add_argument(
        "--stream",
        action="store_true",
        help="play the clips through the streaming path of `asr commands`",
    )
    args = ap.parse_args(argv)
    model, tokenizer, _ = load_model(args.model or default_model_path())
    grammar = Grammar.load(args.grammar)
    for manifest in args.manifests:
        utts = read_manifest(manifest)
        print(f"\n### {manifest} ({len(utts)} utterances)\n")
        if args.stream:
            counts = evaluate_stream(model, tokenizer, grammar, utts)
        else:
            counts = evaluate(model, tokenizer, grammar, utts, args.pad_ms)
        print(format_table(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

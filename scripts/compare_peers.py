"""Peer comparison: PocketSphinx en-us (out of the box) and this project's model on
the same held-out files, WER, CER and speed side by side (issue 23, item 5).

    python scripts/compare_peers.py data/english/ls_dev.jsonl \
        data/english/so_dev.jsonl --limit 100 --report peers.json

Each manifest's audio is read once (``asr.audio.load_audio``: 16 kHz float32 mono)
and both systems decode the same waveforms; a file that cannot be read is
reported on stderr and left out for both. ``--limit N`` scores N utterances of
each manifest, drawn with a fixed seed (``asr.data.sample_indices``) from the
whole manifest rather than its first speakers.

- PocketSphinx: ``pocketsphinx.Decoder(samprate=16000)`` with its bundled en-us
  acoustic model, 3-gram LM and dictionary, no option changed; one decoder for
  all files, each file one utterance of 16-bit PCM (``process_raw(full_utt=True)``),
  in manifest order. The decoder carries state from one utterance to the next
  (a clip's words can change with the clips before it), so results are
  reproducible for the same files in the same order.
- This project: the model and decoding options that ``asr evaluate`` would build
  from the same flags (``--model``, ``--decoder``, ``--lm``, ``--decoding-config``,
  ...); files up to ``--max-segment-seconds`` are batched by length, longer ones
  are cut at pauses, as ``asr transcribe`` does.

Scoring is ``asr.metrics.score`` (jiwer; ``normalize_text`` on both sides). From
PocketSphinx's words, fillers and sentence marks (``<s>``, ``<sil>``, ``[NOISE]``,
``++UH++``) are dropped and alternative-pronunciation marks (``word(2)``) cut off
before scoring: they are not words of the transcript (pocketsphinx 5's
``hyp().hypstr`` already leaves them out; this guards other versions and
settings). Nothing else is mapped
(no number or spelling normalisation), for either system.

Speed is audio seconds per decoding second ("x real time"); audio loading, shared
by both, is not timed. Start-up (PocketSphinx's decoder, this project's model
load) is timed apart. Both systems run on ``--threads`` CPU threads (1 by
default: PocketSphinx decodes on one).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from asr.audio.files import SAMPLE_RATE, AudioError, load_audio
from asr.cli.common import decoding_args, load_transcriber, model_args
from asr.data.manifest import ManifestError, Utterance, read_manifest, sample_indices
from asr.decode.metrics import score
from asr.model.bundled import default_model_path
from asr.transcribe import Transcriber

POCKETSPHINX = "pocketsphinx en-us"
# <s>, </s>, <sil>, [NOISE], ++UH++: fillers and sentence marks, not words
_SPHINX_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")
_SPHINX_ALTERNATIVE = re.compile(r"\(\d+\)$")  # word(2): the 2nd pronunciation


@dataclass
class HeldOutSet:
    """A manifest's readable utterances with their 16 kHz waveforms."""

    name: str
    utts: list[Utterance]
    wavs: list[np.ndarray]
    skipped: list[str] = field(default_factory=list)  # unreadable: "path: why"

    @property
    def audio_seconds(self) -> float:
        return sum(len(w) for w in self.wavs) / SAMPLE_RATE


@dataclass
class SystemRun:
    """One system's hypotheses on a set, its decoding time and start-up time."""

    system: str
    hyps: list[str]
    decode_seconds: float
    startup_seconds: float


def load_set(manifest: Path, limit: int = 0) -> HeldOutSet:
    """Read ``manifest`` (``limit`` utterances drawn with seed 0; 0: all) and its
    audio; unreadable files are reported on stderr and skipped."""
    utts = read_manifest(manifest)
    utts = [utts[i] for i in sample_indices(len(utts), limit)]
    out = HeldOutSet(str(manifest), [], [])
    for utt in utts:
        try:
            out.wavs.append(load_audio(utt.audio_filepath))
        except AudioError as err:
            print(f"error: {err} (skipped for both systems)", file=sys.stderr)
            out.skipped.append(str(err))
            continue
        out.utts.append(utt)
    return out


def pcm16(wav: np.ndarray) -> bytes:
    """float32 waveform in [-1, 1] -> 16-bit little-endian PCM bytes."""
    return (np.clip(wav, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def sphinx_words(hypstr: str) -> str:
    """PocketSphinx's words as a transcript: fillers and sentence marks dropped,
    ``(N)`` pronunciation marks cut off."""
    words = (_SPHINX_ALTERNATIVE.sub("", w) for w in hypstr.split())
    return " ".join(w for w in words if w and not _SPHINX_FILLER.match(w))


class PocketSphinx:
    """PocketSphinx en-us as it comes: one decoder, reused across files."""

    def __init__(self) -> None:
        start = time.perf_counter()
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=SAMPLE_RATE)
        self.startup_seconds = time.perf_counter() - start

    def transcribe(self, wav: np.ndarray) -> str:
        """One 16 kHz waveform, decoded as one utterance -> its words."""
        self.decoder.start_utt()
        self.decoder.process_raw(pcm16(wav), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return sphinx_words(hyp.hypstr) if hyp is not None else ""


def run_pocketsphinx(ps: PocketSphinx, wavs: list[np.ndarray]) -> SystemRun:
    """Decode each waveform; only the decoding (PCM conversion included) is timed."""
    from tqdm import tqdm

    hyps, seconds = [], 0.0
    for wav in tqdm(wavs, desc=POCKETSPHINX, disable=len(wavs) < 10 or None):
        start = time.perf_counter()
        hyps.append(ps.transcribe(wav))
        seconds += time.perf_counter() - start
    return SystemRun(POCKETSPHINX, hyps, seconds, ps.startup_seconds)


def project_hypotheses(tr: Transcriber, wavs: list[np.ndarray]) -> list[str]:
    """As ``Transcriber.transcribe_files`` decodes files: those up to
    ``max_segment_seconds`` batched by length, longer ones cut at pauses."""
    limit = tr.max_segment_seconds * SAMPLE_RATE
    short = [i for i, w in enumerate(wavs) if len(w) <= limit]
    hyps = [""] * len(wavs)
    for i, hyp in zip(short, tr.transcribe_waveforms([wavs[i] for i in short])):
        hyps[i] = hyp.text
    for i, wav in enumerate(wavs):
        if len(wav) > limit:
            hyps[i] = tr.transcribe_array(str(i), wav).text
    return hyps


def run_project(
    tr: Transcriber, name: str, wavs: list[np.ndarray], startup: float
) -> SystemRun:
    """This project's transcriber on the waveforms, decoding timed."""
    start = time.perf_counter()
    hyps = project_hypotheses(tr, wavs)
    return SystemRun(name, hyps, time.perf_counter() - start, startup)


def score_row(
    run: SystemRun, refs: list[str], audio_seconds: float, n_files: int
) -> dict:
    """One table/report row: error rates in percent, speed, size of the set."""
    report = score(refs, run.hyps)
    return {
        "system": run.system,
        "wer": 100 * report.wer,
        "cer": 100 * report.cer,
        "x_real_time": audio_seconds / run.decode_seconds
        if run.decode_seconds
        else float("inf"),
        "decode_seconds": run.decode_seconds,
        "startup_seconds": run.startup_seconds,
        "n_files": n_files,
        "audio_minutes": audio_seconds / 60,
    }


def set_report(held: HeldOutSet, runs: list[SystemRun]) -> dict:
    """A set's rows, its skipped files and each utterance's hypotheses."""
    refs = [u.text for u in held.utts]
    rows = [score_row(r, refs, held.audio_seconds, len(refs)) for r in runs]
    utterances = [
        {
            "id": u.id,
            "reference": u.text,
            "hypotheses": {r.system: r.hyps[k] for r in runs},
        }
        for k, u in enumerate(held.utts)
    ]
    return {
        "manifest": held.name,
        "rows": rows,
        "skipped": held.skipped,
        "utterances": utterances,
    }


def pooled_rows(sets: list[tuple[HeldOutSet, list[SystemRun]]]) -> list[dict]:
    """Each system over all sets: errors counted over all utterances (not an
    average of the sets' rates), decoding times summed."""
    refs = [u.text for held, _ in sets for u in held.utts]
    audio = sum(held.audio_seconds for held, _ in sets)
    rows = []
    for k, first in enumerate(sets[0][1]):
        runs = [runs[k] for _, runs in sets]
        pooled = SystemRun(
            first.system,
            [h for r in runs for h in r.hyps],
            sum(r.decode_seconds for r in runs),
            first.startup_seconds,
        )
        rows.append(score_row(pooled, refs, audio, len(refs)))
    return rows


def format_table(title: str, rows: list[dict]) -> str:
    """Rows as a Markdown table under ``title``."""
    out = [
        f"{title}: {rows[0]['n_files']} files, {rows[0]['audio_minutes']:.1f} min "
        "of audio",
        "",
        "| system | WER | CER | x real time | decoding s | start-up s |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r['system']} | {r['wer']:.2f}% | {r['cer']:.2f}% "
        f"| {r['x_real_time']:.1f}x | {r['decode_seconds']:.1f} "
        f"| {r['startup_seconds']:.2f} |"
        for r in rows
    ]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST")
    model_args(ap)
    decoding_args(ap)
    ap.add_argument(
        "--limit", type=int, default=0, help="N utterances per manifest (0: all)"
    )
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (torch)")
    ap.add_argument("--report", type=Path, help="write the figures here as JSON")
    ap.add_argument(
        "--no-pocketsphinx", action="store_true", help="only this project's model"
    )
    return ap.parse_args(argv)


def load_project(args: argparse.Namespace) -> tuple[Transcriber, str, float]:
    """(transcriber built as the CLI builds it, its row name, load seconds)."""
    start = time.perf_counter()
    tr = load_transcriber(args)
    seconds = time.perf_counter() - start
    model = Path(args.model or default_model_path()).name
    return tr, f"asr {model} ({tr.options.decoder})", seconds


def compare(args: argparse.Namespace) -> dict:
    """Run both systems on every manifest; the report as a JSON-ready dict."""
    torch.set_num_threads(args.threads)
    tr, name, load_s = load_project(args)
    ps = None if args.no_pocketsphinx else PocketSphinx()
    sets = []
    for manifest in args.manifests:
        try:
            held = load_set(manifest, args.limit)
        except ManifestError as err:
            print(f"error: {err} (skipped)", file=sys.stderr)
            continue
        if not held.utts:
            print(f"error: {manifest}: no readable audio (skipped)", file=sys.stderr)
            continue
        runs = [run_project(tr, name, held.wavs, load_s)]
        if ps is not None:
            runs.append(run_pocketsphinx(ps, held.wavs))
        sets.append((held, runs))
    return {
        "settings": {
            "threads": args.threads,
            "limit": args.limit,
            "decoding": asdict(tr.options),
        },
        "sets": [set_report(held, runs) for held, runs in sets],
        "pooled": pooled_rows(sets) if sets else [],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = compare(args)
    for s in report["sets"]:
        print(format_table(s["manifest"], s["rows"]) + "\n")
    if len(report["sets"]) > 1:
        print(format_table("pooled", report["pooled"]))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    n_skipped = sum(len(s["skipped"]) for s in report["sets"])
    return 1 if n_skipped or not report["sets"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Whole-process speed of `asr transcribe` on one long recording, side by side:
the default (the bundled model's ONNX export, no torch), the PyTorch checkpoint,
and PocketSphinx en-us out of the box (on the recording's first minutes only: it
runs at a few times real time), plus the start-up of each.

    python scripts/bench_throughput.py --manifest data/english/ls_dev.jsonl \
        --minutes 60 [--sphinx-minutes 5] [--rounds 1]

The recording is the manifest's utterances (real speech) joined end to end with
0.5 s of quiet-room noise between them, written once as a 16 kHz FLAC. Each
system runs in a fresh process; the figure is audio seconds per wall second.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio.files import SAMPLE_RATE, load_audio
from asr.data.manifest import read_manifest
from asr.model.bundled import default_model_path

SPHINX = """
import sys, numpy as np, soundfile as sf, pocketsphinx
wav, _ = sf.read(sys.argv[1], dtype="int16", frames=int(float(sys.argv[2]) * 16000))
d = pocketsphinx.Decoder(samprate=16000)
d.start_utt(); d.process_raw(wav.tobytes(), full_utt=True); d.end_utt()
print(d.hyp().hypstr if d.hyp() else "")
"""


def build(manifest: Path, path: Path, minutes: float) -> float:
    """Write ``minutes`` of the manifest's speech to ``path``; its seconds."""
    utts, rng = read_manifest(manifest), np.random.default_rng(0)
    target, written = int(minutes * 60 * SAMPLE_RATE), 0
    with sf.SoundFile(str(path), "w", SAMPLE_RATE, 1, format="FLAC") as f:
        for k in itertools.count():
            gap = 3e-4 * rng.standard_normal(SAMPLE_RATE // 2)
            wav = load_audio(utts[k % len(utts)].audio_filepath)
            block = np.concatenate([wav, gap]).astype(np.float32)[: target - written]
            f.write(block)
            written += len(block)
            if written >= target:
                break
    return written / SAMPLE_RATE


def wall(cmd: list[str]) -> float:
    """Wall seconds of one process (its output is discarded; it must succeed)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, required=True, help="real speech")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--sphinx-minutes", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    asr = [sys.executable, "-m", "asr", "transcribe"]
    with tempfile.TemporaryDirectory() as tmp:
        long, short = Path(tmp) / "long.flac", Path(tmp) / "short.flac"
        seconds = build(args.manifest, long, args.minutes)
        build(args.manifest, short, 3 / 60)
        sphinx_s = min(seconds, args.sphinx_minutes * 60)
        runs = {
            "asr transcribe (default: ONNX export)": (asr + [str(long)], seconds),
            "asr transcribe --model default_bilstm.pt (PyTorch)": (
                asr + [str(long), "--model", str(default_model_path())],
                seconds,
            ),
            f"PocketSphinx en-us (first {sphinx_s / 60:g} min)": (
                [sys.executable, "-c", SPHINX, str(long), str(sphinx_s)],
                sphinx_s,
            ),
            "start-up: asr transcribe of a 3 s file": (asr + [str(short)], 3.0),
            'start-up: python -c "import torch"': (
                [sys.executable, "-c", "import torch"],
                0.0,
            ),
        }
        print(f"recording: {seconds / 60:.1f} min of {args.manifest}\n")
        print("| command | wall s (best of rounds) | x real time |\n|---|---|---|")
        for name, (cmd, audio) in runs.items():
            best = min(wall(cmd) for _ in range(args.rounds))
            speed = f"{audio / best:.0f}x" if audio > 3 else "-"
            print(f"| {name} | {best:.2f} | {speed} |", flush=True)


if __name__ == "__main__":
    main()

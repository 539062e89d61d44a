"""Peak memory and speed of `asr transcribe` on files of 1 minute to 2 hours.

    python scripts/bench_long_audio.py [--minutes 1 20 60 120]

Builds the files from the bundled AN4 clips (with quiet-room noise between
them), then runs the CLI on each in a fresh process and reads its peak RSS.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio.files import SAMPLE_RATE, load_audio
from asr.model.bundled import default_model_path


def build(path: Path, minutes: float) -> float:
    """Write a FLAC of ``minutes`` of speech made of the bundled clips."""
    clips = sorted((default_model_path().parent / "clips").glob("*.sph"))
    wavs = [load_audio(c) for c in clips]
    rng = np.random.default_rng(0)
    target = int(minutes * 60 * SAMPLE_RATE)
    written = 0
    with sf.SoundFile(str(path), "w", SAMPLE_RATE, 1, format="FLAC") as f:
        k = 0
        while written < target:
            gap = 3e-4 * rng.standard_normal(int(0.7 * SAMPLE_RATE))
            block = np.concatenate([wavs[k % len(wavs)], gap]).astype(np.float32)
            f.write(block)
            written += len(block)
            k += 1
    return written / SAMPLE_RATE


def run(path: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one `asr transcribe` process."""
    code = (  # the child prints its own peak RSS after transcribing
        "import resource, sys; from asr.cli.app import main;"
        "main(['transcribe', sys.argv[1]]);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--minutes", type=float, nargs="+", default=[1.0, 20.0, 60.0, 120.0]
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("| file | audio | wall | x real time | peak RSS |")
        print("|---|---|---|---|---|")
        for minutes in args.minutes:
            path = Path(tmp) / f"{minutes:g}min.flac"
            seconds = build(path, minutes)
            wall, rss = run(path)
            print(
                f"| {minutes:g} min FLAC | {seconds:.0f} s | {wall:.1f} s "
                f"| {seconds / wall:.0f}x | {rss:.0f} MiB |"
            )


if __name__ == "__main__":
    main()

"""Throughput of `asr transcribe`, counting the whole process (start-up included).

    python scripts/bench_transcribe.py [--manifest data/an4/train.jsonl] [--model M]

Runs the CLI as a user would, on every file of the manifest, and prints audio
seconds, wall seconds and the real-time factor. Also times the bare start-up
(`asr info`) in the same run so the two can be compared side by side.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from asr.data.manifest import read_manifest

ASR = [sys.executable, "-m", "asr"]


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/train.jsonl"))
    ap.add_argument("--model", type=Path)
    args = ap.parse_args()
    utts = read_manifest(args.manifest)
    model = ["--model", str(args.model)] if args.model else []
    audio = sum(u.duration for u in utts)
    startup = timed([*ASR, "info", *model])
    wall = timed([*ASR, "transcribe", *model, *(u.audio_filepath for u in utts)])
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch threads default"
    )
    print(f"files: {len(utts)}  audio: {audio:.1f} s")
    print(
        f"asr transcribe wall time (whole process): {wall:.2f} s "
        f"-> {audio / wall:.0f}x faster than real time"
    )
    print(f"of which process start-up + model load (asr info): {startup:.2f} s")
    print(f"excluding start-up: {audio / max(wall - startup, 1e-9):.0f}x real time")


if __name__ == "__main__":
    main()

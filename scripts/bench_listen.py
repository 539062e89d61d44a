"""How soon `asr stream` and `asr commands` listen: process start -> microphone open.

    python scripts/bench_listen.py [--rounds 5] [--variant NAME=PYTHONPATH ...]

Each command runs as a whole process on a microphone that is an ALSA capture
device fed from a real speech clip (asr.audio.mic's ``asr_file``; PortAudio and
ALSA as for a real one), for ``--duration`` seconds of audio. Per run it reports
the wall time from the start of the process to its "listening on ..." line (the
microphone is open and every block from then on is kept), to its first result
line, and to its exit; ``python -c "import torch"`` runs beside it in the same
rounds, interleaved, so that the machine's load hits all alike. The median over
the rounds is printed as a markdown table. The file device is not paced (its audio is
there at once), so "first result" is when the command has caught up with audio
that was all spoken at the start; what a late start loses on a real microphone
(speech before it opened) does not show in it, only in "to listening".

``--variant NAME=DIR`` runs the commands with ``PYTHONPATH=DIR`` (e.g. a git
worktree of an older commit) to compare code versions side by side; the default
is this checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from asr.audio import mic
from asr.audio.files import load_audio

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "asr/assets/clips/an238-mrjc2-b.sph"  # AN4: "stop", a command
GRAMMAR = ROOT / "examples/commands.yaml"


def timed_run(cmd: list[str], env: dict, cwd: str) -> dict[str, float | None]:
    """Seconds from start to the 'listening' stderr line, the first stdout line
    and the exit of ``cmd`` (run in ``cwd``: `python -m` imports from there)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: dict[str, float | None] = {"listening": None, "first result": None}

    def watch(stream, key: str, needle: str | None) -> None:
        for line in stream:
            if seen[key] is None and (needle is None or needle in line):
                seen[key] = time.perf_counter() - t0

    threads = [
        threading.Thread(target=watch, args=(proc.stderr, "listening", "listening")),
        threading.Thread(target=watch, args=(proc.stdout, "first result", None)),
    ]
    for t in threads:
        t.start()
    rc = proc.wait(timeout=120)
    for t in threads:
        t.join()
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit status {rc}")
    return {**seen, "exit": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=4.0, help="seconds of audio")
    ap.add_argument("--variant", action="append", help="NAME=PYTHONPATH")
    args = ap.parse_args(argv)
    variants = [v.split("=", 1) for v in args.variant or [f"this checkout={ROOT}"]]

    tmp = Path(tempfile.mkdtemp(prefix="bench_listen_"))
    speech = load_audio(CLIP)
    quiet = np.zeros(8000, dtype=np.float32)
    # the clip twice, a second of quiet before each; longer than any --duration
    wav = np.concatenate([quiet, quiet, speech] * 2 + [np.zeros(16000 * 20)])
    raw = mic.write_raw_s16(wav.astype(np.float32), tmp / "clip.raw")
    conf = tmp / "asr_file.conf"
    conf.write_text(mic.record_file_device_config(raw, 16000))
    device = ["--device", mic.FILE_DEVICE_NAME, "--duration", str(args.duration)]
    runs = {'python -c "import torch"': ([sys.executable, "-c", "import torch"], None)}
    for name, path in variants:
        asr = [sys.executable, "-m", "asr"]
        runs[f"{name}: asr stream"] = (asr + ["stream", *device], path)
        runs[f"{name}: asr commands"] = (
            asr + ["commands", "--grammar", str(GRAMMAR), *device],
            path,
        )
    times: dict[str, list[dict]] = {label: [] for label in runs}
    for r in range(args.rounds):
        for label, (cmd, path) in runs.items():
            env = mic.file_device_env(conf)
            if path is not None:
                env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
            times[label].append(timed_run(cmd, env, path or str(ROOT)))
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)

    print(f"{args.rounds} rounds, medians; {os.cpu_count()} cores\n")
    print("| process | to 'listening on ...' | to first result | to exit |")
    print("|---|---|---|---|")
    for label, rows in times.items():
        cells = []
        for key in ("listening", "first result", "exit"):
            values = [row.get(key) for row in rows]
            values = [v for v in values if v is not None]
            cells.append(f"{np.median(values):.2f} s" if values else "-")
        print(f"| {label} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

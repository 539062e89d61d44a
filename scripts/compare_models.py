"""Compare trained models side by side: size, dev WER, training time, inference speed.

    python scripts/compare_models.py exp/cmp_bilstm_m exp/cmp_bigru_m \
        --manifest data/an4/dev.jsonl

Each argument is a training folder (best.pt + train.log). Training time is the
sum of the epochs' training times logged by the trainer (validation excluded).
Inference is greedy transcription of the manifest's audio (read beforehand), on
``--threads`` torch threads, the models taking turns for ``--rounds`` rounds; the
median audio seconds per wall second is reported.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr.audio.files import load_audio  # noqa: E402
from asr.data.manifest import read_manifest  # noqa: E402
from asr.decode.metrics import score  # noqa: E402
from asr.model.checkpoint import load_model  # noqa: E402
from asr.transcribe import Transcriber  # noqa: E402

EPOCH_LINE = re.compile(
    r"epoch (\d+): train loss [\d.naninf]+, [\d.]+ s of audio in ([\d.]+) s"
)
DEV_LINE = re.compile(r"epoch (\d+): dev WER ([\d.]+)%")


def training_log(path: Path) -> tuple[float, int, dict[int, float]]:
    """(training seconds summed over epochs, epochs, dev WER per epoch) of a log."""
    seconds, wers = {}, {}
    for line in path.read_text().splitlines():
        if m := EPOCH_LINE.search(line):
            seconds[int(m[1])] = float(m[2])
        elif m := DEV_LINE.search(line):
            wers[int(m[1])] = float(m[2])
    return sum(seconds.values()), len(seconds), wers


def compare(
    runs: list[Path], manifest: Path, threads: int = 1, rounds: int = 3
) -> list[dict]:
    torch.set_num_threads(threads)
    utts = read_manifest(manifest)
    wavs = [load_audio(u.audio_filepath) for u in utts]
    audio = sum(len(w) for w in wavs) / 16000
    rows, transcribers = [], []
    for run in runs:
        model, tokenizer, meta = load_model(run / "best.pt")
        tr = Transcriber(model.eval(), tokenizer)
        hyps = [h.text for h in tr.transcribe_waveforms(wavs)]
        train_s, epochs, wers = training_log(run / "train.log")
        best = min(wers, key=wers.get) if wers else None
        rows.append(
            {
                "run": str(run),
                "rnn": model.cfg.rnn,
                "hidden": model.cfg.hidden_size,
                "layers": model.cfg.n_layers,
                "params": model.n_params(),
                "wer": 100 * score([u.text for u in utts], hyps).wer,
                "best_epoch": best,
                "epochs": epochs,
                "train_s": train_s,
                "speeds": [],
            }
        )
        transcribers.append(tr)
    for _ in range(rounds):
        for row, tr in zip(rows, transcribers):
            start = time.perf_counter()
            tr.transcribe_waveforms(wavs)
            row["speeds"].append(audio / (time.perf_counter() - start))
    for row in rows:
        row["speed"] = statistics.median(row["speeds"])
    return rows


def format_rows(rows: list[dict]) -> str:
    out = [
        "| model | parameters | epochs | training time | dev WER (best epoch) "
        "| inference, audio s per s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['rnn'].upper()} {r['layers']} × {r['hidden']} "
            f"| {r['params'] / 1e6:.2f} M "
            f"| {r['epochs']} | {r['train_s'] / 60:.1f} min | {r['wer']:.2f}% "
            f"({r['best_epoch']}) | {r['speed']:.0f}x |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    rows = compare(args.runs, args.manifest, args.threads, args.rounds)
    print(format_rows(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

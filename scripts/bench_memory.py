"""Peak memory of training and of inference, each in a fresh process.

    python scripts/bench_memory.py [--train-manifest data/an4/train.jsonl] \
        [--dev-manifest data/an4/dev.jsonl] [--steps 3] [--device auto]

Each measurement runs this script again as a child process and reads the
child's peak resident set size from the kernel (``os.wait4`` -> ``ru_maxrss``):

- baseline: import torch and asr, load the bundled model (what every run pays);
- training: the AN4 config (conf/an4.yaml, 3 x 320 BiLSTM, AdamW) for ``--steps``
  training steps (``Trainer.train_step``, SpecAugment on) on the batches of the
  real DurationBatchSampler with the most padded audio (the worst case), loaded
  in the training process itself (no DataLoader worker);
- inference: the bundled model transcribing the dev manifest with
  ``Transcriber.transcribe_files`` (batches of up to 120 s of audio, greedy).

On CUDA the child also reports torch's own peak (``torch.cuda.max_memory_allocated``);
on the CPU torch keeps no such counter, so only the RSS is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

try:
    from scripts.bench_train_step import an4_config, make_trainer, neutral_cmvn
except ModuleNotFoundError:  # run as a file: scripts/ itself is on sys.path
    from bench_train_step import an4_config, make_trainer, neutral_cmvn

from asr.data.dataset import collate
from asr.data.manifest import read_manifest
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.transcribe import Transcriber

KINDS = ("baseline", "training", "inference")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def child_baseline(args) -> dict:
    load_model(default_model_path(), _device(args.device))
    return {}


def child_training(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = an4_config(args.train_manifest.resolve(), Path(tmp), args.threads)
        cfg.trainer.device = args.device
        neutral_cmvn(cfg, Path(tmp))
        trainer = make_trainer(cfg)
        utts = trainer.train_utts
        # padded samples of a batch: its size times its longest utterance
        biggest = sorted(
            trainer.sampler.batches,
            key=lambda b: len(b) * max(utts[i].duration for i in b),
            reverse=True,
        )[: args.steps]
        for idx in biggest:
            trainer.train_step(collate([trainer.dataset[i] for i in idx]), True)
        return {
            "steps": len(biggest),
            "largest_batch": f"{len(biggest[0])} x "
            f"{max(utts[i].duration for i in biggest[0]):.1f} s",
            "parameters": trainer.model.n_params(),
        }


def child_inference(args) -> dict:
    model, tok, _ = load_model(default_model_path(), _device(args.device))
    utts = read_manifest(args.dev_manifest)
    n = sum(
        1
        for _ in Transcriber(model, tok).transcribe_files(
            u.audio_filepath for u in utts
        )
    )
    return {"files": n, "audio_s": round(sum(u.duration for u in utts), 1)}


def run_child(args) -> None:
    """In the child: do the work, print one JSON line with torch's own peak."""
    torch.set_num_threads(args.threads)
    info = {
        "baseline": child_baseline,
        "training": child_training,
        "inference": child_inference,
    }[args.child](args)
    if torch.cuda.is_available() and _device(args.device).type == "cuda":
        info["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(info))


def measure(kind: str, argv: list[str]) -> dict:
    """Run a child for ``kind``; its JSON report plus its peak RSS in MiB."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed with exit code {proc.returncode}")
    info = json.loads(out.strip().splitlines()[-1])
    info["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-manifest", type=Path, default=Path("data/an4/train.jsonl"))
    ap.add_argument("--dev-manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args)
        return
    argv = [
        f"--train-manifest={args.train_manifest}",
        f"--dev-manifest={args.dev_manifest}",
        f"--steps={args.steps}",
        f"--device={args.device}",
        f"--threads={args.threads}",
    ]
    device = _device(args.device)
    print(f"device: {device}, {args.threads} torch threads, torch {torch.__version__}")
    print("| process | peak RSS | torch peak allocated (CUDA) | details |")
    print("|---|---|---|---|")
    for kind in KINDS:
        info = measure(kind, argv)
        cuda = info.pop("cuda_max_allocated_mib", None)
        rss = info.pop("peak_rss_mib")
        details = ", ".join(f"{k} {v}" for k, v in info.items())
        cuda_s = f"{cuda:.0f} MiB" if cuda is not None else "n/a (CPU)"
        print(f"| {kind} | {rss:.0f} MiB | {cuda_s} | {details} |")


if __name__ == "__main__":
    main()

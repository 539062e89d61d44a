"""Inference throughput of the bundled model by batch size: logits, and logits + greedy.

    python scripts/bench_inference.py [--manifest data/an4/dev.jsonl] \
        [--batch-sizes 1 8 32] [--repeats 3] [--threads 2] [--model M]

Audio is read beforehand (file reading is not timed). Utterances are sorted by
length and cut into batches of N (as `asr transcribe` batches them, so padding
stays small). "logits" is the model alone (level normalisation, features, conv
subsampling, BiLSTM, CTC head: ``model(wavs, wav_lens)``); "+ greedy" is
``Transcriber.decode_batch``, which adds greedy CTC decoding to text. Each round
runs every (batch size, column) once over the whole set, rounds interleave them,
and the table gives the median audio seconds per wall second (after
``--warmup`` untimed rounds).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from asr.audio.files import SAMPLE_RATE, load_audio
from asr.data.manifest import read_manifest
from asr.model.acoustic import ASRModel
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.transcribe import Transcriber


def sorted_batches(wavs: list[np.ndarray], batch_size: int):
    """Length-sorted zero-padded batches: list of ((B, S) tensor, lengths (B,))."""
    order = sorted(range(len(wavs)), key=lambda i: len(wavs[i]))
    out = []
    for k in range(0, len(order), batch_size):
        chunk = [torch.from_numpy(wavs[i]) for i in order[k : k + batch_size]]
        padded = torch.nn.utils.rnn.pad_sequence(chunk, batch_first=True)
        out.append((padded, torch.tensor([len(w) for w in chunk])))
    return out


def runners(
    model: ASRModel, transcriber: Transcriber, wavs: list[np.ndarray], sizes
) -> dict[tuple[int, str], Callable[[], None]]:
    """(batch size, column) -> a function that runs the whole set once."""
    out = {}
    for size in sizes:
        batches = sorted_batches(wavs, size)

        def logits(batches=batches):
            with torch.inference_mode():
                for x, n in batches:
                    model(x, n)

        def greedy(batches=batches):
            for x, n in batches:
                transcriber.decode_batch(x, n)

        out[size, "logits"], out[size, "greedy"] = logits, greedy
    return out


def measure(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Median wall seconds of each function, rounds interleaving them."""
    times: dict = {key: [] for key in fns}
    for round_ in range(warmup + repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(t) for key, t in times.items()}


def print_table(medians: dict, audio: float, sizes) -> None:
    print(
        "| batch size | logits: wall s | logits: audio s per s "
        "| + greedy: wall s | + greedy: audio s per s |"
    )
    print("|---|---|---|---|---|")
    for size in sizes:
        lg, gr = medians[size, "logits"], medians[size, "greedy"]
        print(f"| {size} | {lg:.2f} | {audio / lg:.0f} | {gr:.2f} | {audio / gr:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tok, _ = load_model(args.model)
    wavs = [load_audio(u.audio_filepath) for u in read_manifest(args.manifest)]
    audio = sum(len(w) for w in wavs) / SAMPLE_RATE
    fns = runners(model, Transcriber(model, tok), wavs, args.batch_sizes)
    with torch.inference_mode():  # first-call set-up (oneDNN kernels) out of the way
        model(*sorted_batches(wavs[:2], 2)[0])
    medians = measure(fns, args.repeats, args.warmup)
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads; "
        f"model {args.model.name} ({model.n_params() / 1e6:.2f} M parameters)"
    )
    print(f"{len(wavs)} files, {audio:.1f} s of audio; median of {args.repeats} rounds")
    print_table(medians, audio, args.batch_sizes)


if __name__ == "__main__":
    main()

"""fp32 vs int8 CPU inference, side by side: WER, log-prob drift and speed.

    python scripts/bench_quantize.py [--manifest data/an4/dev.jsonl] [--model M]
        [--threads 2] [--rounds 3]

Variants: the fp32 checkpoint in PyTorch (packed BiLSTM), its fp32 TorchScript and
ONNX exports, and int8 dynamic quantisation three ways: torch.ao on the checkpoint
(eager), torch.ao in the TorchScript export, onnxruntime on the ONNX export. Audio
is read once; every variant transcribes all of it (greedy, the Transcriber's
batching) ``rounds`` times, rounds interleaved across variants, and its fastest
round counts: load from other processes only ever slows a round down.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from asr.audio.files import load_audio
from asr.data.manifest import read_manifest
from asr.decode.metrics import score
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.model.export import export_model, max_difference
from asr.model.export import quantize_model as quantize_torch
from asr.model.exported import load_inference_model
from asr.transcribe import Transcriber


def build_variants(model, tokenizer, folder: Path) -> dict:
    """Variant name -> model callable (wavs, wav_lens) -> (log_probs, out_lens)."""

    def exported(fmt: str, quantize: str | None):
        path = folder / f"{quantize or 'fp32'}{'.onnx' if fmt == 'onnx' else '.ts'}"
        return load_inference_model(
            export_model(model, tokenizer, path, fmt, quantize)
        )[0]

    return {
        "fp32 PyTorch checkpoint": model,
        "fp32 TorchScript export": exported("torchscript", None),
        "fp32 ONNX export (onnxruntime)": exported("onnx", None),
        "int8 PyTorch (torch.ao dynamic, eager)": quantize_torch(model),
        "int8 TorchScript export (torch.ao dynamic)": exported("torchscript", "int8"),
        "int8 ONNX export (onnxruntime dynamic)": exported("onnx", "int8"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    utts = read_manifest(args.manifest)
    wavs = [load_audio(u.audio_filepath) for u in utts]
    refs = [u.text for u in utts]
    audio = sum(len(w) for w in wavs) / 16000
    model, tokenizer, _ = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        variants = build_variants(model, tokenizer, Path(tmp))
        sizes = {f.name: f.stat().st_size for f in Path(tmp).iterdir()}
        best = dict.fromkeys(variants, float("inf"))
        texts: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for name, m in variants.items():
                tr = Transcriber(m, tokenizer)
                t0 = time.perf_counter()
                hyps = tr.transcribe_waveforms(wavs)
                best[name] = min(best[name], time.perf_counter() - t0)
                texts[name] = [h.text for h in hyps]
        diffs = {name: max_difference(model, m, wavs) for name, m in variants.items()}
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {args.threads} threads; torch {torch.__version__}"
    )
    print(f"{len(utts)} utterances, {audio:.1f} s of audio; fastest of {args.rounds}")
    print(f"exported file sizes (MiB): {_sizes(sizes)}")
    ref_name = next(iter(variants))
    print(
        "| variant | WER | CER | transcripts = fp32 PyTorch | max abs log-prob diff"
        " | wall s | x real time | speed vs fp32 PyTorch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in variants:
        rep = score(refs, texts[name])
        same = sum(a == b for a, b in zip(texts[name], texts[ref_name]))
        print(
            f"| {name} | {100 * rep.wer:.2f}% | {100 * rep.cer:.2f}% | "
            f"{same}/{len(utts)} | {diffs[name]:.2g} | {best[name]:.2f} | "
            f"{audio / best[name]:.0f}x | {best[ref_name] / best[name]:.2f}x |"
        )


def _sizes(sizes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v / 2**20:.1f}" for k, v in sorted(sizes.items()))


if __name__ == "__main__":
    main()

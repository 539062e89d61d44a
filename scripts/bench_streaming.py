"""Streaming: WER vs chunk/right-context latency, end-of-speech latency, idle CPU.

    python scripts/bench_streaming.py --manifest data/an4/dev.jsonl [--model M]

1. Chunked (LC-BLSTM) decoding of every dev utterance (from 0.2 s before its
   speech, as the endpointer hands it over) for several chunk and right-context
   sizes, greedy, against full-utterance decoding: WER side by side.
2. Each dev clip padded with quiet-room noise is streamed in 30 ms blocks; the
   latency is the time from the end of speech (last speech island of the clip,
   asr.metrics.speech_islands) to the final result: the audio the endpointer had to
   hear plus the compute time of the final decode, measured with a wall clock.
3. CPU time spent per second of streamed silence (quiet-room noise).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from asr.audio.energy import speech_islands
from asr.audio.files import load_audio
from asr.data.manifest import read_manifest
from asr.decode.decoder import greedy_decode
from asr.decode.metrics import score
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.stream.recognizer import ChunkedEncoder, StreamingConfig, StreamingRecognizer

BLOCK = 480  # 30 ms at 16 kHz, what a device callback delivers


def quiet(seconds: float, rng) -> np.ndarray:
    return (3e-4 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def chunk_table(net, tok, wavs, refs) -> None:
    print("| chunk | right context | algorithmic latency | WER | CER |")
    print("|---|---|---|---|---|")
    for chunk, right in ((1000, 0), (25, 8), (10, 4), (6, 4), (6, 2), (4, 2), (2, 0)):
        hyps = []
        for wav in wavs:
            # a stream's encoder starts where the endpointer hears speech (with
            # its pre-roll), not at the recording's leading silence
            onset = max(0, int((speech_islands(wav)[0][0] - 0.2) * 16000))
            wav = wav[onset:]
            enc = ChunkedEncoder(net, chunk, right)
            enc.accept(wav)
            enc.flush()
            lp = enc.committed()
            hyps.append(greedy_decode(lp[None], torch.tensor([len(lp)]), tok)[0].text)
        r = score(refs, hyps)
        name = "whole utterance" if chunk == 1000 else f"{chunk * 40} ms"
        latency = "-" if chunk == 1000 else f"{(chunk + right) * 40} ms"
        print(
            f"| {name} | {right * 40} ms | {latency} | {100 * r.wer:.2f}% "
            f"| {100 * r.cer:.2f}% |"
        )


def latency_table(net, tok, wavs, refs, configs) -> None:
    print("| endpointer ring | end ratio | median latency | 90th pct | WER of finals |")
    print("|---|---|---|---|---|")
    for padding_ms, end_ratio in configs:
        cfg = StreamingConfig(padding_ms=padding_ms, end_ratio=end_ratio)
        latencies, hyps = [], []
        rng = np.random.default_rng(0)
        for wav in wavs:
            lead = quiet(0.5, rng)
            stream = np.concatenate([lead, wav, quiet(1.5, rng)])
            speech_end = (len(lead) / 16000) + speech_islands(wav)[-1][1]
            rec = StreamingRecognizer(net, tok, cfg)
            texts = []
            for k in range(0, len(stream), BLOCK):
                t0 = time.perf_counter()
                events = rec.feed(stream[k : k + BLOCK])
                compute = time.perf_counter() - t0
                for e in events:
                    if e.type == "final":
                        texts.append(e.text)
                        if len(texts) == 1 or e.end > speech_end:
                            latencies.append((k + BLOCK) / 16000 - speech_end + compute)
            texts += [e.text for e in rec.flush()]
            hyps.append(" ".join(texts))
        lat = np.array(latencies) * 1000
        print(
            f"| {padding_ms} ms | {end_ratio} | {np.median(lat):.0f} ms | "
            f"{np.percentile(lat, 90):.0f} ms | {100 * score(refs, hyps).wer:.2f}% |"
        )


def idle_cpu(net, tok, seconds: float = 60.0) -> None:
    rng = np.random.default_rng(1)
    silence = quiet(seconds, rng)
    rec = StreamingRecognizer(net, tok)
    t0 = time.process_time()
    for k in range(0, len(silence), BLOCK):
        rec.feed(silence[k : k + BLOCK])
    cpu = time.process_time() - t0
    print(
        f"silence: {seconds:.0f} s streamed, {cpu:.2f} s of CPU "
        f"= {100 * cpu / seconds:.1f}% of one core"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--model", type=Path, default=default_model_path())
    args = ap.parse_args()
    torch.set_num_threads(2)
    net, tok, _ = load_model(args.model)
    utts = read_manifest(args.manifest)
    wavs = [load_audio(u.audio_filepath) for u in utts]
    refs = [u.text for u in utts]
    print(f"{len(utts)} utterances from {args.manifest}\n")
    chunk_table(net, tok, wavs, refs)
    print()
    latency_table(net, tok, wavs, refs, [(300, 0.8), (240, 0.8), (180, 0.8)])
    print()
    idle_cpu(net, tok)


if __name__ == "__main__":
    main()

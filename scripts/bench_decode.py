"""Decoding speed and accuracy on a dev manifest: greedy vs beam vs beam + LM.

    python scripts/bench_decode.py --manifest data/an4/dev.jsonl \
        --model exp/an4/best.pt \
        --lm exp/an4/lm.arpa [--decoding-config exp/an4/decoding.json]

Emissions are computed once (timed separately); each decoder then runs over the
same emissions in the same process, so the ratios are side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

from asr.data.manifest import read_manifest
from asr.decode.decoder import DecodingOptions
from asr.decode.metrics import score
from asr.decode.tuning import compute_emissions, decode_emissions
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--lm", type=Path, required=True)
    ap.add_argument(
        "--decoding-config", type=Path, help="tuned options for the beam + LM row"
    )
    args = ap.parse_args()
    utts = read_manifest(args.manifest)
    model, tok, _ = load_model(args.model)
    audio = sum(u.duration for u in utts)
    t0 = time.perf_counter()
    emissions = compute_emissions(model, utts)
    t_model = time.perf_counter() - t0
    lm_opts = (
        DecodingOptions.from_file(args.decoding_config)
        if args.decoding_config
        else DecodingOptions(decoder="beam", lm=str(args.lm))
    )
    rows = [
        ("greedy", DecodingOptions()),
        ("beam (no LM, no lexicon)", DecodingOptions(decoder="beam")),
        ("beam + lexicon + LM", dataclasses.replace(lm_opts, lm=str(args.lm))),
    ]
    print(f"{len(utts)} utterances, {audio:.1f} s of audio, {os.cpu_count()} CPU cores")
    print(
        f"acoustic model (load + features + BiLSTM): {t_model:.2f} s "
        f"= {audio / t_model:.0f}x real time"
    )
    print(
        "| decoder | WER | CER | decoding s | decoding x real time "
        "| model + decoding x real time |"
    )
    print("|---|---|---|---|---|---|")
    refs = [u.text for u in utts]
    for name, opts in rows:
        t0 = time.perf_counter()
        hyps = decode_emissions(opts, tok, emissions)
        dt = time.perf_counter() - t0
        r = score(refs, hyps)
        print(
            f"| {name} | {100 * r.wer:.2f}% | {100 * r.cer:.2f}% | {dt:.2f} "
            f"| {audio / dt:.0f}x | {audio / (dt + t_model):.0f}x |"
        )


if __name__ == "__main__":
    main()

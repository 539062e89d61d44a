"""WER against the rate the audio was recorded at (its bandwidth), per model.

    python scripts/bench_bandwidth.py --manifest data/an4/dev.jsonl \
        --model asr/assets/default_bilstm.pt --model exp/an4/avg.pt

Every utterance is band-limited as if it had been recorded at each rate (resampled
to it and back: exactly what the loader makes of a file at that rate, see
tests/test_augment.py) and transcribed greedily. A model trained only on 16 kHz
audio can fall apart on 8 kHz telephone audio; one trained with
``augment.band_limit_prob`` should not.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import torch

from asr.audio.files import SAMPLE_RATE, load_audio
from asr.data.manifest import read_manifest
from asr.decode.decoder import DecodingOptions
from asr.decode.metrics import score
from asr.features.wave_augment import BandLimit
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.transcribe import Transcriber

RATES = (SAMPLE_RATE, 11025, 8000)


def recorded_at(wavs: list[torch.Tensor], rate: int) -> list[np.ndarray]:
    """16 kHz waveforms as the loader would give them had they been recorded at
    ``rate`` Hz."""
    if rate == SAMPLE_RATE:
        return [w.numpy() for w in wavs]
    limit = BandLimit(1.0, [rate])
    return [limit(w, random.Random(0)).numpy() for w in wavs]


def wer_per_version(
    path: Path,
    refs: list[str],
    audio: dict,
    options: DecodingOptions | None = None,
) -> dict:
    """WER (%) of the model at ``path`` on each version of the audio (a rate, or
    any other key), greedy unless ``options`` say otherwise."""
    model, tok, _ = load_model(path)
    tr = Transcriber(model, tok, options)
    return {
        key: 100 * score(refs, [h.text for h in tr.transcribe_waveforms(wavs)]).wer
        for key, wavs in audio.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--model", type=Path, action="append", help="repeatable")
    ap.add_argument("--rates", type=int, nargs="+", default=list(RATES))
    ap.add_argument(
        "--pad-ms",
        type=float,
        default=0.0,
        help="edge padding (DecodingOptions.pad_ms); 0: each clip as it is",
    )
    args = ap.parse_args()
    utts = read_manifest(args.manifest)
    refs = [u.text for u in utts]
    clean = [torch.from_numpy(load_audio(u.audio_filepath)) for u in utts]
    audio = {rate: recorded_at(clean, rate) for rate in args.rates}
    print("| model | " + " | ".join(f"recorded at {r} Hz" for r in args.rates) + " |")
    print("|---" * (len(args.rates) + 1) + "|")
    for path in args.model or [default_model_path()]:
        wers = wer_per_version(path, refs, audio, DecodingOptions(pad_ms=args.pad_ms))
        print(f"| `{path}` | " + " | ".join(f"{w:.2f}%" for w in wers.values()) + " |")


if __name__ == "__main__":
    main()

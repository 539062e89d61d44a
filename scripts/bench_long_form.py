"""Long-form WER: a manifest's utterances joined into one recording and
transcribed as one long file, against the same utterances one by one.

    python scripts/bench_long_form.py data/commands/an4_dev.jsonl \
        [--model english] [--gap 0.5 | --gap MIN MAX] [--minutes 30]

The recording is the utterances in manifest order (up to ``--minutes``), joined
with ``--gap`` seconds of quiet-room noise (or a length drawn between two),
transcribed in memory the way `asr transcribe` reads a long file (cut at pauses,
the pieces decoded in batches). WER is over the joined reference words; the
speed is audio seconds per second of that transcription. Decoding is the
model's own default (`asr info`); ``--model`` as the CLI's (default: the
bundled model's ONNX export, as `asr transcribe` picks it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr.audio.files import SAMPLE_RATE, load_audio  # noqa: E402
from asr.data.manifest import read_manifest  # noqa: E402
from asr.decode.decoder import DecodingOptions, model_decoding_defaults  # noqa: E402
from asr.decode.metrics import score  # noqa: E402
from asr.model.bundled import DEFAULT_MODEL, resolve_model  # noqa: E402
from asr.model.exported import load_inference_model  # noqa: E402
from asr.transcribe import Transcriber  # noqa: E402


def recording(manifest: Path, gap: list[float], minutes: float):
    """(joined 16 kHz audio, per-utterance waveforms, reference texts)."""
    rng, wavs, refs, total = np.random.default_rng(0), [], [], 0
    for utt in read_manifest(manifest):
        if total >= minutes * 60 * SAMPLE_RATE:
            break
        wavs.append(load_audio(utt.audio_filepath))
        refs.append(utt.text)
        total += len(wavs[-1])
    gaps = rng.uniform(gap[0], gap[-1], len(wavs))
    noise = [3e-4 * rng.standard_normal(int(g * SAMPLE_RATE)) for g in gaps]
    parts = [x for w, n in zip(wavs, noise) for x in (w, n)]
    return np.concatenate(parts).astype(np.float32), wavs, refs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument(
        "--gap",
        type=float,
        nargs="+",
        default=[0.5],
        help="seconds between clips: one value, or MIN MAX (drawn uniformly)",
    )
    ap.add_argument("--minutes", type=float, default=30.0)
    args = ap.parse_args()
    model, tokenizer = load_inference_model(resolve_model(args.model, True))
    options = DecodingOptions.for_model(model_decoding_defaults(model, tokenizer))
    print(f"model: {getattr(model, 'path', args.model)}")
    print("\n| manifest | audio | utterances one by one | one long recording |")
    print("|---|---|---|---|")
    for manifest in args.manifests:
        joined, wavs, refs = recording(manifest, args.gap, args.minutes)
        tr = Transcriber(model, tokenizer, options)
        single = 100 * score(refs, [h.text for h in tr.transcribe_waveforms(wavs)]).wer
        t0 = time.perf_counter()
        text = tr.transcribe_array(str(manifest), joined).text
        speed = len(joined) / SAMPLE_RATE / (time.perf_counter() - t0)
        whole = 100 * score([" ".join(refs)], [text]).wer
        minutes = len(joined) / SAMPLE_RATE / 60
        print(
            f"| {manifest} | {minutes:.1f} min | {single:.2f}% "
            f"| {whole:.2f}% ({speed:.0f}x) |"
        )


if __name__ == "__main__":
    main()

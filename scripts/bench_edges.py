"""WER on clips cut tight to the speech and on clips with pauses around it, per model.

    python scripts/bench_edges.py --manifest data/commands/fsdd_dev.jsonl \
        --model asr/assets/default_bilstm.pt --lexicon data/digits/lexicon.txt

Each utterance is scored three ways: as recorded; cut to its speech
(``EdgeTrim`` with no margin: what a tight VAD or an editor leaves, and how the
Free Spoken Digit Dataset is cut); and with 200 ms of faint noise, 50 dB below
its loudest frame, added before and after (``EdgePad.add_pauses``). A model that
has only heard one kind drops or garbles words at the edges of the other; one
trained with ``augment.edge_trim_prob`` and ``augment.edge_pad_prob`` should not.
Greedy decoding, or beam search over ``--lexicon``'s words. ``--pad-ms`` adds
rows decoded with inference-side edge padding (DecodingOptions.pad_ms: clips
with less pause than that get it topped up); the default 0 decodes each clip as
it is, whatever the model's own default.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import torch

try:
    from scripts.bench_bandwidth import wer_per_version
except ModuleNotFoundError:  # run as a file: scripts/ itself is on sys.path
    from bench_bandwidth import wer_per_version

from asr.audio.files import SAMPLE_RATE, load_audio
from asr.audio.padding import FRAME
from asr.data.manifest import read_manifest
from asr.decode.decoder import DecodingOptions
from asr.features.edges import EdgePad, EdgeTrim
from asr.model.bundled import default_model_path

PAUSE_MS, PAUSE_BELOW_DB = 200, 50.0


def versions(clean: list[torch.Tensor]) -> dict[str, list[np.ndarray]]:
    """As recorded, cut tight, and with pauses (fixed seeds: the same every run)."""
    tight = EdgeTrim(1.0, max_ms=0.0)
    n = PAUSE_MS * SAMPLE_RATE // 1000
    return {
        "as recorded": [w.numpy() for w in clean],
        "cut tight": [tight(w, random.Random(0)).numpy() for w in clean],
        f"{PAUSE_MS} ms pauses": [
            EdgePad.add_pauses(w, n, n, PAUSE_BELOW_DB, seed=i).numpy()
            if len(w) >= FRAME  # add_pauses needs one frame to take its level from
            else w.numpy()
            for i, w in enumerate(clean)
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--model", type=Path, action="append", help="repeatable")
    ap.add_argument("--lexicon", help="beam search over these words (else greedy)")
    ap.add_argument(
        "--pad-ms",
        type=float,
        nargs="+",
        default=[0.0],
        help="decode with each of these edge paddings (one row each)",
    )
    args = ap.parse_args()
    utts = read_manifest(args.manifest)
    refs = [u.text for u in utts]
    audio = versions([torch.from_numpy(load_audio(u.audio_filepath)) for u in utts])
    decoder = {"decoder": "beam", "lexicon": args.lexicon} if args.lexicon else {}
    print("| model | decoded with | " + " | ".join(audio) + " |")
    print("|---" * (len(audio) + 2) + "|")
    for path in args.model or [default_model_path()]:
        for pad in args.pad_ms:
            options = DecodingOptions(**decoder, pad_ms=pad)
            wers = wer_per_version(path, refs, audio, options)
            how = f"padding to {pad:g} ms" if pad else "no padding"
            cells = " | ".join(f"{w:.2f}%" for w in wers.values())
            print(f"| `{path}` | {how} | {cells} |")


if __name__ == "__main__":
    main()

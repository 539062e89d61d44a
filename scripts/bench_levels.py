"""WER against recording level, with and without level normalisation.

    python scripts/bench_levels.py --manifest data/an4/dev.jsonl [--model M]

Every utterance is scaled by the same gain (as if recorded quieter or louder) and
transcribed greedily, once with the model's level normalisation switched off and
once with it at --level-db.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.audio.files import load_audio
from asr.data.manifest import read_manifest
from asr.decode.metrics import score
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.transcribe import Transcriber

GAINS_DB = (-20, -10, 0, 10, 18)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--level-db", type=float, default=-25.0)
    args = ap.parse_args()
    model, tok, _ = load_model(args.model)
    utts = read_manifest(args.manifest)
    wavs = [load_audio(u.audio_filepath) for u in utts]
    refs = [u.text for u in utts]
    print(
        "| level normalisation | " + " | ".join(f"{g:+d} dB" for g in GAINS_DB) + " |"
    )
    print("|---" * (len(GAINS_DB) + 1) + "|")
    for level in (None, args.level_db):
        model.feature_cfg.level_db = level
        tr = Transcriber(model, tok)
        row = []
        for g in GAINS_DB:
            hyps = tr.transcribe_waveforms([w * 10 ** (g / 20) for w in wavs])
            row.append(f"{100 * score(refs, [h.text for h in hyps]).wer:.2f}%")
        name = "off" if level is None else f"{level:g} dBFS"
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Run HERE (with network), before scripts/gpu_check.sh runs on a GPU machine without
# network: downloads the wheels that machine lacks (its Python 3.12 has torch and
# torchaudio, numpy, scipy, numba, scikit-learn, tqdm, tensorboard, pyyaml, pytest,
# matplotlib, but not the packages below) for CPython 3.12 manylinux x86_64.
#
#   bash scripts/gpu_wheels.sh [DIR]                  # DIR: shared/wheels
#   bash scripts/gpu_wheels.sh [DIR] --an4 data/an4   # also pack AN4 (see below)
#
# AN4 is 82 MB of SPHERE audio, more than travels to the device machine (64 MiB
# with the working tree); --an4 MANIFEST_DIR writes its train/dev manifests' audio
# as Ogg Vorbis (about a tenth of the size) with manifests beside it, into
# shared/an4_ogg, for `gpu_check.sh --manifests shared/an4_ogg`.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=shared/wheels
an4=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --an4) an4=$2; shift 2 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) dir=$1; shift ;;
    esac
done
PY=${PY:-.venv/bin/python}

# the project's missing dependencies and theirs, pinned to what is tested here
WHEELS=(
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
    jiwer==4.0.0 rapidfuzz==3.14.6
    hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3
    librosa==0.11.0 audioread==3.1.0 decorator==5.3.1 pooch==1.9.0
    platformdirs==4.14.8 soxr==1.1.0
    flashlight-text==0.0.7 webrtcvad-wheels==2.0.14.post1 sounddevice==0.5.6
)
mkdir -p "$dir"
rm -f "$dir"/*.whl
# antlr4-python3-runtime 4.9.3 is a source distribution only: build its wheel
"$PY" -m pip wheel --no-deps -q -w "$dir" antlr4-python3-runtime==4.9.3
for w in "${WHEELS[@]}"; do
    [[ $w == antlr4-* ]] && continue
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        --platform manylinux_2_24_x86_64 --platform any -d "$dir" "$w"
done
ls -1 "$dir"
du -sh "$dir"

if [[ -n $an4 ]]; then
    out=shared/an4_ogg
    "$PY" - "$an4" "$out" <<'EOF'
import sys
from pathlib import Path

import soundfile as sf

from asr.data.manifest import Utterance, read_manifest, write_manifest

src, out = Path(sys.argv[1]), Path(sys.argv[2])
(out / "audio").mkdir(parents=True, exist_ok=True)
for split in ("train", "dev"):
    utts = []
    for u in read_manifest(src / f"{split}.jsonl"):
        wav, sr = sf.read(u.audio_filepath, dtype="float32")
        rel = Path("audio") / f"{Path(u.audio_filepath).stem}.ogg"
        sf.write(out / rel, wav, sr, format="OGG", subtype="VORBIS")
        utts.append(Utterance(str(rel), u.duration, u.text, u.speaker))
    write_manifest(out / f"{split}.jsonl", utts)
    print(f"{split}: {len(utts)} utterances -> {out / split}.jsonl")
EOF
    du -sh "$out"
fi

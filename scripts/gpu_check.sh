#!/usr/bin/env bash
# The GPU check, one command for a lent GPU machine (Python 3.12 with torch and
# torchaudio, no network), within 5 minutes:
#   1. installs the wheels that scripts/gpu_wheels.sh downloaded beforehand
#   2. runs the GPU tests (pytest -m gpu)
#   3. trains AN4 for a few epochs on the GPU (bf16) and prints train loss per
#      epoch (it must fall), audio seconds per second, epoch time, peak GPU memory
#
#   bash scripts/gpu_check.sh [--wheels shared/wheels] [--epochs 3]
#        [--an4 ../shared/data/an4 | --manifests shared/an4_ogg] [HYDRA OVERRIDES]
#   ASR_GPU_CHECK_CPU=1 bash scripts/gpu_check.sh --epochs 1   # the plumbing, on CPU
#
# AN4 comes from --manifests (train.jsonl + dev.jsonl, e.g. gpu_wheels.sh --an4),
# else from the AN4 tree at --an4 (through recipes/an4/prepare.py), else, saying so,
# from the bundled clips (then the numbers say nothing about AN4).
set -euo pipefail
cd "$(dirname "$0")/.."

wheels=shared/wheels
an4=../shared/data/an4
manifests=""
epochs=3
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --wheels) wheels=$2; shift 2 ;;
        --an4) an4=$2; shift 2 ;;
        --manifests) manifests=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
PY=${PY:-python3}
device=cuda
[[ ${ASR_GPU_CHECK_CPU:-0} == 1 ]] && device=cpu
work=${ASR_GPU_CHECK_DIR:-/tmp/asr_gpu_check}
mkdir -p "$work"
start=$SECONDS

echo "== 1. packages"
if compgen -G "$wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$work/site" "$wheels"/*.whl
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "no wheels in $wheels: using the packages already installed"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the project, from the source tree
export PYTHONUNBUFFERED=1
"$PY" - "$device" <<'EOF'
import sys

import hydra, jiwer, librosa, soundfile, torch, torchaudio  # noqa: F401

print(f"python {sys.version.split()[0]}, torch {torch.__version__}, "
      f"torchaudio {torchaudio.__version__}, soundfile {soundfile.__version__}")
if torch.cuda.is_available():
    print(f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name()}, "
          f"cuDNN {torch.backends.cudnn.version()}")
elif sys.argv[1] == "cuda":
    sys.exit("FAIL: torch sees no CUDA device")
EOF

echo "== 2. GPU tests"
"$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py

echo "== 3. training on $device"
if [[ -n $manifests ]]; then
    train=$manifests/train.jsonl dev=$manifests/dev.jsonl
elif [[ -d $an4 ]]; then
    "$PY" recipes/an4/prepare.py --an4 "$an4" --out "$work/an4"
    train=$work/an4/train.jsonl dev=$work/an4/dev.jsonl
else
    echo "AN4 is not at $an4 (and no --manifests): training on the bundled clips" \
        "instead; a check of the GPU path, not an AN4 figure"
    "$PY" scripts/gpu_check.py --clips "$work/clips"
    train=$work/clips/train.jsonl dev=$work/clips/dev.jsonl
    set -- optim.warmup_steps=10 "$@"  # a few steps an epoch: a short warm-up
fi
rm -rf "$work/run"
"$PY" scripts/gpu_check.py --train "$train" --dev "$dev" --epochs "$epochs" \
    --device "$device" --out "$work/run" "$@"
echo "gpu_check: done in $((SECONDS - start)) s"

#!/usr/bin/env bash
# Hydra multirun over the AN4 training stage: one run per combination of the
# comma-separated overrides (in turn), then one table of dev WERs.
#   bash recipes/an4/sweep.sh model.dropout=0.15,0.3 augment.noise_prob=0,0.25 trainer.epochs=30
#   SWEEP=exp/sweeps/an4_b bash recipes/an4/sweep.sh ...
# Needs stages 1-2 of run.sh (data/an4/*.jsonl, $EXP/cmvn.pt). A sweep over
# features.* cannot share that file: then every run measures its own statistics
# (data.cmvn_max_utterances of the training set).
set -euo pipefail
data=${DATA:-data/an4}
exp=${EXP:-exp/an4}
sweep=${SWEEP:-exp/sweeps/an4}
PY=${PY:-.venv/bin/python}

stats="$exp/cmvn.pt"
for arg in "$@"; do
    case $arg in features.* | +features.* | ++features.*) stats= ;; esac
done
if [ -z "$stats" ]; then
    echo "features.* overridden: every run measures its own feature statistics" >&2
elif [ ! -f "$stats" ]; then
    echo "$stats missing: run recipes/an4/run.sh --stage 1 --stop-stage 2" >&2
    exit 1
fi
$PY -m asr.train --config-name an4 --multirun \
    hydra.sweep.dir="$sweep" \
    data.train_manifest=$data/train.jsonl data.dev_manifest=$data/dev.jsonl \
    data.cmvn_stats="$stats" 'trainer.out_dir=${hydra:runtime.output_dir}' \
    trainer.progress=false "$@"
$PY scripts/sweep_table.py "$sweep" | tee "$sweep/results.md"

#!/usr/bin/env bash
# AN4 recipe: prepare -> statistics -> train -> LM -> tune decoder -> evaluate.
#   bash recipes/an4/run.sh                      # all stages
#   bash recipes/an4/run.sh --stage 3 --stop-stage 3 trainer.epochs=10   # one stage
# Extra arguments are Hydra overrides for the training stage.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=1
stop_stage=6
an4=${AN4:-../shared/data/an4}
data=data/an4
exp=${EXP:-exp/an4}
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --an4) an4=$2; shift 2 ;;
        --exp) exp=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
PY=${PY:-.venv/bin/python}
ASR=${ASR:-.venv/bin/asr}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
    echo "stage 1: manifests from $an4 (8 training speakers held out as dev)"
    $PY recipes/an4/prepare.py --an4 "$an4" --out $data
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
    echo "stage 2: feature statistics of the training manifest"
    mkdir -p "$exp"
    $ASR stats $data/train.jsonl --level-db -25 --output "$exp/cmvn.pt" --overrides "$@"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
    echo "stage 3: training (resumes if $exp/last.state.pt exists)"
    resume=false
    [ -f "$exp/last.state.pt" ] && resume=true
    start=$SECONDS
    $PY -m asr.train --config-name an4 \
        data.train_manifest=$data/train.jsonl data.dev_manifest=$data/dev.jsonl \
        data.cmvn_stats="$exp/cmvn.pt" trainer.out_dir="$exp" \
        trainer.resume=$resume "$@"
    echo "training took $((SECONDS - start)) s" | tee -a "$exp/train.time"
fi

# decoding uses the averaged last epochs when training made them
# (trainer.average_last=K), else the best epoch on dev
model="$exp/best.pt"
[ -f "$exp/avg.pt" ] && model="$exp/avg.pt"

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
    echo "stage 4: word 3-gram LM (modified Kneser-Ney) from the training transcripts;"
    echo "         vocabulary: theirs plus the corpus dictionary's (etc/an4.dic)"
    vocab=()
    [ -f "$an4/etc/an4.dic" ] && vocab=(--vocab "$an4/etc/an4.dic")
    $ASR lm build $data/train.jsonl --order 3 "${vocab[@]}" --output "$exp/lm.arpa"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
    echo "stage 5: tune LM weight and word bonus on dev"
    $ASR tune-decoder --manifest $data/dev.jsonl --model "$model" \
        --lm "$exp/lm.arpa" --output "$exp/decoding.json"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
    echo "stage 6: evaluation of $model: greedy, beam, beam + lexicon + LM"
    for set in dev test; do
        [ -f $data/$set.jsonl ] || continue
        $ASR evaluate $data/$set.jsonl --model "$model" \
            --report "$exp/$set.greedy.tsv"
        $ASR evaluate $data/$set.jsonl --model "$model" --decoder beam \
            --report "$exp/$set.beam.tsv"
        $ASR evaluate $data/$set.jsonl --model "$model" \
            --decoding-config "$exp/decoding.json" --report "$exp/$set.beam_lm.tsv"
    done
fi

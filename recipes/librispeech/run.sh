#!/usr/bin/env bash
# LibriSpeech recipe: prepare -> statistics -> train -> LM -> tune decoder -> evaluate.
#   bash recipes/librispeech/run.sh --root /data/LibriSpeech           # all stages
#   bash recipes/librispeech/run.sh --stage 3 --stop-stage 3 trainer.epochs=10
# Extra arguments are Hydra overrides for the training stage.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=1
stop_stage=6
root=${LIBRISPEECH:-data/LibriSpeech}
data=data/librispeech
exp=${EXP:-exp/librispeech}
jobs=${JOBS:-$(nproc)}
train_subsets=""  # empty: every train-* subset present
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --root) root=$2; shift 2 ;;
        --exp) exp=$2; shift 2 ;;
        --train) train_subsets=$2; shift 2 ;;  # e.g. "train-clean-100 train-clean-360"
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
PY=${PY:-.venv/bin/python}
ASR=${ASR:-.venv/bin/asr}
eval_sets="dev-clean dev-other test-clean test-other"

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
    echo "stage 1: one manifest per subset of $root; train.jsonl joins the train subsets"
    # shellcheck disable=SC2086  # the subset list is meant to split
    $PY recipes/librispeech/prepare.py --root "$root" --out $data --jobs "$jobs" \
        ${train_subsets:+--train $train_subsets}
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
    echo "stage 2: feature statistics of 2000 training utterances drawn at random"
    mkdir -p "$exp"
    shuf -n 2000 --random-source=<(yes) $data/train.jsonl > "$exp/cmvn_sample.jsonl"
    $ASR stats "$exp/cmvn_sample.jsonl" --level-db -25 --output "$exp/cmvn.pt" --overrides "$@"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
    echo "stage 3: training (resumes if $exp/last.state.pt exists)"
    resume=false
    [ -f "$exp/last.state.pt" ] && resume=true
    start=$SECONDS
    $PY -m asr.train --config-name librispeech \
        data.train_manifest=$data/train.jsonl data.dev_manifest=$data/dev-clean.jsonl \
        data.cmvn_stats="$exp/cmvn.pt" trainer.out_dir="$exp" \
        trainer.resume=$resume "$@"
    echo "training took $((SECONDS - start)) s" | tee -a "$exp/train.time"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
    echo "stage 4: word 3-gram LM (modified Kneser-Ney) from the training transcripts"
    $ASR lm build $data/train.jsonl --order 3 --output "$exp/lm.arpa"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
    echo "stage 5: tune LM weight and word bonus on dev-clean"
    $ASR tune-decoder --manifest $data/dev-clean.jsonl --model "$exp/best.pt" \
        --lm "$exp/lm.arpa" --output "$exp/decoding.json"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
    echo "stage 6: evaluation of the best checkpoint on each set: greedy, beam + LM"
    for set in $eval_sets; do
        [ -f $data/$set.jsonl ] || { echo "$set: no manifest, skipped"; continue; }
        $ASR evaluate $data/$set.jsonl --model "$exp/best.pt" \
            --report "$exp/$set.greedy.tsv" | tee "$exp/$set.greedy.log"
        $ASR evaluate $data/$set.jsonl --model "$exp/best.pt" \
            --decoding-config "$exp/decoding.json" --report "$exp/$set.beam_lm.tsv" \
            | tee "$exp/$set.beam_lm.log"
    done
    echo "WER by set (test-clean and test-other are reported separately):"
    for set in $eval_sets; do
        for dec in greedy beam_lm; do
            log="$exp/$set.$dec.log"
            if [ -f "$log" ]; then
                printf '%-11s %-8s %s\n' "$set" "$dec" "$(grep '^WER' "$log")"
            fi
        done
    done
fi

#!/usr/bin/env bash
# Leave-one-speaker-out over the FSDD speakers: each one in turn is the held-out
# dev speaker of recipes/digits/run.sh (same synthetic speech for all folds), then
# one table of every fold's held-out-speaker WER and all folds pooled.
#   bash recipes/digits/folds.sh                        # all four speakers
#   SPEAKERS="george lucas" bash recipes/digits/folds.sh trainer.epochs=20
# Extra arguments are Hydra overrides for every fold's training.
set -euo pipefail
cd "$(dirname "$0")/../.."

speakers=${SPEAKERS:-"george jackson lucas nicolas"}
root=${EXP:-exp/digits_folds}
synth=${SYNTH:-data/digits/synth}

for spk in $speakers; do
    [ -f "$root/$spk/dev.last.greedy.tsv" ] && continue  # fold done
    fold=(--dev-speaker "$spk" --data "data/digits_folds/$spk" --synth "$synth"
          --exp "$root/$spk")
    bash recipes/digits/run.sh "${fold[@]}" "$@"
done

wer() {  # word errors / reference words over the given reports; "-" if one is missing
    for f in "$@"; do [ -f "$f" ] || { echo "-"; return; }; done
    awk -F'\t' 'FNR > 1 {e += $8; n += $4} END {printf "%.2f%%", 100 * e / n}' "$@"
}
ckpt() {  # ckpt <speaker>: the averaged epochs when the fold made them, else the last
    if [ -f "$root/$1/avg.pt" ]; then echo avg; else echo last; fi
}
report() {  # report <speaker> <decoding>: that checkpoint's report
    echo "$root/$1/dev.$(ckpt "$1").$2.tsv"
}
kinds="greedy lexicon lexicon_lm"
table="$root/results.md"
{
    echo "| held-out speaker | greedy | lexicon | lexicon + digit 2-gram |"
    echo "|---|---|---|---|"
    for spk in $speakers; do
        row="| $spk ($(ckpt "$spk").pt)"
        for k in $kinds; do row="$row | $(wer "$(report "$spk" "$k")")"; done
        echo "$row |"
    done
    row="| all folds (pooled)"
    for k in $kinds; do
        files=()
        for spk in $speakers; do files+=("$(report "$spk" "$k")"); done
        row="$row | $(wer "${files[@]}")"
    done
    echo "$row |"
} > "$table"
cat "$table"

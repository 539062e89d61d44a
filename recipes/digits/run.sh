#!/usr/bin/env bash
# Digits recipe (Free Spoken Digit Dataset, one speaker held out as dev):
# prepare -> synthesize -> merge (+ speaker equalisation) -> statistics -> train
# -> evaluate.
#   bash recipes/digits/run.sh          # all stages: FSDD + synthetic + AN4's digits
#   bash recipes/digits/run.sh --train train_synth   # FSDD + synthetic only
#   bash recipes/digits/run.sh --train train --exp exp/digits_fsdd   # FSDD only
#   bash recipes/digits/run.sh --speaker-eq 0    # the audio as it is (stage 3b off)
#   bash recipes/digits/run.sh --stage 5 --stop-stage 5 trainer.epochs=10
#   bash recipes/digits/run.sh --stage 3 --train train_an4 --init exp/an4/avg.pt \
#       --exp exp/digits_an4 model=bilstm_m         # fine-tune an AN4 model
#   bash recipes/digits/run.sh --dev-speaker jackson --data data/digits_jackson \
#       --synth data/digits/synth --exp exp/digits_jackson   # another fold (folds.sh)
# Extra arguments are Hydra overrides for the training stage.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=1
stop_stage=6
fsdd=${FSDD:-../shared/data/fsdd}
data=data/digits  # manifests of this split
synth=""  # synthetic speech folder (default: $data/synth; shareable between splits)
train=train_an4d  # train (FSDD only) | train_synth (+ synthetic) | train_synth8k
                  # | train_an4 (+ synthetic + AN4 train, all at 8 kHz)
                  # | train_an4d (+ synthetic + the digit words cut out of AN4 train)
init=""  # a trained checkpoint to fine-tune (its CMVN statistics are kept)
an4=${AN4:-../shared/data/an4}  # the AN4 corpus, for train_an4(d)
an4_data=${AN4_DATA:-data/an4}  # its manifests (recipes/an4 stage 1; made if missing)
an4_digits=${AN4_DIGITS:-data/digits/an4_digits}  # digits cut from it (train_an4d)
# (+ synthetic resampled to FSDD's 8 kHz): see README
dev_speaker=nicolas
speaker_eq=1  # 1: every speaker's long-term spectrum brought to the training
              # speakers' average (asr speaker-eq; the held-out speaker measured on
              # 100 of his clips, scored on the other 400); 0: the audio as it is
exp=${EXP:-exp/digits}
jobs=${JOBS:-2}
copies=${SYNTH_COPIES:-16}  # synthetic renditions of each of the 50 texts
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --fsdd) fsdd=$2; shift 2 ;;
        --train) train=$2; shift 2 ;;
        --dev-speaker) dev_speaker=$2; shift 2 ;;
        --exp) exp=$2; shift 2 ;;
        --init) init=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --synth) synth=$2; shift 2 ;;
        --speaker-eq) speaker_eq=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
synth=${synth:-$data/synth}
PY=${PY:-.venv/bin/python}
ASR=${ASR:-.venv/bin/asr}
train_manifest=$data/$train.jsonl
dev_manifest=$data/dev.jsonl
if [ "$speaker_eq" = 1 ]; then  # stages 4-6 read the equalised copies (stage 3b)
    train_manifest=$data/eq/$train/manifest.jsonl
    dev_manifest=$data/eq/dev/unseen.jsonl
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
    echo "stage 1: manifests from $fsdd ($dev_speaker held out as dev)"
    $PY recipes/digits/prepare.py --fsdd "$fsdd" --out $data \
        --dev-speaker "$dev_speaker"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [ $train != train ]; then
    echo "stage 2: synthetic digits and digit strings (resumes; a few minutes)"
    $PY scripts/synthesize.py --texts $data/synth_texts.txt --out "$synth" \
        --copies "$copies" --engines espeak:4,flite:2,piper:1,festival:1 --jobs "$jobs"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ] && [ $train != train ]; then
    echo "stage 3: FSDD train + synthetic -> $data/$train.jsonl"
    rate=0
    extra=()
    [ $train = train_synth8k ] && rate=8000
    if [[ $train == train_an4* && ! -f "$an4_data/train.jsonl" ]]; then
        $PY recipes/an4/prepare.py --an4 "$an4" --out "$an4_data"
    fi
    if [ $train = train_an4 ]; then
        rate=8000
        extra=("$an4_data/train.jsonl")  # 74 more speakers, band-limited like FSDD
    fi
    if [ $train = train_an4d ]; then
        # every digit word of AN4's 66 training speakers, cut at its aligned times
        [ -f "$an4_digits/manifest.jsonl" ] || $PY recipes/digits/prepare.py \
            an4-digits "$an4_data/train.jsonl" --out "$an4_digits"
        extra=("$an4_digits/manifest.jsonl")
    fi
    $PY recipes/digits/prepare.py merge $data/$train.jsonl \
        $data/train.jsonl "$synth/manifest.jsonl" "${extra[@]}" --rate $rate
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ] && [ "$speaker_eq" = 1 ]; then
    echo "stage 3b: speaker equalisation of $data/$train.jsonl and $data/dev.jsonl"
    $ASR speaker-eq reference $data/$train.jsonl --output $data/eq/reference.json
    $ASR speaker-eq apply $data/$train.jsonl --reference $data/eq/reference.json \
        --out $data/eq/$train
    # the held-out speaker's filter from 100 of his clips, no transcripts; the
    # other 400 are the dev set
    $ASR speaker-eq apply $data/dev.jsonl --reference $data/eq/reference.json \
        --out $data/eq/dev --stats-clips 100
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && [ -z "$init" ]; then
    echo "stage 4: feature statistics of $train_manifest"
    mkdir -p "$exp"
    $ASR stats "$train_manifest" --level-db -25 --output "$exp/cmvn.pt" --overrides "$@"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
    echo "stage 5: training on $train (resumes if $exp/last.state.pt exists)"
    resume=false
    [ -f "$exp/last.state.pt" ] && resume=true
    start=$SECONDS
    from=(data.cmvn_stats="$exp/cmvn.pt")
    [ -n "$init" ] && from=(trainer.init_from="$init")
    $PY -m asr.train --config-name digits \
        data.train_manifest="$train_manifest" data.dev_manifest="$dev_manifest" \
        "${from[@]}" trainer.out_dir="$exp" trainer.resume=$resume "$@"
    echo "training took $((SECONDS - start)) s" | tee -a "$exp/train.time"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
    echo "stage 6: held-out-speaker evaluation, best, last (and averaged) checkpoints"
    # word 2-gram of the digit texts (FSDD train + the synthetic texts; no AN4)
    $ASR lm build $data/train.jsonl $data/synth_texts.txt --order 2 \
        --output "$exp/lm.arpa"
    [ "$speaker_eq" = 1 ] && cp $data/eq/reference.json "$exp/speaker_eq.json"
    for ckpt in best last avg; do
        [ -f "$exp/$ckpt.pt" ] || continue
        $ASR evaluate "$dev_manifest" --model "$exp/$ckpt.pt" \
            --report "$exp/dev.$ckpt.greedy.tsv"
        # the beam decoder needs a space in the vocabulary: multi-word training text
        if grep -q '"text": "[a-z]* ' $data/$train.jsonl; then
            $ASR evaluate "$dev_manifest" --model "$exp/$ckpt.pt" --decoder beam \
                --lexicon $data/lexicon.txt --report "$exp/dev.$ckpt.lexicon.tsv"
            $ASR evaluate "$dev_manifest" --model "$exp/$ckpt.pt" \
                --lexicon $data/lexicon.txt --lm "$exp/lm.arpa" \
                --report "$exp/dev.$ckpt.lexicon_lm.tsv"
        fi
    done
fi

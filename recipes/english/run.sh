#!/usr/bin/env bash
# General English: one model on every real corpus here (AN4, FSDD, LibriSpeech
# dev-clean speakers, speechocean762) plus the commands recipe's synthetic command
# words and non-speech clips, fine-tuned from the bundled model; whole speakers of
# each corpus held out and reported per corpus (recipes/english/README.md).
#   bash recipes/english/run.sh                         # all stages
#   bash recipes/english/run.sh --stage 4 trainer.epochs=5   # one stage on, + overrides
#   EXP=/work/runs/english bash recipes/english/run.sh --stage 4
#   # a phone model (ARPAbet, decoded with the CMU lexicon and --lm english),
#   # fine-tuned from the character model:
#   INIT=exp/english/best.pt EXP=exp/english_phone bash recipes/english/run.sh \
#       --stage 4 --stop-stage 5 data.units=phone data.lexicon=data/english/extra.dict
# Extra arguments are Hydra overrides for the training stage.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=1
stop_stage=7
data=data/english
exp=${EXP:-exp/english}
init=${INIT:-asr/assets/default_bilstm.pt}  # the bundled AN4 + commands model
librispeech=${LIBRISPEECH:-../shared/data/librispeech/LibriSpeech}
speechocean=${SPEECHOCEAN:-../shared/data/speechocean762}
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
PY=${PY:-.venv/bin/python}
ASR=${ASR:-.venv/bin/asr}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
    echo "stage 1: AN4, FSDD, synthetic command words and non-speech (commands recipe)"
    bash recipes/commands/run.sh --stage 1 --stop-stage 3
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
    echo "stage 2: LibriSpeech and speechocean762 manifests"
    $PY recipes/librispeech/prepare.py --root "$librispeech" --out data/librispeech
    $ASR import-kaldi "$speechocean/train" --output data/speechocean762/train.jsonl
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
    echo "stage 3: synthetic general-English sentences, speaker splits and the joined sets"
    [ -f $data/sentences.txt ] || $PY recipes/english/sentences.py --count 3000 --out $data/sentences.txt
    [ -f $data/synth_sentences/manifest.jsonl ] || $PY scripts/synthesize.py \
        --texts $data/sentences.txt --out $data/synth_sentences --copies 1 \
        --engines espeak:3,flite:2,festival:1,piper:2 --seed 3 --jobs 2
    $PY recipes/english/prepare.py --commands data/commands \
        --librispeech data/librispeech/dev-clean.jsonl \
        --speechocean data/speechocean762/train.jsonl \
        --synth-sentences $data/synth_sentences/manifest.jsonl --fractions 0.25 0.5 \
        --out $data
    # a phone model's pronunciations of the words the CMU dictionary lacks
    $PY recipes/english/lexicon.py $data/train_synth.jsonl $data/dev.jsonl \
        --out $data/extra.dict
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
    echo "stage 4: fine-tune $init (resumes if $exp/last.state.pt exists)"
    resume=false
    [ -f "$exp/last.state.pt" ] && resume=true
    start=$SECONDS
    $PY -m asr.train --config-name english \
        data.train_manifest=$data/train.jsonl data.dev_manifest=$data/dev.jsonl \
        trainer.init_from="$init" trainer.out_dir="$exp" trainer.resume=$resume "$@"
    echo "training took $((SECONDS - start)) s" | tee -a "$exp/train.time"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
    echo "stage 5: WER per held-out set, greedy (a phone model: its lexicon and LM)"
    for set in ls_dev so_dev an4_dev fsdd_dev synth_dev; do
        echo "== $set"
        $ASR evaluate $data/$set.jsonl --model "$exp/best.pt" \
            --report "$exp/$set.greedy.tsv" | tail -n 2
    done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
    echo "stage 6: what the demo grammar fires (examples/commands.yaml)"
    $PY scripts/eval_commands.py $data/an4_dev.jsonl $data/fsdd_dev.jsonl \
        $data/synth_dev.jsonl --model "$exp/best.pt"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
    echo "stage 7: commands with a user's own words (examples/own_words.yaml) on"
    echo "         speechocean762's held-out speakers: phrases cut at aligned times"
    $PY recipes/english/own_words.py $data/so_dev.jsonl --grammar examples/own_words.yaml \
        --model "$exp/best.pt" --out $data/own_words
    $PY scripts/eval_commands.py $data/own_words/phrases.jsonl $data/own_words/others.jsonl \
        $data/so_dev.jsonl --grammar examples/own_words.yaml --model "$exp/best.pt" --pad-ms 200
fi

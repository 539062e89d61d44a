#!/usr/bin/env bash
# The bundled command-ready model: AN4 + FSDD + synthetic command words, fine-tuned
# from the AN4 model, then evaluated on real held-out speakers and held-out voices.
#   bash recipes/commands/run.sh                       # all stages
#   INIT=exp/an4/avg.pt bash recipes/commands/run.sh --stage 4
#   NS_EPOCHS=3 bash recipes/commands/run.sh --stage 5   # stage 5's epochs
# Extra arguments are Hydra overrides for the training stage.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=1
stop_stage=7
data=data/commands
synth=data/synth
exp=${EXP:-exp/commands}
init=${INIT:-exp/an4/avg.pt}  # the AN4 recipe's model (average of its last epochs)
ns_epochs=${NS_EPOCHS:-10}  # stage 5's epochs (the bundled model: 10)
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
    echo "stage 1: AN4 and FSDD manifests (FSDD speaker nicolas held out)"
    $PY recipes/an4/prepare.py --an4 ../shared/data/an4 --out data/an4
    $PY recipes/digits/prepare.py --fsdd ../shared/data/fsdd --out data/digits
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
    echo "stage 2: synthetic command words; the held-out voices make their own test set"
    mkdir -p $synth
    $PY -c "import sys; sys.path.insert(0, 'recipes/commands'); import prepare; \
print('\n'.join(prepare.command_words()))" > $synth/command_words.txt
    heldout=$($PY -c "import sys; sys.path.insert(0, 'scripts'); import synthesize as s; \
print(','.join([f'espeak:en-gb-scotland+{v}' for v in s.ESPEAK_VARIANTS] \
+ ['flite:rms', 'festival:ked_diphone']))")
    $PY scripts/synthesize.py --texts $synth/command_words.txt --out $synth/cmd_train \
        --copies 40 --engines espeak:3,flite:2,festival:1,piper:2 \
        --exclude-voices "$heldout" --seed 1 --jobs 2
    $PY scripts/synthesize.py --texts $synth/command_words.txt --out $synth/cmd_dev \
        --copies 6 --engines espeak:2,flite,festival --only-voices "$heldout" \
        --seed 2 --jobs 2
    $PY scripts/synthesize.py --nonspeech 400 --out $synth/nonspeech --seed 5
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
    echo "stage 3: joined training manifest and the evaluation sets"
    $PY recipes/commands/prepare.py --an4 data/an4 --digits data/digits \
        --synth $synth/cmd_train --synth-dev $synth/cmd_dev \
        --nonspeech $synth/nonspeech --dev-words --out $data
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
    echo "stage 4: fine-tune $init (resumes if $exp/last.state.pt exists)"
    resume=false
    [ -f "$exp/last.state.pt" ] && resume=true
    start=$SECONDS
    $PY -m asr.train --config-name commands \
        data.train_manifest=$data/train.jsonl data.dev_manifest=$data/an4_dev.jsonl \
        trainer.init_from="$init" trainer.out_dir="$exp" trainer.resume=$resume "$@"
    echo "training took $((SECONDS - start)) s" | tee -a "$exp/train.time"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
    echo "stage 5: $ns_epochs more epochs with 400 non-speech clips (empty transcripts) added,"
    echo "         so that noise, tones and hum fire no command"
    $PY -m asr.train --config-name commands \
        data.train_manifest=$data/train_nonspeech.jsonl \
        data.dev_manifest=$data/an4_dev.jsonl "$@" trainer.init_from="$exp/best.pt" \
        trainer.out_dir="${exp}_ns" trainer.epochs=$ns_epochs optim.lr=3e-4 \
        optim.warmup_steps=50  # after "$@": stage 4's trainer.epochs=N is not this one
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
    echo "stage 6: WER on each evaluation set (greedy)"
    for set in an4_dev an4_commands fsdd_dev synth_dev; do
        echo "== $set"
        $ASR evaluate $data/$set.jsonl --model "${exp}_ns/best.pt" \
            --report "${exp}_ns/$set.report.tsv" | tail -n 2
    done
    echo "== an4_dev as if recorded at 16, 11.025 and 8 kHz"
    $PY scripts/bench_bandwidth.py --manifest $data/an4_dev.jsonl --model "${exp}_ns/best.pt"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
    echo "stage 7: what the demo grammar fires (examples/commands.yaml)"
    $PY scripts/eval_commands.py $data/an4_dev.jsonl $data/an4_dev_words.jsonl \
        $data/fsdd_dev.jsonl $data/synth_dev.jsonl --model "${exp}_ns/best.pt"
fi

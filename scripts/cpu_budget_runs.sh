#!/usr/bin/env bash
# The CPU-budget training runs behind the book's results records, as they were made (one CPU thread each, the
# TIMIT sample's training split; the recorded runs predate the valid split and trained on train + valid, so a rerun
# now trains on 20 fewer utterances). Usage: bash scripts/cpu_budget_runs.sh NAME [NAME ...]; NAME is one of the runs
# below. Each run trains into runs/NAME (resumable: run the same command again after a kill), is exported without
# optimizer state into results/runs/NAME, and evaluated on the whole test split into results/<model>-timit-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export OMP_NUM_THREADS=1

train() {  # NAME, then train options
  local name=$1; shift
  $PY -m wavelab train --run-dir "runs/$name" --seed 0 --threads 1 --checkpoint-minutes 5 --no-progress "$@"
  $PY -m wavelab export --run-dir "runs/$name" --dest "results/runs/$name"
}

evaluate() {  # NAME RECORD [evaluate options]
  local name=$1 record=$2; shift 2
  $PY -m wavelab evaluate --run-dir "results/runs/$name" --split test --threads 1 --no-progress \
      --budget cpu-budget --record "results/$record.json" "$@"
}

for name in "$@"; do
  case $name in
    wavenet-paper)   # the paper's configuration: Dc=96, 5 blocks x 10 layers, 16,000-sample segments, batch 2
      train "$name" --model wavenet --minutes 130 --eval-every 100
      evaluate "$name" wavenet-timit-paper ;;
    wavenet-dc32-b2) # a smaller WaveNet that sees more data in a CPU budget
      train "$name" --model wavenet --set Dc=32 --set blocks=2 --segment-length 8000 --batch-size 4 \
            --minutes 50 --eval-every 250
      evaluate "$name" wavenet-timit-dc32-b2 ;;
    lstm-s64)
      train "$name" --model lstm --set s=64 --segment-length 32000 --batch-size 4 --minutes 8 --eval-every 500
      evaluate "$name" lstm-timit-s64 ;;
    lstm-s1)
      train "$name" --model lstm --set s=1 --segment-length 4000 --batch-size 4 --minutes 14 --eval-every 500
      evaluate "$name" lstm-timit-s1 ;;
    vrnn-s64|srnn-s64)
      model=${name%-s64}
      train "$name" --model "$model" --set s=64 --segment-length 32000 --batch-size 4 --minutes 14 --eval-every 500
      evaluate "$name" "$model-timit-s64"
      evaluate "$name" "$model-timit-s64-iw" --iw-samples 10 ;;
    cwvae-s64-l1|cwvae-s64-l2|cwvae-s64-l3)
      # the CW-VAE at s1 = 64, c = 8 with L latent layers; CPU budget: Dh = 96 channels and Dz = 64 (the paper's
      # code uses 192 and 128) and a 250-step KL warm-up instead of 150,000 steps
      L=${name#cwvae-s64-l}
      train "$name" --model cwvae --set s1=64 --set L="$L" --set Dh=96 --set Dz=64 --set kl_warmup_steps=250 \
            --segment-length 32000 --batch-size 2 --minutes 12 --eval-every 100
      evaluate "$name" "cwvae-timit-s64-l$L" ;;
    waveflow-h16)    # WaveFlow h = 16, 8 flows x 8 layers; CPU budget: 32 residual channels (paper's small model: 64);
                     # the recorded run's "cycle" height dilations 1,2,4 (the default is now the official table)
      train "$name" --model waveflow --set h=16 --set dilation_h_schedule=cycle --set residual_channels=32 \
            --segment-length 16000 --batch-size 2 \
            --minutes 12 --eval-every 200
      evaluate "$name" waveflow-timit-h16 ;;
    waveglow)        # the WaveGlow configuration (bipartite coupling, h = 8 squeezed channels); CPU budget: 8 flows
      #               of 64 channels (WaveGlow: 12 flows of 256)
      train "$name" --model waveglow --set residual_channels=64 --set n_flows=8 --segment-length 16000 --batch-size 2 \
            --minutes 8 --eval-every 200
      evaluate "$name" waveglow-timit ;;
    sashimi-8bit|sashimi-16bit)
      # SaShiMi with the paper's 8-bit categorical head or a 16-bit DMoL head; CPU budget: d_model = 32, 4 layers per
      # stage, 8,000-sample segments (paper: d_model = 64, 8 layers, 16,000 samples)
      if [ "$name" = sashimi-8bit ]; then head=categorical; else head=dmol; fi
      train "$name" --model sashimi --set head=$head --set d_model=32 --set n_layers=4 --set l_max=8000 \
            --segment-length 8000 --batch-size 2 --minutes 10 --eval-every 200
      evaluate "$name" "sashimi-timit-${name#sashimi-}" ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
done

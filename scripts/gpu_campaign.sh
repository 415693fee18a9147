#!/usr/bin/env bash
# The GPU campaign: the papers' configurations (recipes/gpu/NAME.toml) trained one after another on one CUDA GPU,
# each exported and evaluated on the TIMIT sample's test split (all 40 utterances).  Code: wavelab/campaign/gpu.py.
#
# Usage: bash scripts/gpu_campaign.sh OUT_DIR [--minutes N] [--quick] [--device cuda|cuda:N|cpu] [--only NAME ...]
#                                             [--work-dir DIR] [--pack DIR] [--progress]
#   --minutes N   every run's training budget in minutes (default: the recipes' max_minutes, 0.7)
#   --quick       dry run: tiny models, 4 steps, 2 test utterances (wavelab/campaign/recipes.py, "Quick mode")
#   --device      cuda (default) or cpu; cpu only with --quick: `--device cpu --quick` is the CPU dry run
#   --only NAME   run only recipes/gpu/NAME.toml (repeatable), in the campaign's order
#   --work-dir    parent of the training run directories (default OUT_DIR/train)
#   --pack DIR    afterwards, tar OUT_DIR's runs/, results/ and summary.txt into DIR as parts of at most 15 MiB
#                 (gpu-campaign.tar.0, .1, ...; unpack: cat DIR/gpu-campaign.tar.* | tar -x -C DEST)
# WAVELAB_DATA=DIR names the data root when ../shared/data is not beside the checkout (e.g. on a GPU machine);
# PYTHON=... the interpreter (default .venv/bin/python, else python3).
#
# The runs, in order (paper sizes: the registry's defaults, see each recipe's comment):
#   wavenet-paper-gpu (Dc = 96, 5 x 10), lstm-s64-gpu, vrnn-s64-gpu, srnn-s64-gpu (s = 64, Dz = Dd = 256),
#   cwvae-s64-l1-gpu, cwvae-s64-l2-gpu (s1 = 64, c = 8, Dh = 192, Dz = 128), waveflow-h16-gpu (h = 16, 8 x 8 layers,
#   64 residual channels), sashimi-16bit-gpu (d_model 64, 8 layers per stage, DMoL head);
#   on the TIMIT train split, bf16 autocast with the likelihood heads in float32 (amp = "bf16": on CUDA "auto" would
#   be fp16 with a gradient scaler), the largest batch that fits (wavelab.campaign.gpu.largest_batch: a real training step at
#   gpu.max_batch = 64 first, else doubling from the recipe's batch_size until CUDA runs out of memory or the step
#   peaks over 90% of the GPU's memory, then bisecting back; skipped on CPU, where the recipe's batch is used).
#
# The 9-minute budget of one GPU (wavelab.campaign.gpu: STARTUP_S, PROBE_S, EVAL_S, checked by tests/test_gpu_campaign.py):
#     15 s  start-up once (python, torch, the CUDA context, reading the TIMIT sample)
#   + 8 runs x (42 s training (max_minutes = 0.7) + 8 s batch probe + 12 s checkpoint, export and evaluation)
#   = 15 + 8 x 62 = 511 s = 8.5 min, leaving about 30 s for the step that crosses each budget; in general
#   15 + 8 x (60 N + 20) s <= 540 s for --minutes N <= 0.76.  The campaign prints its estimate before it starts and
#   each run's wall seconds at the end.
#
# What it writes (never under the repository's results/: an OUT_DIR there, or the repository itself, is refused):
#   OUT_DIR/train/NAME/       the training runs with optimizer state: a killed campaign resumes from them (the same
#                             command again; a finished run whose records exist is skipped); not for committing
#   OUT_DIR/runs/NAME/        the exports: config.json, metrics.jsonl and checkpoint.pt with the weights in float16
#                             (evaluated as stored; a checkpoint over 16 MB fails the run before any record)
#   OUT_DIR/results/*.json    one record per run, <model>-timit-<name>-gpu.json
#   OUT_DIR/summary.txt       the summary table printed at the end (model, bpf, steps, minutes, batch, GPU, ...)
# Labels: records say budget "gpu" only when the run trained on CUDA, and their hardware.gpu names the GPU; the CPU
# dry run's records say budget "cpu-budget" and carry the note "gpu_campaign dry run on CPU, not a GPU run" (and,
# like every quick run, "quick dry run" and "first 2 utterances of the split only").
#
# Committing the records, after checking them:
#   1. every OUT_DIR/results/*.json has budget "gpu", hardware.gpu set, utterances 40, and no "dry run" in notes;
#      OUT_DIR/summary.txt shows no FAILED row;
#   2. cp OUT_DIR/results/*.json results/ && cp -r OUT_DIR/runs/* results/runs/
#      (the records' run_dir names OUT_DIR's path; wavelab.report.records.record_run_dir finds results/runs/NAME by name);
#   3. tests/test_campaign.py matches every recorded run to a recipe in recipes/*.toml: extend its recipe list to
#      recipes/gpu/*.toml in the same commit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ -n "${PYTHON:-}" ]; then py=$PYTHON; elif [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi

if [ $# -lt 1 ] || [[ $1 == -* ]]; then
  [[ ${1:-} == -h || ${1:-} == --help ]] && exec "$py" -m wavelab.campaign.gpu --help
  echo "usage: bash scripts/gpu_campaign.sh OUT_DIR [--minutes N] [--quick] [--device cuda|cpu] [--only NAME]" \
       "[--work-dir DIR] [--pack DIR]" >&2
  exit 2
fi
out_dir=$1
args=() pack=""
while [ $# -gt 0 ]; do
  case $1 in
    --pack) [ $# -ge 2 ] || { echo "error: --pack needs a folder" >&2; exit 2; }; pack=$2; shift 2 ;;
    --pack=*) pack=${1#--pack=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

rc=0
"$py" -m wavelab.campaign.gpu "${args[@]}" || rc=$?
if [ -n "$pack" ] && [ "$rc" -le 1 ] && [ -d "$out_dir/results" ]; then
  mkdir -p "$pack"
  rm -f "$pack"/gpu-campaign.tar.*
  members=(runs results); [ -f "$out_dir/summary.txt" ] && members+=(summary.txt)
  tar -C "$out_dir" -cf - "${members[@]}" | split -b 15m -d -a 1 - "$pack/gpu-campaign.tar."
  echo "packed ${members[*]} of $out_dir into:"; ls -l "$pack"/gpu-campaign.tar.*
  echo "unpack: cat $pack/gpu-campaign.tar.* | tar -x -C DEST"
fi
exit "$rc"

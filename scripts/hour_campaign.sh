#!/usr/bin/env bash
# Issue 21's hour campaign (recipes/hour/, see recipes/README.md): two runs at a time, one CPU thread each, into
# runs/hour/ and results/hour/.  Resumable: run it again after a kill and every run continues from its checkpoint
# (a finished run is exported and evaluated, not trained again).  Logs (appended across sittings): runs/hour/lane-{0,1}.log.
# Usage: bash scripts/hour_campaign.sh [NAME ...]   (default: every recipes/hour/*.toml, in file order)
set -euo pipefail; cd "$(dirname "$0")/.."; export OMP_NUM_THREADS=1
if [ $# -gt 0 ]; then recipes=(); for name in "$@"; do recipes+=("recipes/hour/$name.toml"); done
else recipes=(recipes/hour/*.toml); fi
mkdir -p runs/hour
lane() {  # every second recipe from index $1
  local i
  for ((i = $1; i < ${#recipes[@]}; i += 2)); do
    .venv/bin/python -m wavelab campaign --no-progress --runs-dir runs/hour --results-dir results/hour "${recipes[$i]}"
  done
}
lane 0 >> runs/hour/lane-0.log 2>&1 & first=$!
lane 1 >> runs/hour/lane-1.log 2>&1 & second=$!
status=0; wait "$first" || status=$?; wait "$second" || status=$?
exit "$status"

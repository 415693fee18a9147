#!/usr/bin/env bash
# The book's CPU-budget runs, one recipe each in recipes/NAME.toml (settings and notes there; see recipes/README.md).
# Usage: bash scripts/cpu_budget_runs.sh NAME [NAME ...]  ==  python -m wavelab campaign recipes/NAME.toml ...
set -euo pipefail; cd "$(dirname "$0")/.."; export OMP_NUM_THREADS=1
recipes=(); for name in "$@"; do recipes+=("recipes/$name.toml"); done
exec .venv/bin/python -m wavelab campaign --no-progress "${recipes[@]}"

#!/usr/bin/env bash
# The main job: build the book with every chapter executed on the real TIMIT sample, paper configurations by default
# (set WAVELAB_QUICK=1 for the quick mode CI uses).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/jupyter-book build . --keep-going --builder html "$@"
echo "open _build/html/index.html"

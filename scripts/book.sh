#!/usr/bin/env bash
# The main job: build the book with every chapter executed on the real TIMIT sample, paper configurations by default
# (set WAVELAB_QUICK=1 for the quick mode CI uses).
#
# Executed chapters are kept in Jupyter Book's execution cache (_build/.jupyter_cache), so a second build with nothing
# changed only re-renders. The cache knows a chapter's code cells only, so this script also clears it whenever what the
# chapters read changes: the package (wavelab/), the results records and recorded runs (results/), the benchmark
# outputs (benchmarks/results/), the requirements, or the mode (WAVELAB_QUICK, WAVELAB_DATA).
# WAVELAB_FRESH=1 forces a build from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
stamp=_build/.wavelab_inputs
inputs=$( {
  printf 'quick=%s data=%s\n' "${WAVELAB_QUICK:-}" "${WAVELAB_DATA:-}"
  find wavelab results benchmarks/results requirements.txt -type f -not -path '*/__pycache__/*' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -d' ' -f1)
if [ "${WAVELAB_FRESH:-0}" = 1 ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs" ]; then
  rm -rf _build/.jupyter_cache
  echo "executing every chapter (package, records or mode changed since the last build, or no build yet)"
else
  echo "inputs unchanged since the last build: chapters whose code is unchanged come from the execution cache"
fi
rm -f "$stamp"  # written again only after a successful build
.venv/bin/jupyter-book build . --keep-going --builder html "$@"
mkdir -p _build && echo "$inputs" > "$stamp"
echo "open _build/html/index.html"

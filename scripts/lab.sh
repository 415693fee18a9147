#!/usr/bin/env bash
# Open the book's chapters live in JupyterLab: bash scripts/lab.sh [extra jupyter-lab options]
#
# Serves on localhost only (127.0.0.1) and opens the first page; run a chapter (Run All) to move the listening rooms'
# sliders and press Generate. The data is found as everywhere in wavelab (WAVELAB_DATA, then ../shared/data, then a
# checked download into the user cache); the line below says which. Saving, autosave included, strips the chapters'
# outputs (scripts/jupyter_lab_config.py), so reading the book leaves `git status` clean. WAVELAB_QUICK=1 gives the
# quick mode of CI. As root (a container) JupyterLab needs --allow-root, which this script adds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -c "from wavelab.data import data_root; print('data:', data_root('timit', download=False))" \
  || echo "data: not found locally; the chapters will download the TIMIT sample into the user cache"
# OpenMP threads sleep while they wait: spinning ones starve the kernel's other work on a busy machine
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
args=(--config=scripts/jupyter_lab_config.py --ServerApp.root_dir="$PWD")
if [ "$(id -u)" = 0 ]; then
  args+=(--allow-root)
fi
exec .venv/bin/jupyter-lab "${args[@]}" "$@" book/intro.ipynb

#!/usr/bin/env bash
# The test command: unit tests, every chapter validated with nbval in quick mode, a quick-mode book build, and the
# built book opened page by page in headless Chromium (tests/test_rendered_book.py). Under CI=true a test that would
# skip (a missing tool, data or browser) fails instead, naming what to install (tests/ci_plugin.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system_deps.sh  # Debian's flac and chromium, when missing (needs root and apt-get)
export WAVELAB_QUICK=1 PYTHONHASHSEED=0
# OpenMP threads sleep instead of spinning while they wait: on a busy machine a spinning thread starves its partner
# (benchmarks/results/omp_wait_policy.json: a 2-thread recurrent loop 1.9x slower with spinning waits beside two busy
# processes; 42 s against 1 s in a test run that shared the machine with a second book build)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
.venv/bin/python -m pytest tests book/*.ipynb --nbval-lax --durations=15 -m "not rendered_book" "$@"
rm -rf _build/.jupyter_cache _build/.wavelab_inputs  # every chapter executed from scratch, and no quick-mode cache reused
.venv/bin/jupyter-book build . --warningiserror --keep-going --builder html
echo "book built in quick mode: _build/html/index.html"
# the rendered book in headless Chromium (tests/test_rendered_book.py): raw tables or maths, console/network errors,
# too-wide results tables, audio players; screenshots of every page in _build/screenshots/
WAVELAB_BOOK_HTML=_build/html .venv/bin/python -m pytest tests -m rendered_book

"""Run-mode switches shared by the chapters and the command line.

Quick mode (environment variable ``WAVELAB_QUICK=1``, or ``CI=true``) makes every chapter finish in a minute or two:
tiny models, few training steps, short samples, a few utterances.  Without it, chapters use the paper's configurations.
Numbers a chapter reports as results always come from the records in ``results/``, in either mode.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def quick_mode() -> bool:
    """True when ``WAVELAB_QUICK`` is set to a true value, or when running under CI (``CI=true``) and
    ``WAVELAB_QUICK`` is not explicitly false."""
    if "WAVELAB_QUICK" in os.environ:
        return _truthy(os.environ["WAVELAB_QUICK"])
    return _truthy(os.environ.get("CI"))


def results_dir() -> Path:
    """The folder of results records, ``<project>/results`` (override with ``WAVELAB_RESULTS``)."""
    return Path(os.environ.get("WAVELAB_RESULTS", PROJECT_ROOT / "results"))

"""The latent explorer's static fallback: the current figure (an embedded PNG) and summary line for the HTML book."""

import base64
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from wavelab.analysis import LatentExplorer


@pytest.fixture
def study():
    rng = np.random.default_rng(0)
    labels = ["F"] * 6 + ["M"] * 6
    groups = [f"s{i // 3}" for i in range(12)]
    return {"tasks": {
        "gender": {"labels": labels, "groups": groups, "schemes": ["loo", "loso"],
                   "chance": {scheme: {"majority": 0.5, "stratified": 0.5} for scheme in ("loo", "loso")},
                   "features": {"z1": {"embedding": rng.standard_normal((12, 1)),
                                       "accuracy": {"loo": {1: 0.75, 3: 0.8333}, "loso": {1: 0.5, 3: 0.5833}}}}},
        "phone": {"labels": ["a", "b", "c"] * 4, "groups": ["s0"] * 12, "schemes": ["loo"], "chance": {},
                  "features": {"z1": {"embedding": rng.standard_normal((12, 2)), "accuracy": {"loo": {1: 0.9167}}}}},
    }}


def _png_of(page: str) -> bytes:
    match = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match, page[:300]
    return base64.b64decode(match.group(1))


def test_fallback_is_the_current_figure_and_summary(study):
    ex = LatentExplorer(study)
    bundle = ex._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == ex.widget.model_id
    page = bundle["text/html"]
    png = _png_of(page)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == ex.png
    assert ex.summary.value in page and "75.0%" in page  # gender, z1, loo, k=1
    assert "running kernel" in page and "JupyterLab" in page
    ex.scheme.value = "loso"
    ex.k.value = 3
    page2 = ex._repr_mimebundle_()["text/html"]
    assert "58.3%" in page2 and "75.0%" not in page2 and _png_of(page2) != png  # it follows the controls
    assert "loso" in ex._repr_mimebundle_()["text/plain"]

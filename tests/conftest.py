"""Shared pytest fixtures: the real data roots (tests skip when absent, and fail under ``CI=true``, see
:mod:`tests.ci_plugin`) and an isolated data environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.ci_plugin import pytest_runtest_makereport  # noqa: F401  (under CI=true a skip is a failure)
from wavelab.data.roots import shared_data_dir

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (read only); skips the test when it is absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data not available at {root}")
    return root


def _sample_dir(shared_data: Path, name: str) -> Path:
    root = shared_data / name
    if not root.is_dir():
        pytest.skip(f"{name} not available at {root}")
    return root


@pytest.fixture(scope="session")
def timit_root(shared_data: Path) -> Path:
    """The NLTK TIMIT sample folder; skips when absent."""
    return _sample_dir(shared_data, "timit_sample")


@pytest.fixture(scope="session")
def librispeech_root(shared_data: Path) -> Path:
    """The LibriSpeech sample folder; skips when absent."""
    return _sample_dir(shared_data, "librispeech_sample")


@pytest.fixture
def isolated_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear WAVELAB_DATA / download URL overrides and point WAVELAB_CACHE at ``tmp_path / "cache"`` (returned)."""
    for var in ("WAVELAB_DATA", "WAVELAB_DATA_URL_TIMIT", "WAVELAB_DATA_URL_LIBRISPEECH", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("WAVELAB_CACHE", str(cache))
    return cache

"""tests/ci_plugin.py: under CI=true a skipped test fails with its reason; elsewhere it stays a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SAMPLE = '''
import pytest

def test_runs():
    assert True

@pytest.mark.skipif(True, reason="the frobnicate tool is not installed")
def test_marked():
    pass

def test_skips_inside():
    pytest.skip("corpus absent at /nowhere")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False
'''


@pytest.mark.parametrize("ci", ["true", None])
def test_skips_fail_under_ci_and_stay_skips_elsewhere(tmp_path, ci):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.ci_plugin", "-q", "-rA", "-p",
                        "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    if ci:
        assert r.returncode == 1, r.stdout
        assert "1 passed" in r.stdout and "1 xfailed" in r.stdout and "skipped" not in r.stdout.splitlines()[-1]
        assert "the frobnicate tool is not installed" in r.stdout and "corpus absent at /nowhere" in r.stdout
        assert r.stdout.count("under CI=true every test must run") >= 2
    else:
        assert r.returncode == 0, r.stdout
        assert "1 passed, 2 skipped, 1 xfailed" in r.stdout

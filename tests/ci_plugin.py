"""Under ``CI=true`` every test runs: a test that would skip (a missing tool, corpus or browser) fails instead, with
the skip's reason, which names what to install.  Registered by ``tests/conftest.py``; on a developer's machine skips
stay skips."""

from __future__ import annotations

import os

import pytest


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Turn a skip into a failure when ``CI`` is ``"true"`` (expected failures, ``xfail``, are left alone)."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (f"this test would skip ({_skip_reason(report)}), and under CI=true every test must run: "
                           f"install what it names (scripts/test.sh installs Debian's flac and chromium as root)")

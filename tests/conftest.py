"""Every test run keeps its `mailprobe check` history in a temporary file, never in reports/."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_history(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MAILPROBE_HISTORY", str(tmp_path_factory.mktemp("history") / "history.sqlite"))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _fresh_shared_answers():
    """`check --domains` doors share a process-wide answer cache keyed by resolver address
    (probes.net.answer_cache): a test's loopback resolver may get a port an earlier test's
    resolver had, and a lab test may change a zone between two runs: start each test empty."""
    from probes.net.answer_cache import shared_answers

    shared_answers().clear()
    yield

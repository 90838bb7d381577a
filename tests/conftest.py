"""Every test run keeps its `mailprobe check` history in a temporary file, never in reports/."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_history(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MAILPROBE_HISTORY", str(tmp_path_factory.mktemp("history") / "history.sqlite"))
    yield
    mp.undo()

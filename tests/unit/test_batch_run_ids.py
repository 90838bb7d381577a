"""A `check --domains` batch gives every domain's run its own id, even when two domains
started in the same second drew the same random part (24 bits: a clash every few thousand
domains at a thousand a second, which made the history refuse the whole batch)."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, datetime
from pathlib import Path

from probes.cli_resume import Batch
from probes.model import Target
from probes.report.run import RunReport


def _report(run_id: str) -> RunReport:
    started = datetime(2026, 12, 5, 16, 30, 1, tzinfo=UTC)
    return RunReport(
        run_id=run_id, target=Target("d.test"), started=started, duration_s=0.1, results=()
    )


def test_a_clashing_run_id_gets_a_new_random_part_in_the_same_second():
    batch = Batch("batch", Path("."), io.StringIO())
    first = batch.unique(_report("20261205T163001Z-abcdef"))
    second = batch.unique(_report("20261205T163001Z-abcdef"))
    assert first.run_id == "20261205T163001Z-abcdef"
    assert second.run_id != first.run_id
    assert re.fullmatch(r"20261205T163001Z-[0-9a-f]{6}", second.run_id)
    assert dataclasses.replace(second, run_id=first.run_id) == first  # nothing else changes


def test_distinct_run_ids_are_kept():
    batch = Batch("batch", Path("."), io.StringIO())
    ids = [f"20261205T1630{s:02d}Z-00000{s % 10}" for s in range(20)]
    assert [batch.unique(_report(i)).run_id for i in ids] == ids

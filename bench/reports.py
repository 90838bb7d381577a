"""Benchmark: rendering and storing 10,000 findings from 1,000 targets (issue 6).

    .venv/bin/python bench/reports.py

History part: one `check --domains`-sized night (1,000 target reports, 10 findings each) is
stored with `HistoryDB.add_many` in one transaction (target <= 1 s), then a second night in
which a tenth of the targets gained and lost a finding and a seventh changed severities, and
`diff` of the two nights is timed (target <= 0.5 s). A benchmark: it prints figures and
compares them with the targets, never asserts. Rendering: the same 10,000 findings, one
report per target, in every installed format (target <= 2 s for all formats).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.drift import diff
from probes.history import HistoryDB
from probes.model import Finding, Outcome, ProbeResult, Severity, Target
from probes.report.run import RunReport

TARGETS = 1000
PER_TARGET = 10
SEVERITIES = (Severity.INFO, Severity.WARN, Severity.FAIL)


def batch(night: int) -> list[RunReport]:
    """1,000 target reports of 10 findings; night 1 changes a tenth of them."""
    started = datetime(2026, 11, 20, 2, tzinfo=UTC) + timedelta(days=night)
    reports = []
    for t in range(TARGETS):
        findings = tuple(
            Finding(
                probe_id=f"dns.p{i % 5}",
                code=f"CODE_{i}" if not (night and t % 10 == 0 and i == 0) else "CODE_NEW",
                severity=SEVERITIES[(i + night * (t % 7 == 0)) % 3],
                message=f"finding {i} of target {t}",
                evidence={"record": f"v=spf1 include:_spf{i}.example -all", "count": str(i)},
                reproduce=f"dig +short txt d{t}.example",
                subject=f"sel{i}",
            )
            for i in range(PER_TARGET)
        )
        results = tuple(
            ProbeResult(
                f"dns.p{p}",
                Outcome.COMPLETED,
                tuple(f for f in findings if f.probe_id == f"dns.p{p}"),
                duration_s=0.01,
            )
            for p in range(5)
        )
        reports.append(
            RunReport(
                run_id=f"n{night}-t{t}",
                target=Target(domain=f"d{t}.example"),
                started=started,
                duration_s=1.0,
                results=results,
            )
        )
    return reports


def bench_history() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.sqlite"
        first, second = batch(0), batch(1)
        with HistoryDB(path) as db:
            t0 = time.perf_counter()
            db.add_many(first, batch_id="night0")
            insert = time.perf_counter() - t0
            db.add_many(second, batch_id="night1")
            t0 = time.perf_counter()
            d = diff(db, "night0", "night1")
            diff_s = time.perf_counter() - t0
        verdict = "yes" if insert <= 1.0 and diff_s <= 0.5 else "NO"
        print(
            f"history insert: {TARGETS * PER_TARGET} findings from {TARGETS} targets in one "
            f"transaction: {insert:.3f} s (target <= 1 s)"
        )
        print(
            f"history diff of two such runs: {diff_s:.3f} s (target <= 0.5 s); "
            f"{len(d.new)} new, {len(d.resolved)} resolved, {len(d.changed)} changed"
        )
        print(f"history within targets: {verdict}")
        return {"insert_s": insert, "diff_s": diff_s}


def bench_rendering() -> dict[str, float]:
    """Render the 10,000 findings of a night in every installed format (one report each for
    the 1,000 targets, as `check --domains` would write them), timing each format."""
    import io

    from probes.registry import load_renderers

    reports = batch(0)
    renderers = load_renderers()
    times: dict[str, float] = {}
    for name in sorted(renderers):
        t0 = time.perf_counter()
        for report in reports:
            renderers[name](report, io.StringIO())
        times[name] = time.perf_counter() - t0
    total = sum(times.values())
    print(f"== rendering {TARGETS * PER_TARGET} findings from {TARGETS} targets, every format")
    for name, seconds in times.items():
        print(f"  {name:<11} {seconds:6.3f} s")
    verdict = "yes" if total <= 2.0 else "no"
    print(f"  all formats {total:6.3f} s (target <= 2 s): within target: {verdict}")
    return times


def main() -> None:
    bench_rendering()
    bench_history()


if __name__ == "__main__":
    main()

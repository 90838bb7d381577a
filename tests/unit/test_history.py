"""The run history store: opening, refusing foreign files, one-transaction runs, diff."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probes.drift import diff, exit_status_new, new_findings
from probes.errors import UsageError
from probes.history import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    HistoryDB,
    HistoryError,
)
from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def finding(code, severity="fail", subject=None, message=None, probe="dns.spf"):
    return Finding(
        probe_id=probe,
        code=code,
        severity=Severity(severity),
        message=message or f"{code} message",
        evidence={"k": "v"},
        reproduce="dig txt example.test",
        subject=subject,
    )


def report(run_id, findings=(), domain="example.test", day=0, error=False):
    from probes.report.run import RunReport

    results = [ProbeResult("dns.spf", Outcome.COMPLETED, tuple(findings), duration_s=0.5)]
    if error:
        results.append(ProbeResult("smtp.mx", Outcome.ERROR, (), ErrorReason.TIMEOUT, "t/o"))
    return RunReport(
        run_id=run_id,
        target=Target(domain=domain),
        started=T0 + timedelta(days=day),
        duration_s=1.25,
        results=tuple(results),
    )


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_a_new_history_is_created_with_the_mailprobe_marker_and_schema(tmp_path):
    path = tmp_path / "sub" / "history.sqlite"
    with HistoryDB(path):
        pass
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert dict(con.execute("SELECT key, value FROM meta")) == {
        "application": "mailprobe",
        "schema": str(SCHEMA_VERSION),
    }
    con.close()


def test_a_stored_run_reads_back_with_counts_and_findings(tmp_path):
    path = tmp_path / "h.sqlite"
    with HistoryDB(path) as db:
        db.add(report("r1", [finding("SPF_MISSING"), finding("SPF_NO_ALL", "warn")], error=True))
    with HistoryDB(path, create=False) as db:
        (run,) = db.runs()
        assert run.run_id == "r1"
        assert run.domain == "example.test"
        assert run.started == "2026-11-20T02:00:00Z"
        assert run.counts == {"fail": 1, "warn": 1, "info": 0, "error": 1}
        assert run.exit_status == 1
        stored = sorted(e.finding.code for e in db.findings("r1"))
        assert stored == ["SPF_MISSING", "SPF_NO_ALL"]
        (entry,) = [e for e in db.findings("r1") if e.finding.code == "SPF_MISSING"]
        assert entry.finding == finding("SPF_MISSING")


def test_runs_are_listed_newest_first_and_limited(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as db:
        for day in (1, 3, 2):
            db.add(report(f"r{day}", day=day))
        assert [r.run_id for r in db.runs()] == ["r3", "r2", "r1"]
        assert [r.run_id for r in db.latest(2)] == ["r3", "r2"]


def test_a_missing_file_is_not_created_when_create_is_false(tmp_path):
    path = tmp_path / "none.sqlite"
    with pytest.raises(HistoryError, match="no such history file"):
        HistoryDB(path, create=False)
    assert not path.exists()


def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "history.sqlite"
    path.write_bytes(os.urandom(4096))
    before = snapshot(path)
    with pytest.raises(HistoryError) as info:
        HistoryDB(path)
    assert str(path) in str(info.value)
    assert "not an SQLite file" in str(info.value)
    assert isinstance(info.value, UsageError)
    assert snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]


def test_a_truncated_sqlite_file_is_refused_and_left_untouched(tmp_path):
    good = tmp_path / "good.sqlite"
    with HistoryDB(good) as db:
        db.add(report("r1", [finding("SPF_MISSING")]))
    path = tmp_path / "history.sqlite"
    path.write_bytes(good.read_bytes()[:100] + os.urandom(8000))
    before = snapshot(path)
    with pytest.raises(HistoryError, match=r"history\.sqlite"):
        HistoryDB(path)
    assert snapshot(path) == before


def test_a_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "history.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    con.execute("INSERT INTO invoices VALUES (1, 9.5)")
    con.commit()
    con.close()
    before = snapshot(path)
    with pytest.raises(HistoryError, match="another application") as info:
        HistoryDB(path)
    assert str(path) in str(info.value)
    assert snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]


def test_a_database_with_our_marker_but_other_tables_is_refused(tmp_path):
    path = tmp_path / "history.sqlite"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("CREATE TABLE something (x)")
    con.commit()
    con.close()
    before = snapshot(path)
    with pytest.raises(HistoryError, match="unexpected tables"):
        HistoryDB(path)
    assert snapshot(path) == before


def test_a_newer_schema_version_is_refused(tmp_path):
    path = tmp_path / "history.sqlite"
    HistoryDB(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(HistoryError, match="newer"):
        HistoryDB(path)


def test_a_failure_inside_the_transaction_leaves_no_half_run(tmp_path):
    path = tmp_path / "h.sqlite"
    with HistoryDB(path) as db:
        db.add(report("r1", [finding("SPF_MISSING")]))
        # the second report repeats the first's id: the batch fails after rows were inserted
        with pytest.raises(HistoryError, match="already recorded"):
            db.add_many([report("r2", [finding("SPF_NO_ALL")], day=1), report("r1", day=2)])
    with HistoryDB(path) as db:
        assert [r.run_id for r in db.runs()] == ["r1"]
        assert list(db.findings("r2")) == []
        con = sqlite3.connect(path)
        assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1
        con.close()


KILLED_WRITER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from test_history import report, finding
from probes.history import HistoryDB

class Stall:
    def __init__(self, con):
        self.con = con
    def execute(self, *a):
        return self.con.execute(*a)
    def executemany(self, sql, rows):
        out = self.con.executemany(sql, rows)
        if sql.startswith("INSERT INTO findings"):
            Path({marker!r}).write_text("inside")
            time.sleep(60)
        return out
    def close(self):
        self.con.close()

db = HistoryDB({path!r})
db._db.execute("PRAGMA cache_size = 5")  # spill pages to the file before the commit
db._db = Stall(db._db)
db.add(report("big", [finding(f"CODE_{{i}}", subject=str(i)) for i in range(5000)], day=1))
"""


def test_a_run_killed_mid_write_leaves_the_history_usable_and_without_it(tmp_path):
    path = tmp_path / "h.sqlite"
    marker = tmp_path / "marker"
    with HistoryDB(path) as db:
        db.add(report("committed", [finding("SPF_MISSING")]))
    script = KILLED_WRITER.format(
        root=str(Path(__file__).parents[2]),
        tests=str(Path(__file__).parent),
        marker=str(marker),
        path=str(path),
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, "the writer ended before reaching the transaction"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.kill()  # SIGKILL, mid-transaction
        proc.wait()
    assert proc.returncode == -9
    assert Path(f"{path}-journal").exists()  # a hot journal: the file holds half a run
    with HistoryDB(path) as db:
        assert [r.run_id for r in db.runs()] == ["committed"]
        assert [e.finding.code for e in db.findings("committed")] == ["SPF_MISSING"]
        assert list(db.findings("big")) == []
        db.add(report("after", day=2))
        assert [r.run_id for r in db.runs()] == ["after", "committed"]


def test_diff_reports_new_resolved_and_changed_findings(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as db:
        db.add(
            report(
                "a",
                [
                    finding("SPF_MISSING"),
                    finding("DKIM_KEY_WEAK", "warn", subject="s1"),
                    finding("DMARC_POLICY_NONE", "warn", message="p=none"),
                    finding("DKIM_KEY_WEAK", "warn", subject="s2"),
                ],
            )
        )
        db.add(
            report(
                "b",
                [
                    finding("DKIM_KEY_WEAK", "fail", subject="s1"),  # severity changed
                    finding("DMARC_POLICY_NONE", "warn", message="p=none sp=none"),  # message
                    finding("DKIM_KEY_WEAK", "warn", subject="s2"),  # unchanged
                    finding("SPF_NO_ALL", "warn"),  # new
                ],
                day=1,
            )
        )
        d = diff(db, "a", "b")
    assert (d.run_a, d.run_b) == ("a", "b")
    assert [(e.domain, e.finding.code) for e in d.new] == [("example.test", "SPF_NO_ALL")]
    assert [e.finding.code for e in d.resolved] == ["SPF_MISSING"]
    # a change of message text alone is not a change (issue 14): DMARC_POLICY_NONE is unchanged
    assert sorted(
        (c.after.code, c.before.severity.value, c.after.severity.value, c.after.message)
        for c in d.changed
    ) == [
        ("DKIM_KEY_WEAK", "warn", "fail", "DKIM_KEY_WEAK message"),
    ]


def test_diff_defaults_to_the_two_newest_runs_of_the_same_domain(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as db:
        db.add(report("a1", [finding("SPF_MISSING")], day=0))
        db.add(report("other", [finding("MX_MISSING")], domain="other.test", day=1))
        db.add(report("a2", [], day=2))
        db.add(report("a3", [finding("SPF_NO_ALL", "warn")], day=3))
        assert (diff(db).run_a, diff(db).run_b) == ("a2", "a3")
        one = diff(db, "a2")
        assert (one.run_a, one.run_b) == ("a1", "a2")
        assert [e.finding.code for e in one.resolved] == ["SPF_MISSING"]
        with pytest.raises(HistoryError, match=r"first run of other\.test"):
            diff(db, "other")
        with pytest.raises(HistoryError, match="'nope'"):
            diff(db, "nope")
        with pytest.raises(HistoryError, match="'nope'"):
            diff(db, "a1", "nope")


def test_a_repeated_finding_key_counts_each_occurrence(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as db:
        db.add(report("a", [finding("SPF_NO_ALL", "warn")]))
        db.add(report("b", [finding("SPF_NO_ALL", "warn"), finding("SPF_NO_ALL", "warn")], day=1))
        d = diff(db, "a", "b")
    assert len(d.new) == 1 and d.resolved == [] and d.changed == []


def test_a_batch_of_runs_is_stored_together_and_diffs_per_domain(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as db:
        db.add_many(
            [
                report("x1", [finding("SPF_MISSING")], domain="x.test"),
                report("y1", [], domain="y.test"),
            ],
            batch_id="night1",
        )
        db.add_many(
            [
                report("x2", [finding("SPF_MISSING")], domain="x.test", day=1),
                report("y2", [finding("SPF_MISSING")], domain="y.test", day=1),
            ],
            batch_id="night2",
        )
        d = diff(db, "night1", "night2")
    assert [(e.domain, e.finding.code) for e in d.new] == [("y.test", "SPF_MISSING")]
    assert d.resolved == []


def test_new_findings_are_only_regressions_against_the_previous_run(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as db:
        db.add(report("a", [finding("SPF_MISSING"), finding("DKIM_KEY_WEAK", "warn", "s1")]))
        db.add(report("o", [], domain="other.test", day=1))
        today = report(
            "b",
            [
                finding("SPF_MISSING"),  # known failure: not new
                finding("DKIM_KEY_WEAK", "fail", "s1"),  # rose from warn to fail: new
                finding("SPF_NO_ALL", "warn"),  # new but below the threshold
                finding("MX_MISSING"),  # new
            ],
            day=2,
        )
        assert sorted(f.code for f in new_findings(db, today)) == ["DKIM_KEY_WEAK", "MX_MISSING"]
        assert exit_status_new(db, today) == 1
        # the same answer once the run itself is stored
        db.add(today)
        assert sorted(f.code for f in new_findings(db, today)) == ["DKIM_KEY_WEAK", "MX_MISSING"]
        # at warn: a finding that got worse (warn -> fail) is new too (issue 14: "new or
        # worsened"; schema 1 counted it only at the fail threshold)
        assert [f.code for f in new_findings(db, today, Severity.WARN)] == [
            "DKIM_KEY_WEAK",
            "SPF_NO_ALL",
            "MX_MISSING",
        ]
        same = report("c", [finding("SPF_MISSING")], day=3, error=True)
        assert new_findings(db, same) == []
        assert exit_status_new(db, same) == 3
        assert exit_status_new(db, report("d", [], day=4)) == 0


def test_every_failure_is_new_on_the_first_run_of_a_domain(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as db:
        first = report("a", [finding("SPF_MISSING"), finding("SPF_NO_ALL", "warn")])
        assert [f.code for f in new_findings(db, first)] == ["SPF_MISSING"]

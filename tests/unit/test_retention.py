"""Retention (probes.retention, `mailprobe history prune`): which runs and report directories
go, and that a kill -9 at any moment leaves a whole, consistent history."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_drift import f, rep

from probes import cli
from probes.history import HistoryDB
from probes.report.run import new_run_id
from probes.retention import prune

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def run_id(day: int, n: int = 0) -> str:
    return f"{(datetime(2026, 11, 1, 2, tzinfo=UTC) + timedelta(days=day)):%Y%m%dT%H%M%SZ}-{n:06x}"


def fill(path: Path, reports: Path | None = None) -> list[str]:
    """30 nights of two keys of example.test and one of other.test; a report dir each."""
    ids = []
    with HistoryDB(path) as db:
        for day in range(30):
            for n, (domain, what) in enumerate(
                [("example.test", "probes:*"), ("example.test", "scenario:x"), ("o.test", None)]
            ):
                rid = run_id(day, n)
                report = rep(
                    rid, [f("A", "warn"), f("B", probe="dns.mx")], day=day - 19, domain=domain
                )
                db.add(report, what=what)
                ids.append(rid)
                if reports is not None:
                    (reports / rid).mkdir(parents=True)
                    (reports / rid / "report.json").write_text("{}")
    return ids


def whole(path: Path) -> list[str]:
    """Check integrity and that every run has all its rows; the run ids left."""
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute(
            "SELECT r.run_id, r.n_fail + r.n_warn + r.n_info,"
            " (SELECT COUNT(*) FROM findings x WHERE x.run_id = r.run_id),"
            " (SELECT COUNT(*) FROM results s WHERE s.run_id = r.run_id) FROM runs r"
        ).fetchall()
        for rid, expected, found, results in rows:
            assert (rid, found) == (rid, expected)
            assert results > 0, rid
        orphans = (
            con.execute(
                "SELECT COUNT(*) FROM findings WHERE run_id NOT IN (SELECT run_id FROM runs)"
            ).fetchone()[0]
            + con.execute(
                "SELECT COUNT(*) FROM results WHERE run_id NOT IN (SELECT run_id FROM runs)"
            ).fetchone()[0]
        )
        assert orphans == 0
        return sorted(r[0] for r in rows)
    finally:
        con.close()


def test_keep_runs_keeps_the_newest_n_of_each_target_and_what(tmp_path):
    path, reports = tmp_path / "h.sqlite", tmp_path / "reports"
    ids = fill(path, reports)
    (reports / "notes").mkdir()  # not a run id: never touched
    (reports / "20200101T000000Z-abcdef").mkdir()  # a run id unknown to the history
    (reports / "README").write_text("x")
    with HistoryDB(path) as db:
        done = prune(db, reports, keep_runs=3, now=NOW)
    kept = whole(path)
    assert kept == sorted(i for i in ids if int(i[6:8]) >= 28)  # the last 3 nights, 3 keys
    assert len(done.runs) == 81
    left = sorted(p.name for p in reports.iterdir())
    assert left == sorted([*kept, "notes", "20200101T000000Z-abcdef", "README"])


def test_keep_days_keeps_recent_runs_and_the_newest_of_each_key(tmp_path):
    path, reports = tmp_path / "h.sqlite", tmp_path / "reports"
    fill(path, reports)
    with HistoryDB(path) as db:
        db.add(rep("lonely", [f("A")], day=-300, domain="gone.test"), what="probes:*")
        stale = reports / new_run_id(NOW - timedelta(days=40))
        fresh = reports / new_run_id(NOW - timedelta(days=2))
        stale.mkdir()
        fresh.mkdir()
        dry = prune(db, reports, keep_days=5, now=NOW, dry_run=True)
        assert len(db.runs(limit=1000)) == 91  # a dry run changes nothing
        assert all(p.exists() for p in dry.directories)
        prune(db, reports, keep_days=5, now=NOW)
        runs = db.runs(limit=1000)
    started = {r.run_id: r.started for r in runs}
    cutoff = "2026-11-26T12:00:00Z"
    assert "lonely" in started  # the only run of gone.test stays: the baseline
    assert all(s >= cutoff for rid, s in started.items() if rid != "lonely")
    assert len(started) == 1 + 3 * 4  # nights of 27-30 November
    assert not stale.exists() and fresh.exists()
    whole(path)


def test_a_batch_directory_goes_with_its_last_run(tmp_path):
    path, reports = tmp_path / "h.sqlite", tmp_path / "reports"
    with HistoryDB(path) as db:
        for night in range(3):
            batch = run_id(night, 0xBA)
            db.add_many(
                [rep(f"{d}-{night}", [f("A")], day=night, domain=f"{d}.test") for d in "xy"],
                batch_id=batch,
                what="probes:dns.*",
            )
            (reports / batch).mkdir(parents=True)
        prune(db, reports, keep_runs=1, now=NOW)
        assert sorted(r.run_id for r in db.runs()) == ["x-2", "y-2"]
    assert sorted(p.name for p in reports.iterdir()) == [run_id(2, 0xBA)]


PRUNER = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from probes.history import HistoryDB
from probes.retention import prune
db = HistoryDB({path!r})
db._db.execute("PRAGMA cache_size = 5")  # spill pages to the file before the commit
prune(db, Path({reports!r}), keep_runs=2)
"""

RECORDER = """
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from test_drift import f, rep
from probes.history import HistoryDB
db = HistoryDB({path!r})
db._db.execute("PRAGMA cache_size = 5")
for n in range(1000):
    db.add(rep(f"k{{n}}", [f("C", subject=str(i), v="x" * 200) for i in range(300)], day=40 + n),
           what="probes:*")
"""


def _kill_at(script: str, delay: float) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script])
    time.sleep(delay)
    proc.kill()  # SIGKILL
    proc.wait()


@pytest.mark.parametrize("which", ["prune", "record"])
def test_a_kill_9_at_any_moment_leaves_a_whole_history(tmp_path, which):
    seed, seed_reports = tmp_path / "seed.sqlite", tmp_path / "seed-reports"
    ids = fill(seed, seed_reports)
    with HistoryDB(seed) as db:  # more rows, so the transaction takes a while
        for n in range(200):
            findings = [f("C", subject=str(i), v="x" * 100) for i in range(200)]
            db.add(rep(f"big{n}", findings, day=n - 260), what="w")
    total = len(ids) + 200
    template = PRUNER if which == "prune" else RECORDER

    def script_for(path: Path, reports: Path) -> str:
        return template.format(
            root=str(ROOT), tests=str(Path(__file__).parent), path=str(path), reports=str(reports)
        )

    # how long one uninterrupted prune takes (record: a fixed span; it never ends by itself)
    span = 1.2
    if which == "prune":
        shutil.copy(seed, tmp_path / "timed.sqlite")
        t0 = time.monotonic()
        subprocess.run(
            [sys.executable, "-c", script_for(tmp_path / "timed.sqlite", tmp_path / "none")],
            check=True,
        )
        span = time.monotonic() - t0
    hot = 0
    for attempt in range(8):
        path, reports = tmp_path / f"h{attempt}.sqlite", tmp_path / f"r{attempt}"
        shutil.copy(seed, path)
        shutil.copytree(seed_reports, reports)
        _kill_at(script_for(path, reports), span * (0.3 + 0.1 * attempt))
        hot += Path(f"{path}-journal").exists()
        with HistoryDB(path) as db:  # a hot journal is rolled back on opening
            db.runs()
        left = whole(path)
        if which == "prune":
            assert len(left) in (total, 4 * 2)  # all, or the prune's result (4 keys, 2 each)
            with HistoryDB(path) as db:
                prune(db, reports, keep_runs=2)  # the next prune finishes the job
            assert not [p for p in reports.iterdir() if p.name.startswith(".pruning-")]
            kept = whole(path)
            assert sorted(p.name for p in reports.iterdir()) == [i for i in kept if i in ids]
        else:
            assert len(left) >= total
            assert set(left) >= set(ids)
    assert hot >= 1  # some kills landed inside a transaction


def test_history_prune_cli_and_a_corrupt_history_is_refused_untouched(tmp_path, capsys):
    path, reports = tmp_path / "h.sqlite", tmp_path / "reports"
    fill(path, reports)
    argv = ["history", "prune", "--history", str(path), "--reports", str(reports)]
    assert cli.main([*argv, "--keep-runs", "1"]) == 0
    assert "removed 87 run(s), 87 report directories" in capsys.readouterr().out
    assert len(whole(path)) == 3
    for bad_args in (["--keep-days", "0"], [], ["--keep-days", "1", "--keep-runs", "1"]):
        with pytest.raises(SystemExit) as info:  # argparse: exit 2 naming the option
            cli.main(["history", "prune", "--history", str(path), *bad_args])
        assert info.value.code == 2
        assert "--keep-" in capsys.readouterr().err

    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    before = bad.read_bytes(), bad.stat().st_mtime_ns
    for command in (
        ["history", "prune", "--keep-runs", "1", "--reports", str(reports)],
        ["history"],
        ["diff"],
    ):
        assert cli.main([*command, "--history", str(bad)]) == 2
        assert str(bad) in capsys.readouterr().err
        assert (bad.read_bytes(), bad.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sqlite", "h.sqlite", "reports"]

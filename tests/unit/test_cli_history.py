"""`mailprobe history` and `mailprobe diff`: output and exit statuses, on tmp_path histories."""

from __future__ import annotations

import argparse
import io
import json
import os

import pytest
from test_history import finding, report

from probes.cli_history import record, register
from probes.errors import UsageError
from probes.history import HistoryDB


def run(argv: list[str]) -> tuple[int, str]:
    """Parse `argv` with a parser holding only our subcommands; UsageError -> 2 as in cli.main."""
    parser = argparse.ArgumentParser(prog="mailprobe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    try:
        status = args.func(args, out)
    except UsageError as exc:
        return 2, str(exc)
    return status, out.getvalue()


@pytest.fixture
def history(tmp_path):
    path = tmp_path / "history.sqlite"
    record(report("r1", [finding("SPF_MISSING"), finding("DKIM_KEY_WEAK", "warn", "s1")]), path)
    record(
        report("r2", [finding("SPF_MISSING"), finding("DKIM_KEY_WEAK", "warn", "s1")], day=1), path
    )
    record(
        report(
            "r3",
            [finding("DKIM_KEY_WEAK", "fail", "s1"), finding("MX_MISSING")],
            day=2,
            error=True,
        ),
        path,
    )
    return path


def test_history_lists_runs_newest_first_with_counts_and_exit_status(history):
    status, out = run(["history", "--history", str(history)])
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "RUN",
        "STARTED",
        "(UTC)",
        "DOMAIN",
        "FAIL",
        "WARN",
        "INFO",
        "ERRORS",
        "EXIT",
    ]
    assert lines[1].split() == [
        "r3",
        "2026-11-22",
        "02:00:00",
        "example.test",
        "2",
        "0",
        "0",
        "1",
        "1",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["r3", "r2", "r1"]


def test_history_json_honours_the_limit(history):
    status, out = run(["history", "--history", str(history), "--format", "json", "--limit", "2"])
    assert status == 0
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == ["r3", "r2"]
    assert runs[1] == {
        "run_id": "r2",
        "batch_id": None,
        "started": "2026-11-21T02:00:00Z",
        "duration_s": 1.25,
        "domain": "example.test",
        "exit_status": 1,
        "counts": {"fail": 1, "warn": 1, "info": 0, "error": 0},
    }


def test_history_of_a_missing_file_exits_2_naming_it(tmp_path):
    path = tmp_path / "nothing.sqlite"
    status, message = run(["history", "--history", str(path)])
    assert status == 2
    assert str(path) in message
    assert not path.exists()


def test_history_refuses_a_foreign_file_without_changing_it(tmp_path):
    path = tmp_path / "history.sqlite"
    path.write_bytes(os.urandom(2048))
    before = path.read_bytes(), path.stat().st_mtime_ns
    status, message = run(["history", "--history", str(path)])
    assert status == 2
    assert str(path) in message
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_diff_without_ids_compares_the_two_newest_runs_and_exits_1_on_new_failures(history):
    status, out = run(["diff", "--history", str(history)])
    assert status == 1
    assert out.splitlines() == [
        "diff r2 -> r3: 1 new, 1 resolved, 1 changed",
        "new:",
        "  FAIL MX_MISSING example.test dns.spf: MX_MISSING message",
        "resolved:",
        "  FAIL SPF_MISSING example.test dns.spf: SPF_MISSING message",
        "changed:",
        "  DKIM_KEY_WEAK example.test dns.spf [s1]:",
        "    before WARN DKIM_KEY_WEAK message",
        "    after  FAIL DKIM_KEY_WEAK message",
    ]


def test_diff_of_identical_runs_exits_0(history):
    status, out = run(["diff", "r1", "r2", "--history", str(history)])
    assert status == 0
    assert out == "diff r1 -> r2: 0 new, 0 resolved, 0 changed\n"


def test_diff_with_one_id_compares_it_with_the_run_before(history):
    status, out = run(["diff", "r2", "--history", str(history), "--format", "json"])
    assert status == 0
    assert json.loads(out) == {
        "run_a": "r1",
        "run_b": "r2",
        "new": [],
        "resolved": [],
        "changed": [],
    }


def test_diff_json_lists_new_findings_with_domain_and_probe(history):
    status, out = run(["diff", "r1", "r3", "--history", str(history), "--format", "json"])
    assert status == 1
    doc = json.loads(out)
    assert doc["new"] == [
        {
            "domain": "example.test",
            "probe": "dns.spf",
            "code": "MX_MISSING",
            "severity": "fail",
            "message": "MX_MISSING message",
            "evidence": {"k": "v"},
            "reproduce": "dig txt example.test",
            "subject": None,
        }
    ]
    assert doc["changed"][0]["before"] == {"severity": "warn", "message": "DKIM_KEY_WEAK message"}


def test_diff_exits_0_when_new_findings_are_below_fail_on(tmp_path):
    path = tmp_path / "h.sqlite"
    record(report("a", []), path)
    record(report("b", [finding("SPF_NO_ALL", "warn")], day=1), path)
    assert run(["diff", "--history", str(path)])[0] == 0
    assert run(["diff", "--history", str(path), "--fail-on", "warn"])[0] == 1


def test_diff_of_an_unknown_run_exits_2_naming_it(history):
    status, message = run(["diff", "r1", "r9", "--history", str(history)])
    assert status == 2
    assert "'r9'" in message
    status, message = run(["diff", "r1", "--history", str(history)])
    assert status == 2
    assert "first run of example.test" in message


def test_record_creates_the_history_and_its_directory(tmp_path):
    path = tmp_path / "reports" / "history.sqlite"
    record(report("x", [finding("SPF_MISSING")]), path, status=0)
    with HistoryDB(path, create=False) as db:
        (run_,) = db.runs()
    assert (run_.run_id, run_.exit_status) == ("x", 0)


def test_limit_must_be_positive(history, capsys):
    with pytest.raises(SystemExit) as info:
        run(["history", "--history", str(history), "--limit", "0"])
    assert info.value.code == 2


def test_check_refuses_a_corrupt_history_before_probing(tmp_path, capsys):
    from probes import cli

    history = tmp_path / "history.sqlite"
    history.write_bytes(b"not a database at all" * 10)
    before = history.read_bytes()
    out = tmp_path / "out"
    argv = ["check", "example.test", "--resolver", "127.0.0.1:9", "--probe", "dns.mx"]
    status = cli.main([*argv, "--history", str(history), "--output", str(out)])
    assert status == 2
    assert str(history) in capsys.readouterr().err
    assert history.read_bytes() == before
    assert not out.exists()  # nothing was probed or written

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


# -- a --domains batch is one unit ------------------------------------------------------------


@pytest.fixture
def nights(tmp_path):
    """Two --domains batches of the same probe set, with a single check between them, and an
    older batch of another probe set (never compared with them)."""
    path = tmp_path / "nights.sqlite"
    with HistoryDB(path) as db:
        db.add_many(
            [report("o1", [finding("SPF_MISSING")], domain="a.test", day=-1)],
            batch_id="B0",
            what="probes:dns.*",
        )
        db.add_many(
            [
                report("1a", [finding("DKIM_KEY_WEAK", "warn", "s1")], domain="a.test"),
                report("1b", [finding("SPF_MISSING")], domain="b.test", error=True),
                report("1c", [], domain="c.test"),
            ],
            batch_id="B1",
            what="probes:*",
        )
        db.add(report("solo", [finding("SPF_MISSING")], domain="b.test", day=1), what="probes:*")
        db.add_many(
            [
                report("2a", [finding("DKIM_KEY_WEAK", "fail", "s1")], domain="a.test", day=2),
                report("2b", [], domain="b.test", day=2),
                report("2d", [finding("MX_MISSING")], domain="d.test", day=2),
            ],
            batch_id="B2",
            what="probes:*",
        )
    return path


def test_history_lists_a_batch_as_one_entry(nights):
    status, out = run(["history", "--history", str(nights)])
    assert status == 0
    rows = [line.split("  ") for line in out.splitlines()]
    assert [r[0].strip() for r in rows[1:]] == ["B2", "solo", "B1", "B0"]
    assert "3 domains: 2 failing, 0 with probe errors" in out.splitlines()[1]
    assert "3 domains: 1 failing, 1 with probe errors" in out.splitlines()[3]
    status, out = run(["history", "--history", str(nights), "--format", "json", "--limit", "3"])
    entries = json.loads(out)
    assert [e["run_id"] for e in entries] == ["B2", "solo", "B1"]
    b1 = entries[2]
    assert b1["batch_id"] == "B1" and b1["domain"] is None
    assert (b1["domains"], b1["failing"], b1["with_probe_errors"]) == (3, 1, 1)
    assert b1["counts"] == {"fail": 1, "warn": 1, "info": 0, "error": 1}
    assert b1["exit_status"] == 1 and b1["what"] == "probes:*"
    assert "domains" not in entries[1] and entries[1]["domain"] == "b.test"
    # one domain's runs are listed each, those of batches too
    status, out = run(["history", "--history", str(nights), "--domain", "b.test"])
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["2b", "solo", "1b"]


def test_diff_without_ids_compares_the_last_two_batches_domain_by_domain(nights):
    status, out = run(["diff", "--history", str(nights)])
    assert status == 1  # DKIM_KEY_WEAK warn -> fail, MX_MISSING new on d.test
    lines = out.splitlines()
    assert lines[0].startswith("diff B1 -> B2: 0 new, 1 resolved, 1 changed")
    assert lines[1] == "batches: 3 domains -> 3 domains; 2 compared, 1 added, 1 removed"
    assert "domains added: d.test" in lines and "domains removed: c.test" in lines
    i = lines.index("per domain:")
    assert lines[i + 1 : i + 3] == [
        "  a.test: 0 new, 0 resolved, 1 changed",
        "  b.test: 0 new, 1 resolved, 0 changed",
    ]
    # the same with the batch id, and as JSON
    assert run(["diff", "B2", "--history", str(nights)]) == (status, out)
    status, text = run(["diff", "B2", "--history", str(nights), "--format", "json"])
    doc = json.loads(text)
    assert (doc["run_a"], doc["run_b"]) == ("B1", "B2")
    assert doc["batch"] == {"domains_before": 3, "domains_after": 3, "compared": 2}
    assert (doc["domains_added"], doc["domains_removed"]) == (["d.test"], ["c.test"])
    assert doc["per_domain"] == [
        {"domain": "a.test", "new": 0, "resolved": 0, "changed": 1},
        {"domain": "b.test", "new": 0, "resolved": 1, "changed": 0},
    ]
    assert [(c["domain"], c["code"]) for c in doc["changed"]] == [("a.test", "DKIM_KEY_WEAK")]
    status, text = run(["diff", "B2", "--history", str(nights), "--format", "markdown"])
    assert "### Per domain" in text and "| a.test | 0 | 0 | 1 |" in text


def test_diff_of_a_single_run_is_unchanged_and_the_first_batch_has_nothing_before(nights):
    status, out = run(["diff", "solo", "--history", str(nights)])
    assert out.startswith("diff 1b -> solo: ") and "batches:" not in out
    status, message = run(["diff", "B0", "--history", str(nights)])
    assert status == 2 and "'B0' is the first --domains batch" in message
    # B1's probe set differs from B0's: B1 is the first of its own
    status, message = run(["diff", "B1", "--history", str(nights)])
    assert status == 2 and "'B1'" in message

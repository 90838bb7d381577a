"""`mailprobe diff` / `check` with the history, through probes.cli.main and a subprocess:
-q, formats, different targets, a closed pipe, --fail-on new:SEV, still failing, reports
marking new findings."""

from __future__ import annotations

import io
import json
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import dns.message
import dns.rcode
import pytest
from test_cli_domains import refusing_resolver  # noqa: F401 (a fixture)
from test_drift import f, rep

from probes import cli
from probes.drift import mark_new
from probes.history import HistoryDB
from probes.model import Outcome
from probes.report import html_report, junit_report, markdown_report, text_report

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def history(tmp_path):
    path = tmp_path / "h.sqlite"
    with HistoryDB(path) as db:
        db.add(rep("a", [f("DMARC_POLICY", p="reject"), f("SPF_ALL", "info", all="-all")]))
        db.add(
            rep(
                "b",
                [f("DMARC_POLICY", p="quarantine"), f("SPF_ALL", "info", all="-all")],
                day=1,
            )
        )
        db.add(rep("c", [f("DMARC_POLICY", p="quarantine"), f("SPF_ALL", all="-all")], day=2))
        db.add(rep("d", [f("DMARC_POLICY", p="quarantine"), f("X", "warn")], day=3))
        db.add(rep("other", [f("DMARC_POLICY", p="none")], day=4, domain="other.test"))
    return path


def test_diff_q_prints_nothing_and_exits_1_on_drift(history, capsys):
    h = ["--history", str(history)]
    assert cli.main(["diff", "a", "b", "-q", *h]) == 1  # an info finding's policy changed
    assert cli.main(["diff", "b", "c", "-q", *h]) == 0  # only the message differs
    assert capsys.readouterr().out == ""
    # without -q the threshold is fail: an info change is shown but does not fail
    assert cli.main(["diff", "a", "b", *h]) == 0
    out = capsys.readouterr().out
    assert "diff a -> b: 0 new, 0 resolved, 1 changed" in out
    assert "    p: reject -> quarantine" in out
    assert cli.main(["diff", "a", "b", "--fail-on", "drift", *h]) == 1
    assert cli.main(["diff", "c", "d", "--fail-on", "warn", *h]) == 1
    assert cli.main(["diff", "c", "d", "-q", "--fail-on", "fail", *h]) == 0


def test_diff_markdown_and_json(history, capsys):
    assert cli.main(["diff", "c", "d", "--format", "markdown", "--history", str(history)]) == 0
    md = capsys.readouterr().out
    assert md.startswith("## mailprobe diff <code>c</code> → <code>d</code>")
    assert "### New" in md and "### Resolved" in md and "<code>SPF_ALL</code>" in md
    assert cli.main(["diff", "a", "b", "--format", "markdown", "--history", str(history)]) == 0
    assert (
        "| <code>DMARC_POLICY</code> | example.test | dns.dmarc |  | p | reject | quarantine |"
        in (capsys.readouterr().out)
    )
    assert cli.main(["diff", "a", "b", "--format", "json", "--history", str(history)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["changed"][0]["evidence"] == {"p": {"before": "reject", "after": "quarantine"}}


def test_diff_of_different_targets_exits_2_naming_both(history, capsys):
    assert cli.main(["diff", "d", "other", "--history", str(history)]) == 2
    err = capsys.readouterr().err
    assert "example.test" in err and "other.test" in err and "--allow-different-targets" in err
    argv = ["diff", "d", "other", "--allow-different-targets", "--history", str(history)]
    assert cli.main([*argv, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["changed"][0]["evidence"]["p"] == {"before": "quarantine", "after": "none"}


def test_diff_and_history_into_a_closed_pipe_end_quietly(tmp_path):
    path = tmp_path / "h.sqlite"
    with HistoryDB(path) as db:
        db.add(rep("a", [], outcomes={"dns.dmarc": Outcome.COMPLETED}))
        db.add(rep("b", [f(f"CODE_{i}", "fail", subject=str(i)) for i in range(3000)], day=1))
        db.add_many(  # a long `history` too
            rep(f"r{day}", [], day=day, outcomes={"dns.dmarc": Outcome.COMPLETED})
            for day in range(2, 900)
        )
    for command in (["diff", "a", "b"], ["history", "--limit", "900"]):
        proc = subprocess.Popen(
            [sys.executable, "-c", "from probes.cli import run; run()", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={"MAILPROBE_HISTORY": str(path), "PATH": "/usr/bin:/bin"},
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(timeout=30)
        assert first
        assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err
        assert proc.returncode == (1 if command[0] == "diff" else 0)  # the status stays


def test_fail_on_takes_new_with_a_severity(tmp_path, capsys):
    base = ["check", "example.test", "--resolver", "127.0.0.1:9", "--probe", "dns.mx"]
    for bad in ("new:bogus", "newer", "warn:new"):
        with pytest.raises(SystemExit) as info:
            cli.main([*base, "--fail-on", bad])
        assert info.value.code == 2
        assert "--fail-on" in capsys.readouterr().err
    assert cli.main([*base, "--fail-on", "new:fail", "--no-history"]) == 2
    assert "--fail-on new:fail" in capsys.readouterr().err
    from probes.cli_history import parse_fail_on

    assert parse_fail_on("new") == "new:warn"
    assert parse_fail_on("NEW:fail") == "new:fail"
    assert parse_fail_on("warn") == "warn"


def test_a_check_failing_for_the_same_reason_says_so_in_one_line(
    tmp_path,
    capsys,
    refusing_resolver,  # noqa: F811
):
    history = tmp_path / "h.sqlite"
    argv = ["check", "example.test", "--resolver", refusing_resolver, "--probe", "dns.mx", "-q"]
    argv += ["--history", str(history), "--fail-on", "new"]
    outs = []
    for n in range(3):
        assert cli.main([*argv, "--output", str(tmp_path / f"out{n}")]) == 3
        outs.append(capsys.readouterr().out)
    assert "mailprobe check of example.test" in outs[0]  # the first failing night: the report
    with HistoryDB(history) as db:
        first = db.runs()[-1]
    for out in outs[1:]:
        assert out.splitlines() == [
            f"mailprobe: still failing since run {first.run_id} ({first.started[:10]}):"
            " probe errors unchanged (dns.mx DNS)"
        ]
    assert cli.main(["history", "--history", str(history)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[4] == "WHAT"
    assert all(line.split()[4] == "probes:dns.mx" for line in listing[1:])
    # the report of a compared run carries "new" on its findings (none here: no findings)
    report = json.loads((tmp_path / "out2" / "report.json").read_text())
    assert report["results"][0]["outcome"] == "ERROR"


def test_renderers_mark_new_findings(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as db:
        db.add(rep("a", [f("OLD_ONE", "warn"), f("STATE", p="reject")]))
        today = mark_new(
            db,
            rep("b", [f("OLD_ONE", "warn"), f("STATE", p="none"), f("BAD", "fail")], day=1),
        )

    def render(module) -> str:
        out = io.StringIO()
        module.render(today, out)
        return out.getvalue()

    text = render(text_report)
    assert "FAIL  NEW BAD  " in text and "WARN  OLD_ONE  " in text
    assert "STATE" not in text  # info: shown with -v
    assert "since the previous comparable run: 1 new, 1 changed, 0 resolved" in text
    verbose = io.StringIO()
    text_report.render(today, verbose, verbose=True)
    assert "  CHANGED STATE [dns.dmarc]" in verbose.getvalue()  # p=reject -> p=none
    md = render(markdown_report)
    assert "<code>BAD</code> **new**" in md and "<code>OLD_ONE</code> **new**" not in md
    junit = render(junit_report)
    assert '<property name="new" value="STATE BAD" />' in junit
    assert "[fail, new] BAD" in junit and "[warn] OLD_ONE" in junit
    html = render(html_report)
    # BAD's problem and its one finding, and the new info finding STATE
    assert html.count('<span class="badge new">new</span>') == 3


class _NxDomain(socketserver.BaseRequestHandler):
    """A resolver that answers NXDOMAIN at once (dns.mx: MX_MISSING, fail)."""

    def handle(self):
        data, sock = self.request
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(response.to_wire(), self.client_address)


@pytest.fixture
def nxdomain_resolver():
    server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _NxDomain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_domains_nights_mark_new_findings_and_fail_only_on_new(tmp_path, capsys, nxdomain_resolver):
    history = tmp_path / "h.sqlite"
    names = tmp_path / "domains.txt"

    def night(n: int, domains: str) -> tuple[int, dict[str, object]]:
        names.write_text(domains)
        out = tmp_path / f"night{n}"
        argv = ["check", "--domains", str(names), "--resolver", nxdomain_resolver]
        argv += ["--probe", "dns.mx", "--history", str(history), "--fail-on", "new:fail"]
        status = cli.main([*argv, "--output", str(out), "-q"])
        capsys.readouterr()
        lines = [json.loads(x) for x in (out / "domains.jsonl").read_text().splitlines()]
        flags = {
            doc["target"]["domain"]: [x.get("new") for r in doc["results"] for x in r["findings"]]
            for doc in lines
        }
        return status, flags

    assert night(0, "a.example\nb.example\n") == (1, {"a.example": [None], "b.example": [None]})
    assert night(1, "a.example\nb.example\n") == (0, {"a.example": [False], "b.example": [False]})
    status, flags = night(2, "a.example\nc.example\n")
    assert (status, flags) == (1, {"a.example": [False], "c.example": [None]})  # c: first run
    with HistoryDB(history) as db:
        runs = db.runs(limit=10)
    assert {r.what for r in runs} == {"probes:dns.mx"}
    batches = list(dict.fromkeys(r.batch_id for r in reversed(runs)))
    assert cli.main(["diff", batches[0], batches[1], "-q", "--history", str(history)]) == 0
    assert cli.main(["diff", batches[1], batches[2], "--history", str(history)]) == 0
    out = capsys.readouterr().out
    assert "b.example dns.mx: COMPLETED -> not run; 1 finding(s) not compared" in out
    assert "c.example dns.mx: not run -> COMPLETED; 1 finding(s) not compared" in out


def test_check_lab_runs_of_different_lab_specs_are_not_compared(tmp_path):
    from probes.cli import _what, build_parser

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("dmarc: 'v=DMARC1; p=none'\n")
    b.write_text("dmarc: 'v=DMARC1; p=reject'\n")

    def what(*argv):
        return _what(build_parser().parse_args(["check", *argv]))

    assert what("example.test") == "probes:*"
    assert what("--lab") == what("--lab") != what("--lab", "--lab-spec", str(a))
    assert what("--lab", "--lab-spec", str(a)) != what("--lab", "--lab-spec", str(b))
    assert what("--lab", "--lab-flavour", "postfix") != what("--lab")
    assert what("--lab", "--probe", "dns.*").startswith("probes:dns.* lab:")

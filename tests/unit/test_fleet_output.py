"""`check --domains` output that adds up: the summary, the per-domain lines, the Nagios and JSON
output and the Prometheus audit metrics count the same domains (probes.report.audit_summary);
a domain without MX is MX_MISSING, not transport DNS errors on top. Real CLI in a subprocess,
against a DNS server on loopback (tests/tiny_dns.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_dns import TinyDns

ROOT = Path(__file__).resolve().parents[2]

# nx.test: NXDOMAIN (MX_MISSING, SPF_MISSING: failing, no probe error)
# nullmx.test: a null MX and SPF: ok (smtp.mx SKIPPED)
# slow.test: its MX question times out: probe errors only (exit status 3)
# both.test: port 25 closed (PORT_CLOSED, fail) and its TXT question times out: both
RECORDS = {
    ("nullmx.test", "MX"): ["0 ."],
    ("nullmx.test", "TXT"): ['"v=spf1 -all"'],
    ("slow.test", "TXT"): ['"v=spf1 -all"'],
    ("both.test", "MX"): ["10 mx.both.test."],
    ("mx.both.test", "A"): ["127.0.0.1"],
}
SILENT = {("slow.test", "MX"), ("both.test", "TXT")}
DOMAINS = "nx.test\nnullmx.test\nslow.test\nboth.test\n"


@pytest.fixture(scope="module")
def dns_server():
    with TinyDns(RECORDS, silent=SILENT) as server:
        yield server.address


def mailprobe(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MAILPROBE_HISTORY", None)
    return subprocess.run(
        [sys.executable, "-m", "probes.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def audit(tmp_path: Path, resolver: str, *extra: str) -> subprocess.CompletedProcess[str]:
    names = tmp_path / "domains.txt"
    names.write_text(DOMAINS)
    argv = ["check", "--domains", str(names), "--resolver", resolver, "--dns-timeout", "1"]
    argv += ["--probe", "dns.mx", "--probe", "dns.spf", "--probe", "smtp.mx"]
    return mailprobe(*argv, *extra, cwd=tmp_path)


def test_the_summary_the_lines_nagios_json_and_prometheus_count_the_same_domains(
    tmp_path, dns_server
):
    prom = tmp_path / "prom"
    prom.mkdir()
    done = audit(
        tmp_path, dns_server, "--no-history", "--output", "text", "--prometheus-textfile", str(prom)
    )
    assert done.returncode == 1, done.stderr
    lines = dict(line.split("  ", 1) for line in done.stdout.splitlines())
    assert list(lines) == ["nx.test", "nullmx.test", "slow.test", "both.test"]
    errored = {d for d, rest in lines.items() if "errors: " in rest}
    assert errored == {"slow.test", "both.test"}
    assert lines["nx.test"] == "fail  MX_MISSING SPF_MISSING"  # no smtp.mx:DNS on top
    assert lines["nullmx.test"] == "info"
    assert lines["slow.test"].endswith("errors: dns.mx:TIMEOUT smtp.mx:TIMEOUT")
    assert lines["both.test"] == "fail  PORT_CLOSED  errors: dns.spf:TIMEOUT"
    summary = re.search(
        r"4 domains in [\d.]+s: (\d+) with findings at or above fail, (\d+) with probe errors"
        r" \((\d+) of them also with findings\), (\d+) ok; \d+ DNS queries",
        done.stderr,
    )
    assert summary, done.stderr
    failing, with_errors, both, ok = map(int, summary.groups())
    assert (failing, with_errors, both, ok) == (2, len(errored), 1, 1)
    assert failing + with_errors - both + ok == len(lines)

    metrics = (prom / "mailprobe_domains_domains.txt.prom").read_text()
    ident = '{domains="domains.txt"'
    assert f"mailprobe_audit_domains_with_probe_errors{ident}}} {with_errors}" in metrics
    assert f'mailprobe_audit_domains{ident},status="findings"}} {failing}' in metrics
    assert f'mailprobe_audit_domains{ident},status="ok"}} {ok}' in metrics
    assert f'mailprobe_audit_domains{ident},status="probe_error"}} {with_errors - both}' in metrics

    done = audit(tmp_path, dns_server, "--no-history", "--output", "json", "--format", "json")
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert {
        r["target"]["domain"] for r in reports if any(x["outcome"] == "ERROR" for x in r["results"])
    } == errored
    smtp = {
        r["target"]["domain"]: next(x for x in r["results"] if x["probe"] == "smtp.mx")
        for r in reports
    }
    assert smtp["nx.test"]["outcome"] == "SKIPPED"
    assert "nx.test does not exist" in smtp["nx.test"]["error_detail"]
    assert smtp["nullmx.test"]["outcome"] == "SKIPPED"
    assert "null MX" in smtp["nullmx.test"]["error_detail"]
    assert (smtp["slow.test"]["outcome"], smtp["slow.test"]["error"]) == ("ERROR", "TIMEOUT")

    done = audit(tmp_path, dns_server, "--no-history", "--output", "nagios", "--format", "nagios")
    assert done.returncode == 2  # CRITICAL
    first, *rest = done.stdout.splitlines()
    assert first.startswith("MAILPROBE CRITICAL - 4 domains: 2 critical, 0 warning, 1 unknown,")
    assert f"'with_probe_errors'={with_errors};;;0" in first
    assert {line.split()[1].rstrip(":") for line in rest if "could not run" in line} == errored


def test_a_single_domain_without_mx_is_mx_missing_without_transport_errors(tmp_path, dns_server):
    done = mailprobe(
        "check",
        "nx.test",
        "--resolver",
        dns_server,
        "--probe",
        "dns.mx",
        "--probe",
        "smtp.*",
        "--no-history",
        "--output",
        "out",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr  # MX_MISSING, and no probe error (not 3)
    report = json.loads(done.stdout)
    outcomes = {r["probe"]: r["outcome"] for r in report["results"]}
    assert outcomes.pop("dns.mx") == "COMPLETED"
    assert set(outcomes.values()) == {"SKIPPED"}, outcomes


def test_history_and_diff_take_a_batch_as_one_unit(tmp_path):
    """Two nights of `check --domains`: `history` lists each as one entry, `diff` without
    arguments compares them domain by domain (not one domain's runs)."""
    first = {
        ("a.test", "MX"): ["0 ."],
        ("a.test", "TXT"): ['"v=spf1 -all"'],
        ("b.test", "MX"): ["0 ."],
        ("c.test", "MX"): ["0 ."],
    }
    second = {**first, ("a.test", "TXT"): ['"v=spf1 ?all"'], ("c.test", "TXT"): ['"v=spf1 -all"']}
    second[("d.test", "MX")] = ["0 ."]
    history = ["--history", str(tmp_path / "h.sqlite")]

    def night(n: int, records: dict, domains: str) -> None:
        names = tmp_path / f"night{n}.txt"
        names.write_text(domains)
        with TinyDns(records) as server:
            argv = ["check", "--domains", str(names), "--resolver", server.address]
            argv += ["--probe", "dns.mx", "--probe", "dns.spf", "--output", f"out{n}", "-q"]
            done = mailprobe(*argv, *history, cwd=tmp_path)
        assert done.returncode == 1, done.stderr  # SPF_MISSING somewhere each night

    night(1, first, "a.test\nb.test\nc.test\n")
    night(2, second, "a.test\nc.test\nd.test\n")

    done = mailprobe("history", "--format", "json", *history, cwd=tmp_path)
    entries = json.loads(done.stdout)
    assert [(e["domains"], e["failing"], e["with_probe_errors"]) for e in entries] == [
        (3, 2, 0),  # a.test ?all (SPF_PERMISSIVE_ALL), d.test SPF_MISSING
        (3, 2, 0),  # b.test, c.test SPF_MISSING
    ]
    assert all(e["run_id"] == e["batch_id"] for e in entries)
    text = mailprobe("history", *history, cwd=tmp_path).stdout.splitlines()
    assert len(text) == 3 and "3 domains: 2 failing, 0 with probe errors" in text[1]

    done = mailprobe("diff", *history, cwd=tmp_path)
    assert done.returncode == 1  # a new fail finding: SPF_PERMISSIVE_ALL on a.test
    out = done.stdout.splitlines()
    older, newer = entries[1]["run_id"], entries[0]["run_id"]
    assert out[0].startswith(f"diff {older} -> {newer}: ")
    assert out[1] == "batches: 3 domains -> 3 domains; 2 compared, 1 added, 1 removed"
    assert "domains added: d.test" in out and "domains removed: b.test" in out
    per_domain = out[out.index("per domain:") + 1 :][:2]
    assert per_domain[0].startswith("  a.test: 1 new, 0 resolved, 1 changed")
    assert per_domain[1].startswith("  c.test: ") and " 1 resolved" in per_domain[1]
    doc = json.loads(mailprobe("diff", newer, "--format", "json", *history, cwd=tmp_path).stdout)
    assert (doc["run_a"], doc["run_b"]) == (older, newer)
    assert (doc["domains_added"], doc["domains_removed"]) == (["d.test"], ["b.test"])
    assert {d["domain"] for d in doc["per_domain"]} == {"a.test", "c.test"}
    assert {(e["domain"], e["code"]) for e in doc["resolved"]} == {("c.test", "SPF_MISSING")}

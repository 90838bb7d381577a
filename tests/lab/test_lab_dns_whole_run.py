"""All DNS probes together against the lab: clean, each question asked once, CLI modes."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

import pytest

from probes import cli, registry
from probes.model import Outcome, Severity
from probes.net import Net
from probes.net.dns import DnsClient, WireBackend, client_for
from probes.runner import run_probes

pytestmark = pytest.mark.lab


class RecordingBackend(WireBackend):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def resolve(self, name, rdtype):
        with self._lock:
            self.asked.append((name, rdtype))
        return super().resolve(name, rdtype)


def _dns_probes():
    return [cls() for cls in registry.select_probes(registry.load_probes(), ["dns.*"])]


def test_every_dns_probe_is_installed():
    ids = {cls.id for cls in registry.select_probes(registry.load_probes(), ["dns.*"])}
    assert {"dns.mx", "dns.ptr", "dns.spf", "dns.dkim", "dns.dmarc"} <= ids


def test_correct_lab_gives_no_warn_or_fail_and_every_probe_completes(lab_target):
    target = lab_target()
    results = run_probes(_dns_probes(), target, Net.for_target(target))
    problems = [
        (r.probe_id, f.code, f.message)
        for r in results
        for f in r.findings
        if f.severity >= Severity.WARN
    ]
    assert problems == []
    assert {r.probe_id: r.outcome for r in results} == {
        r.probe_id: Outcome.COMPLETED for r in results
    }


def test_no_question_is_asked_twice_in_a_run(lab_target, dns_lab):
    target = lab_target()
    ip, port = Net.for_target(target).resolver_addr()
    backend = RecordingBackend([(ip, port)], timeout=2.0)
    client = DnsClient(backend)
    run_probes(_dns_probes(), target, Net.for_target(target, dns_client=client))
    assert backend.asked, "the probes asked nothing"
    duplicates = {q for q in backend.asked if backend.asked.count(q) > 1}
    assert duplicates == set()
    assert client.stats.queries == len(backend.asked)


def test_check_domain_with_resolver_reports_query_count(dns_lab, tmp_path, capsys):
    info = dns_lab.info
    status = cli.main(
        [
            "check",
            info.domain,
            "--resolver",
            info.resolver,
            "--probe",
            "dns.*",
            "--selector",
            "mail",
            "--sending-ip",
            info.client_ips["authorized"],
            "--format",
            "json",
            "--output",
            str(tmp_path),
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert status == 0
    assert report["dns"]["queries"] > 0
    assert all(r["outcome"] == "COMPLETED" for r in report["results"])
    capsys.readouterr()


def test_check_domains_audits_each_domain_and_keeps_failures_apart(dns_lab, tmp_path, capsys):
    info = dns_lab.info
    listing = tmp_path / "domains.txt"
    # sub.example.test has no records of its own; not-served.example is REFUSED by the lab DNS.
    listing.write_text(f"{info.domain}\nsub.{info.domain}\nnot-served.example\n")
    out = tmp_path / "out"
    status = cli.main(
        [
            "check",
            "--domains",
            str(listing),
            "--resolver",
            info.resolver,
            "--probe",
            "dns.*",
            "--output",
            str(out),
            "--format",
            "json",
        ]
    )
    reports = [json.loads(line) for line in (out / "domains.jsonl").read_text().splitlines()]
    by_domain = {r["target"]["domain"]: r for r in reports}
    assert list(by_domain) == [info.domain, f"sub.{info.domain}", "not-served.example"]
    codes = {
        d: {f["code"] for res in r["results"] for f in res["findings"]}
        for d, r in by_domain.items()
    }
    assert "SPF_MISSING" in codes[f"sub.{info.domain}"]
    assert "SPF_MISSING" not in codes[info.domain]
    refused = by_domain["not-served.example"]["results"]
    assert any(r["outcome"] == "ERROR" and r["error"] == "DNS" for r in refused)
    assert status == 1
    capsys.readouterr()


def test_client_for_lab_resolver_answers(dns_lab):
    info = dns_lab.info
    ip, port = info.resolver.split(":")
    client = client_for((ip, int(port)), timeout=2.0)
    assert client.query(info.domain, "MX").records == ((10, f"mx.{info.domain}"),)


def test_each_declared_sending_ip_gets_its_spf_result(lab_target, run_probe, dns_lab):
    from probes.checks.dns_spf import DnsSpf

    info = dns_lab.info
    allowed, outsider = info.client_ips["authorized"], info.client_ips["unauthorized"]
    result = run_probe(DnsSpf(), lab_target(sending_ips=(allowed, outsider)))
    by_ip = {f.subject: f for f in result.findings if f.code.startswith("SPF_IP_")}
    assert by_ip[allowed].code == "SPF_IP_AUTHORIZED"
    assert by_ip[outsider].code == "SPF_IP_NOT_AUTHORIZED"
    assert by_ip[outsider].evidence["result"] == "fail"


def test_dns_findings_reproduce_lines_ask_the_same_question_with_dig(lab_target):
    """Every DNS finding's reproduce line is a dig command (dnsutils: installed by
    tools/bootstrap.sh) that gets an answer from the lab's resolver."""
    if shutil.which("dig") is None:
        pytest.skip("dig is not installed")
    target = lab_target()
    results = run_probes(_dns_probes(), target, Net.for_target(target))
    lines = {f.reproduce for r in results for f in r.findings if f.reproduce}
    assert lines
    for line in sorted(lines):
        assert line.startswith("dig "), line
        done = subprocess.run(
            line, shell=True, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
        # dig exits 9 when no server answered; 0 with an answer (+short: the records, if any)
        assert done.returncode == 0, (line, done.stdout[-400:], done.stderr)
        assert "timed out" not in done.stdout + done.stderr, line

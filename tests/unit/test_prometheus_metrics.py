"""Prometheus output the Prometheus way: `promtool check metrics` (Debian's `prometheus`) on
the metrics of a check, a scenario and a --domains audit, built in code and written by real
CLI runs against a DNS server on loopback; the textfile mode's fixed paths, atomic writes,
last success kept across failed runs, and its bad-input rules (exit 2 before any probing)."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from promtools import assert_promtool_clean, dns_server, zone
from test_report_renderers import STARTED, prometheus_samples, rendered, sample_report

from probes import cli
from probes.errors import UsageError
from probes.model import Outcome
from probes.report import prometheus_report
from probes.report.prometheus_report import HELP, AuditMetrics, run_exposition
from probes.report.prometheus_textfile import (
    check_directory,
    previous_success,
    textfile_name,
    write_textfile,
)
from probes.report.run import EXIT_FINDINGS, EXIT_PROBE_ERROR

HOSTILE_NAME = 'nightly "lab" \\ check\nline2 [exim+dovecot]'
DNS_PROBES = ["--probe", "dns.spf", "--probe", "dns.dmarc", "--probe", "dns.dkim"]
DNS_PROBES += ["--probe", "dns.mx", "--selector", "s1"]


def _helps(text: str) -> dict[str, str]:
    return {line.split(" ")[2]: line for line in text.splitlines() if line.startswith("# HELP ")}


def _audit(per_domain: bool) -> str:
    metrics = AuditMetrics((("domains", "customers.txt"),), per_domain=per_domain)
    ok = sample_report("a.example")
    ok = dataclasses.replace(
        ok, results=tuple(r for r in ok.results if r.outcome is not Outcome.ERROR)
    )
    metrics.add(ok, EXIT_FINDINGS)
    metrics.add(sample_report("b.example"), EXIT_FINDINGS)
    metrics.add(sample_report('c"\\.example'), EXIT_PROBE_ERROR)
    return metrics.text(STARTED.timestamp(), 42.0, None)


# --- promtool on reports built in code ------------------------------------------------------


def test_promtool_passes_the_prometheus_report_of_a_check():
    assert_promtool_clean(rendered(prometheus_report, sample_report()))


def test_promtool_passes_a_scenario_with_a_hostile_name():
    identity = (("scenario", HOSTILE_NAME), ("domain", "example.test"))
    assert_promtool_clean(run_exposition(sample_report(), identity, 1.0))


@pytest.mark.parametrize("per_domain", [False, True])
def test_promtool_passes_a_domains_audit(per_domain):
    assert_promtool_clean(_audit(per_domain))


def test_promtool_rejects_what_the_old_names_were():
    """The linter the tests rely on does catch the base-unit problems of the old output."""
    from promtools import promtool_check

    old = (
        "# HELP mailprobe_certificate_days_left d\n# TYPE mailprobe_certificate_days_left gauge\n"
        'mailprobe_certificate_days_left{domain="x"} 3\n'
    )
    done = promtool_check(old)
    assert done.returncode != 0 and 'base unit "seconds"' in done.stdout + done.stderr


# --- what the metrics say --------------------------------------------------------------------


def test_audit_counts_by_code_and_severity_without_a_series_per_domain():
    text = _audit(per_domain=False)
    assert "domain=" not in text
    assert (
        'mailprobe_audit_findings{domains="customers.txt",code="DKIM_KEY_WEAK",severity="warn",'
        'probe="dns.dkim"} 3' in text
    )
    assert 'mailprobe_audit_findings_by_severity{domains="customers.txt",severity="fail"} 9' in text
    assert 'mailprobe_audit_domains{domains="customers.txt",status="findings"} 2' in text
    assert 'mailprobe_audit_domains{domains="customers.txt",status="probe_error"} 1' in text
    assert 'mailprobe_audit_domains{domains="customers.txt",status="ok"} 0' in text
    # b.example failed and had a probe error: counted with the findings AND with the errors
    assert 'mailprobe_audit_domains_with_probe_errors{domains="customers.txt"} 2' in text
    assert (
        'mailprobe_audit_probe_outcomes{domains="customers.txt",probe="pop3.tls",outcome="ERROR"} 2'
        in text
    )
    assert 'mailprobe_up{domains="customers.txt"} 1' in text  # a.example ran without errors
    assert 'mailprobe_run_duration_seconds{domains="customers.txt"} 42' in text


def test_audit_per_domain_series_when_asked():
    text = _audit(per_domain=True)
    for domain in ("a.example", "b.example", 'c\\"\\\\.example'):
        assert (
            f'mailprobe_findings_by_severity{{domains="customers.txt",domain="{domain}",'
            'severity="fail"} 3' in text
        )
    # the whole audit's counts stay under their own names: summing never counts twice
    assert not re.search(r'^mailprobe_findings\{domains="customers.txt",code', text, re.M)


def test_audit_is_down_when_no_domain_could_be_probed():
    metrics = AuditMetrics((("domains", "d.txt"),))
    metrics.add(sample_report("a.example"), EXIT_PROBE_ERROR)  # pop3.tls ended in ERROR
    text = metrics.text(STARTED.timestamp(), 1.0, 123.0)
    assert 'mailprobe_up{domains="d.txt"} 0' in text
    assert 'mailprobe_last_success_timestamp_seconds{domains="d.txt"} 123' in text


def test_one_help_text_per_name_whatever_the_run():
    """node_exporter refuses a metric whose HELP differs between the files it reads."""
    texts = [
        rendered(prometheus_report, sample_report()),
        run_exposition(sample_report(), (("scenario", "s"), ("domain", "d")), None),
        _audit(per_domain=True),
    ]
    seen: dict[str, str] = {}
    for text in texts:
        for name, line in _helps(text).items():
            assert name in HELP
            assert seen.setdefault(name, line) == line


def test_last_success_is_kept_from_before_when_this_run_failed():
    report = sample_report()  # pop3.tls ended in ERROR: not a success
    samples = prometheus_samples(report)
    assert ("mailprobe_last_success_timestamp_seconds", frozenset()) not in samples
    text = run_exposition(report, (("domain", "example.test"),), 1700000000.5)
    assert 'mailprobe_up{domain="example.test"} 0' in text
    assert 'mailprobe_last_success_timestamp_seconds{domain="example.test"} 1700000000.5' in text


# --- textfile mode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("check", "example.com", "mailprobe_check_example.com.prom"),
        ("scenario", "lab-ok[exim+dovecot]", "mailprobe_scenario_lab-ok-exim-dovecot.prom"),
        ("domains", "customers.txt", "mailprobe_domains_customers.txt.prom"),
        ("scenario", "../../etc/passwd", "mailprobe_scenario_etc-passwd.prom"),
        ("scenario", "///", "mailprobe_scenario_unnamed.prom"),
    ],
)
def test_textfile_names(kind, name, expected):
    assert textfile_name(kind, name) == expected


def test_previous_success_reads_only_the_same_identity(tmp_path):
    path = tmp_path / "mailprobe_check_x.prom"
    assert previous_success(path, (("domain", "x"),)) is None  # no file yet
    path.write_text(
        'mailprobe_last_success_timestamp_seconds{domain="y"} 5\n'
        'mailprobe_last_success_timestamp_seconds{domain="x"} 7.25\n'
    )
    assert previous_success(path, (("domain", "x"),)) == 7.25
    assert previous_success(path, (("domain", "z"),)) is None
    path.write_text('mailprobe_last_success_timestamp_seconds{domain="x"} NaN\n')
    assert previous_success(path, (("domain", "x"),)) is None


def test_textfile_is_replaced_atomically_and_leaves_no_temporary_file(tmp_path):
    identity = (("domain", "x"),)
    seen = []
    write_textfile(tmp_path, "mailprobe_check_x.prom", identity, lambda last: "a 1\n")
    inode = (tmp_path / "mailprobe_check_x.prom").stat().st_ino

    def render(last):
        seen.append(last)
        # while the new file is written the old one is still whole at its path
        assert (tmp_path / "mailprobe_check_x.prom").read_text() == "a 1\n"
        return 'mailprobe_last_success_timestamp_seconds{domain="x"} 9\n'

    write_textfile(tmp_path, "mailprobe_check_x.prom", identity, render)
    assert seen == [None]
    assert sorted(os.listdir(tmp_path)) == ["mailprobe_check_x.prom"]
    assert (tmp_path / "mailprobe_check_x.prom").stat().st_ino != inode  # renamed over


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        return Path("/proc")  # root writes anywhere but there
    path = tmp_path / "ro"
    path.mkdir(mode=0o500)
    return path


def test_check_directory_refuses_missing_file_and_unwritable(tmp_path):
    (tmp_path / "file").write_text("")
    for bad, why in (
        (tmp_path / "nope", "no such directory"),
        (tmp_path / "file", "not a directory"),
        (_unwritable(tmp_path), "cannot write there"),
    ):
        with pytest.raises(UsageError, match=f"--prometheus-textfile .*{why}"):
            check_directory(bad)
    assert check_directory(tmp_path) == tmp_path
    assert os.listdir(tmp_path) == ["file"]  # the probe file is gone


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def dns():
    other = zone("other.test", bits=1024)
    del other[("_dmarc.other.test", "TXT")]  # a fail finding for other.test
    with dns_server(zone("example.test") | other) as (addr, server):
        yield addr, server


def _scenario(tmp_path: Path, resolver: str) -> Path:
    path = tmp_path / "nightly.yaml"
    path.write_text(
        "name: nightly dns\n"
        "target:\n"
        "  domain: example.test\n"
        f"  resolver: {resolver}\n"
        "  selectors: [s1]\n"
        "probes: [dns.spf, dns.dmarc, dns.dkim, dns.mx]\n"
        "expect:\n"
        "  max_severity: fail\n"
    )
    return path


def _domains_file(tmp_path: Path) -> Path:
    path = tmp_path / "customers.txt"
    path.write_text("example.test\nother.test\n")
    return path


@pytest.mark.parametrize("mode", ["check", "domains", "run"])
def test_unwritable_textfile_directory_exits_2_before_any_probing(tmp_path, dns, capsys, mode):
    addr, server = dns
    bad = str(_unwritable(tmp_path))
    common = ["--no-history", "--output", str(tmp_path / "out"), "--prometheus-textfile", bad]
    if mode == "check":
        argv = ["check", "example.test", "--resolver", addr, *DNS_PROBES, *common]
    elif mode == "domains":
        argv = ["check", "--domains", str(_domains_file(tmp_path)), "--resolver", addr]
        argv += ["--processes", "1", *common]
    else:
        argv = ["run", str(_scenario(tmp_path, addr)), *common]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--prometheus-textfile" in err and bad in err
    assert server.queries == 0


def test_per_domain_goes_with_domains_and_a_textfile(tmp_path, capsys):
    assert cli.main(["check", "example.test", "--prometheus-per-domain"]) == 2
    assert "--prometheus-per-domain goes with --domains" in capsys.readouterr().err
    domains = str(_domains_file(tmp_path))
    assert cli.main(["check", "--domains", domains, "--prometheus-per-domain"]) == 2
    assert "goes with --prometheus-textfile" in capsys.readouterr().err


def test_check_writes_its_textfile_and_keeps_the_last_success(tmp_path, dns):
    addr, server = dns
    argv = ["check", "example.test", "--resolver", addr, *DNS_PROBES, "--no-history", "-q"]
    argv += ["--output", str(tmp_path / "out"), "--prometheus-textfile", str(tmp_path)]
    assert cli.main(argv) == 0
    path = tmp_path / "mailprobe_check_example.test.prom"
    text = path.read_text()
    assert_promtool_clean(text)
    assert 'mailprobe_up{domain="example.test"} 1' in text
    assert (
        'mailprobe_dkim_key_size{domain="example.test",selector="s1",key_type="rsa"} 2048' in text
    )
    success = previous_success(path, (("domain", "example.test"),))
    assert success is not None

    server.refuse = True  # the next run cannot ask anything: every probe ends in ERROR
    assert cli.main(argv) == 3
    text = path.read_text()
    assert_promtool_clean(text)
    assert 'mailprobe_up{domain="example.test"} 0' in text
    assert previous_success(path, (("domain", "example.test"),)) == success
    last_run = re.search(
        r'^mailprobe_last_run_timestamp_seconds\{domain="example.test"\} (\S+)$', text, re.M
    )
    assert last_run and float(last_run.group(1)) > success
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mailprobe_check_example.test.prom",
        "out",
    ]


def test_run_writes_a_textfile_per_scenario(tmp_path, dns):
    addr, _ = dns
    argv = ["run", str(_scenario(tmp_path, addr)), "--no-history", "-q"]
    argv += ["--output", str(tmp_path / "out"), "--prometheus-textfile", str(tmp_path)]
    assert cli.main(argv) == 0
    text = (tmp_path / "mailprobe_scenario_nightly-dns.prom").read_text()
    assert_promtool_clean(text)
    assert 'mailprobe_up{scenario="nightly dns",domain="example.test"} 1' in text


@pytest.mark.parametrize("per_domain", [False, True])
def test_domains_audit_writes_one_textfile(tmp_path, dns, per_domain):
    addr, _ = dns
    argv = ["check", "--domains", str(_domains_file(tmp_path)), "--resolver", addr, *DNS_PROBES]
    argv += ["--no-history", "-q", "--processes", "1", "--output", str(tmp_path / "out")]
    argv += ["--prometheus-textfile", str(tmp_path)]
    if per_domain:
        argv.append("--prometheus-per-domain")
    assert cli.main(argv) == 1  # other.test has no DMARC record, and a 1024-bit key
    text = (tmp_path / "mailprobe_domains_customers.txt.prom").read_text()
    assert_promtool_clean(text)
    assert 'mailprobe_audit_domains{domains="customers.txt",status="findings"} 1' in text
    assert 'mailprobe_audit_domains{domains="customers.txt",status="ok"} 1' in text
    assert (
        'mailprobe_audit_findings{domains="customers.txt",code="DMARC_MISSING",severity="fail",'
        'probe="dns.dmarc"} 1' in text
    )
    assert ('domain="other.test"' in text) is per_domain
    if per_domain:
        assert (
            'mailprobe_dkim_key_size{domains="customers.txt",domain="other.test",selector="s1",'
            'key_type="rsa"} 1024' in text
        )


def test_run_keeps_scenarios_of_one_name_apart(tmp_path, dns):
    """Two files may name a scenario alike: their metrics must not be the same series."""
    addr, _ = dns
    first = _scenario(tmp_path, addr)
    (tmp_path / "again").mkdir()
    second = _scenario(tmp_path / "again", addr)
    argv = ["run", str(first), str(second), "--no-history", "-q"]
    argv += ["--output", str(tmp_path / "out"), "--prometheus-textfile", str(tmp_path)]
    assert cli.main(argv) == 0
    one = (tmp_path / "mailprobe_scenario_nightly-dns.prom").read_text()
    two = (tmp_path / "mailprobe_scenario_nightly-dns-2.prom").read_text()
    assert 'mailprobe_up{scenario="nightly dns",domain="example.test"} 1' in one
    assert 'mailprobe_up{scenario="nightly dns (2)",domain="example.test"} 1' in two

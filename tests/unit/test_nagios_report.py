"""`--format nagios`: the plugin output of probes.report.nagios_report (state, first line,
perfdata syntax, long output) and the CLI's exit statuses in that format (0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN; usage errors UNKNOWN in one line, before any probing)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from tiny_dns import TinyDns

from probes import cli
from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target, Thresholds
from probes.report.nagios_report import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    render,
    render_many,
    state_of,
)
from probes.report.run import RunReport

# 'label'=value[UOM];[warn];[crit];[min];[max] (monitoring-plugins development guidelines)
RANGE = r"@?(~|-?[0-9.]+)?:?(-?[0-9.]+)?"
PERF = re.compile(
    rf"'[^'=]+'=-?[0-9.]+(s|%|B|KB|MB|TB|c|us|ms)?(;({RANGE})?){{0,2}}(;-?[0-9.]*){{0,2}}"
)


def finding(code, severity, probe="dns.x", subject=None, **evidence):
    return Finding(probe, code, severity, f"{code} | message", evidence=evidence, subject=subject)


def result(probe_id, *findings, outcome=Outcome.COMPLETED, error=None, duration=0.25):
    return ProbeResult(
        probe_id, outcome, tuple(findings), error=error, error_detail=None, duration_s=duration
    )


def report(*results, thresholds=None):
    target = Target("example.com", thresholds=thresholds or Thresholds())
    return RunReport("r1", target, datetime(2026, 1, 1, tzinfo=UTC), 1.5, results)


def output(rep) -> list[str]:
    stream = io.StringIO()
    render(rep, stream)
    return stream.getvalue().splitlines()


ERROR = result("smtp.mx", outcome=Outcome.ERROR, error=ErrorReason.TIMEOUT)


@pytest.mark.parametrize(
    ("results", "state"),
    [
        ((result("dns.spf", finding("SPF_LOOKUP_COUNT", Severity.INFO)),), OK),
        ((result("dns.spf", finding("SPF_NO_ALL", Severity.WARN)),), WARNING),
        ((result("dns.spf", finding("SPF_MISSING", Severity.FAIL)),), CRITICAL),
        ((result("dns.spf", finding("SPF_NO_ALL", Severity.WARN)), ERROR), UNKNOWN),
        ((ERROR,), UNKNOWN),
        # a confirmed fail is not hidden behind a probe that could not run
        ((result("dns.spf", finding("SPF_MISSING", Severity.FAIL)), ERROR), CRITICAL),
        ((result("dns.x", outcome=Outcome.SKIPPED), result("dns.spf")), OK),
        ((result("dns.x", outcome=Outcome.SKIPPED),), UNKNOWN),  # nothing was checked
    ],
)
def test_state_follows_the_guidelines(results, state):
    rep = report(*results)
    assert state_of(rep) == state
    first = output(rep)[0]
    assert first.startswith(f"MAILPROBE {('OK', 'WARNING', 'CRITICAL', 'UNKNOWN')[state]} - ")


def test_first_line_perfdata_and_long_output():
    rep = report(
        result(
            "smtp.mx",
            finding("CERT_EXPIRING_SOON", Severity.WARN, "smtp.mx", "mx.example.com:25",
                    days_left="9"),
            finding("CERT_OK", Severity.INFO, "smtp.mx", "mx2.example.com:25", days_left="80"),
            duration=0.5,
        ),
        result("dns.dkim", finding("DKIM_KEY_OK", Severity.INFO, "dns.dkim", "s1",
                                   selector="s1", bits="2048", key_type="rsa"),
               finding("DKIM_KEY_AGE", Severity.INFO, "dns.dkim", "s20240101",
                       age_days="400")),
        result("dns.spf", finding("SPF_LOOKUP_COUNT", Severity.INFO, "dns.spf", "example.com",
                                  count="3")),
        thresholds=Thresholds(
            cert_days_warn="30:", cert_days_crit="7:", spf_lookups_warn="8",
            dkim_key_age_warn="~:365",
        ),
    )  # fmt: skip
    lines = output(rep)
    head, _, perf = lines[0].partition(" | ")
    assert head == ("MAILPROBE WARNING - example.com: 3 probes, 0 fail, 1 warn: CERT_EXPIRING_SOON")
    items = perf.split(" ")
    assert [i for i in items if not PERF.fullmatch(i)] == []
    assert "'cert_days_mx.example.com:25'=9;30:;7:" in items
    assert "'cert_days_mx2.example.com:25'=80;30:;7:" in items
    assert "'dkim_bits_s1'=2048;2048:;1024:;0" in items
    assert "'spf_lookups'=3;8;10;0" in items
    assert "'dkim_age_days_s20240101'=400;~:365;;0" in items
    assert "'time_smtp.mx'=0.5s;;;0" in items and "'time'=1.5s;;;0" in items
    assert "'warn'=1;0;;0" in items and "'fail'=0;;0;0" in items
    # the message's "|" would cut the output for the core: never in the text
    assert lines[1:] == ["[WARN] CERT_EXPIRING_SOON smtp.mx: CERT_EXPIRING_SOON / message"]


def test_expired_certificate_is_critical_with_the_default_critical_range():
    rep = report(
        result("smtp.mx", finding("CERT_EXPIRED", Severity.FAIL, "smtp.mx", "mx:25",
                                  days_left="-3"))
    )  # fmt: skip
    first = output(rep)[0]
    assert first.startswith("MAILPROBE CRITICAL - ") and "'cert_days_mx:25'=-3;21:;0:" in first


def test_unknown_names_the_probes_that_could_not_run():
    rep = report(result("dns.spf"), ERROR)
    lines = output(rep)
    assert lines[0].startswith(
        "MAILPROBE UNKNOWN - example.com: 2 probes, 0 fail, 0 warn, 1 could not run: "
        "smtp.mx TIMEOUT | "
    )
    assert "'probe_errors'=1;;;0" in lines[0]
    assert lines[1] == "[ERROR] smtp.mx: TIMEOUT"


def test_many_runs_in_one_output():
    ok = report(result("dns.spf"))
    bad = report(result("dns.spf", finding("SPF_MISSING", Severity.FAIL)))
    stream = io.StringIO()
    state = render_many([("a.test", OK, ok), ("b.test", CRITICAL, bad)], stream, what="domains")
    lines = stream.getvalue().splitlines()
    assert state == CRITICAL
    assert lines[0].startswith(
        "MAILPROBE CRITICAL - 2 domains: 1 critical, 0 warning, 0 unknown, 1 ok | 'domains'=2;;;0"
    )
    assert "'critical'=1;;0;0" in lines[0] and "'findings_fail'=1;;;0" in lines[0]
    assert lines[1:] == ["CRITICAL b.test: example.com: 1 probes, 1 fail, 0 warn: SPF_MISSING"]


# ----- the CLI ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--cert-days-warn", "21"], "usage: --cert-days-warn: '21' would alert"),
        (["--spf-lookups-crit", "9:1"], "usage: --spf-lookups-crit: "),
        (["--no-such-option"], "usage: unrecognized arguments: --no-such-option"),
        (["--max-per-host", "x"], "usage: argument --max-per-host: invalid int value"),
        (["--fail-on", "bogus"], "usage: argument --fail-on: invalid choice"),
        (["--processes", "0", "--domains", "/nonexistent"], "usage: "),
    ],
)
def test_usage_errors_in_nagios_format_are_one_unknown_line(argv, needle, capsys, tmp_path):
    status = cli.main(
        ["check", "example.com", *argv, "--format", "nagios", "--output", str(tmp_path)]
        if "--domains" not in argv
        else ["check", *argv, "--format=nagios", "--output", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert status == 3
    assert out.count("\n") == 1 and out.startswith("MAILPROBE UNKNOWN - ")
    assert needle in out


def test_usage_errors_in_other_formats_keep_exit_2(capsys, tmp_path):
    assert cli.main(["check", "example.com", "--cert-days-warn", "21"]) == 2
    assert cli.main(["check", "example.com", "--format", "nope", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--format 'nope': known formats are" in err and "nagios" in err
    assert capsys.readouterr().out == ""


def test_run_usage_error_in_nagios_format_is_unknown(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ntarget:\n  domain: example.com\n  thresholds: {cert_days_warn: '7'}\n")
    assert cli.main(["run", str(bad), "--format", "nagios", "--no-history"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("MAILPROBE UNKNOWN - usage: ")
    assert "field `target.thresholds.cert_days_warn`" in out


def test_run_in_nagios_format_is_one_plugin_output_for_all_scenarios(capsys, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: dead-resolver\n"
        "target: {domain: example.com, resolver: '127.0.0.1:9', timeouts: {dns: 0.5}}\n"
        "probes: [dns.spf]\n"
    )
    out_dir = tmp_path / "out"
    status = cli.main(
        ["run", str(path), "--format", "nagios", "--no-history", "--output", str(out_dir), "-q"]
    )
    lines = capsys.readouterr().out.splitlines()
    assert status == UNKNOWN
    assert lines[0].startswith("MAILPROBE UNKNOWN - 1 scenarios: 0 critical, 0 warning, 1 unknown")
    assert "'dead-resolver/probe_errors'=1;;;0" in lines[0]
    assert lines[1].startswith("UNKNOWN dead-resolver: example.com: 1 probes, 0 fail, 0 warn")
    assert (out_dir / "dead-resolver" / "report.nagios").is_file()


def test_domains_in_nagios_format_count_the_states(capsys, tmp_path):
    domains = tmp_path / "domains.txt"
    domains.write_text("good.test\nbad.test\n")
    records = {("good.test", "TXT"): ['"v=spf1 -all"'], ("bad.test", "A"): ["192.0.2.1"]}
    with TinyDns(records) as dns:
        status = cli.main(
            ["check", "--domains", str(domains), "--resolver", dns.address, "--probe", "dns.spf",
             "--processes", "1", "--format", "nagios", "--no-history",
             "--output", str(tmp_path / "out"), "-q"]
        )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert status == CRITICAL
    assert lines[0].startswith("MAILPROBE CRITICAL - 2 domains: 1 critical, 0 warning, 0 unknown")
    assert lines[1:] == ["CRITICAL bad.test: bad.test: 1 probes, 1 fail, 0 warn: SPF_MISSING"]

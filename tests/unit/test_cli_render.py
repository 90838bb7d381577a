"""RunReport.from_json (a stored report.json read back) and `mailprobe render`."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime

import pytest

from probes import cli, registry
from probes.cli_render import for_files
from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target, Thresholds
from probes.report.run import RunReport


def _report() -> RunReport:
    """Findings of every severity, volatile keys, an ERROR result, thresholds, new marks."""
    spf = [
        Finding("dns.spf", "SPF_MISSING", Severity.FAIL, "no SPF record", subject="example.test"),
        Finding(
            "dns.spf",
            "SPF_LOOKUP_COUNT",
            Severity.WARN,
            "9 lookups",
            evidence={"lookups": "9", "took_ms": "12"},
            reproduce="dig @127.0.0.1 example.test TXT",
            subject="example.test",
            volatile=frozenset({"took_ms"}),
        ),
        Finding("dns.spf", "SPF_INFO", Severity.INFO, "a note"),
    ]
    return RunReport(
        run_id="20261205T120000Z-abc123",
        target=Target(
            domain="example.test",
            mx_hosts=("mx.example.test",),
            selectors=("s1",),
            sending_ips=("192.0.2.1",),
            resolver="127.0.0.1:5353",
            ca_file="/tmp/ca.pem",
            dkim_keys=(("s1", "/keys/s1.pem"),),
            discover_selectors=True,
            thresholds=Thresholds(cert_days_warn="30:", cert_days_crit="7:"),
        ),
        started=datetime(2026, 12, 5, 12, 0, 0, 123456, tzinfo=UTC),
        duration_s=1.5,
        results=(
            ProbeResult("dns.spf", Outcome.COMPLETED, tuple(spf), duration_s=0.25),
            ProbeResult(
                "smtp.mx",
                Outcome.ERROR,
                error=ErrorReason.TIMEOUT,
                error_detail="run deadline reached",
                duration_s=3.0,
            ),
            ProbeResult("dns.mx", Outcome.SKIPPED),
        ),
        dns={"queries": 7, "cache_hits": 2, "failures": 1},
        new=frozenset({(0, 0), (0, 2)}),
    )


def test_from_json_round_trips_a_report_with_every_kind_of_finding():
    report = _report()
    data = report.to_json()
    back = RunReport.from_json(json.loads(json.dumps(data)))
    assert back.to_json() == data
    assert back.new == report.new
    assert back.is_new(back.results[0].findings[0])
    assert not back.is_new(back.results[0].findings[1])
    assert back.results[0].findings[1].volatile == frozenset({"took_ms"})
    assert back.results[1].error is ErrorReason.TIMEOUT
    # not compared with the history: no "new" keys, and none come back
    plain = RunReport.from_json(dataclasses.replace(report, new=None).to_json())
    assert plain.new is None and "new" not in json.dumps(plain.to_json())


@pytest.mark.parametrize(
    "data", [{"schema": 2}, {"schema": 1, "run_id": "x"}, [], {"schema": 1, "target": 3}]
)
def test_from_json_refuses_what_is_not_a_schema_1_report(data):
    with pytest.raises(ValueError, match="schema"):
        RunReport.from_json(data)


@pytest.mark.parametrize("fmt", sorted(registry.load_renderers()))
def test_render_gives_what_the_run_would_have_printed(fmt, tmp_path, capsys):
    report = _report()
    stored = tmp_path / "report.json"
    stored.write_text(json.dumps(report.to_json()), encoding="utf-8")
    expected, whole = io.StringIO(), io.StringIO()
    registry.load_renderers()[fmt](report, expected)
    file_renderers = for_files(registry.load_renderers())
    file_renderers[fmt](report, whole)  # a file holds the whole record (text: -v)
    assert cli.main(["render", str(stored), "--format", fmt]) == 0
    assert capsys.readouterr().out == expected.getvalue()
    out = tmp_path / "sub.out"
    assert cli.main(["render", str(stored), "--format", fmt, "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == whole.getvalue()
    assert capsys.readouterr().out == ""


def test_render_refuses_bad_input_with_exit_2(tmp_path, capsys):
    stored = tmp_path / "report.json"
    stored.write_text(json.dumps(_report().to_json()), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text('{"schema": 9}', encoding="utf-8")
    for argv, needle in [
        ([str(stored), "--format", "pdf"], "--format 'pdf': known formats are"),
        ([str(stored), "--format", "html,text"], "render writes one format"),
        ([str(tmp_path / "missing.json")], "missing.json"),
        ([str(bad)], "not JSON"),
        ([str(other)], "schema 9"),
    ]:
        assert cli.main(["render", *argv]) == 2
        captured = capsys.readouterr()
        assert needle in captured.err and captured.out == ""

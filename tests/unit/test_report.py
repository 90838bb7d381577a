import io
import json
import os
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from probes.errors import UsageError
from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target
from probes.report import RunReport, exit_status, json_report, new_run_id, text_report, write_report

STARTED = datetime(2026, 11, 21, 22, 15, 3, tzinfo=UTC)
TARGET = Target(domain="example.com", mx_hosts=("mx.example.com",), resolver="127.0.0.1:53")
RENDERERS = {"json": json_report.render, "text": text_report.render}


def _finding(code: str, severity: Severity, probe_id: str = "dns.spf") -> Finding:
    return Finding(
        probe_id=probe_id,
        code=code,
        severity=severity,
        message=f"{code} message",
        evidence={"count": "11"},
        reproduce="dig +short TXT example.com",
        subject="example.com",
    )


def _completed(probe_id: str, *findings: Finding) -> ProbeResult:
    return ProbeResult(probe_id=probe_id, outcome=Outcome.COMPLETED, findings=findings)


def _error(probe_id: str, reason: ErrorReason = ErrorReason.TIMEOUT) -> ProbeResult:
    return ProbeResult(
        probe_id=probe_id, outcome=Outcome.ERROR, error=reason, error_detail="TimeoutError: x"
    )


def _skipped(probe_id: str) -> ProbeResult:
    return ProbeResult(probe_id=probe_id, outcome=Outcome.SKIPPED, error_detail="no tool")


def _report(*results: ProbeResult) -> RunReport:
    return RunReport(
        run_id=new_run_id(STARTED),
        target=TARGET,
        started=STARTED,
        duration_s=1.5,
        results=tuple(results),
    )


FULL = _report(
    _completed(
        "dns.spf",
        _finding("SPF_TOO_MANY_LOOKUPS", Severity.FAIL),
        _finding("SPF_PTR_MECHANISM", Severity.WARN),
    ),
    _error("smtp.starttls"),
    _skipped("dns.dkim"),
)


# ----- JSON shape (docs/contract.md, schema 1) ----------------------------------------------


def test_json_has_schema_1_top_level_keys():
    data = FULL.to_json()
    assert data["schema"] == 1
    assert {"schema", "target", "started", "duration_s", "results"} <= set(data)
    assert isinstance(data["run_id"], str)
    assert isinstance(data["duration_s"], float)
    assert data["target"] == TARGET.to_json()


def test_json_started_is_iso_8601_utc():
    started = FULL.to_json()["started"]
    assert started.endswith(("Z", "+00:00"))
    assert datetime.fromisoformat(started.replace("Z", "+00:00")) == STARTED


def test_json_started_is_converted_to_utc():
    plus_two = STARTED.astimezone(timezone(timedelta(hours=2)))
    report = RunReport("r", TARGET, plus_two, 0.0, ())
    assert report.to_json()["started"].startswith("2026-11-21T22:15:03")


def test_naive_started_is_rejected():
    with pytest.raises(ValueError):
        RunReport("r", TARGET, datetime(2026, 1, 1), 0.0, ())


def test_json_results_have_contract_types():
    results = FULL.to_json()["results"]
    assert [r["probe"] for r in results] == ["dns.spf", "smtp.starttls", "dns.dkim"]
    for result in results:
        assert result["outcome"] in {"COMPLETED", "ERROR", "SKIPPED"}
        assert result["error"] in {None, *(r.value for r in ErrorReason)}
        assert isinstance(result["duration_s"], float)
        for finding in result["findings"]:
            assert isinstance(finding["code"], str)
            assert finding["severity"] in {"info", "warn", "fail"}
            assert isinstance(finding["message"], str)
            assert all(
                isinstance(k, str) and isinstance(v, str) for k, v in finding["evidence"].items()
            )
            assert finding["reproduce"] is None or isinstance(finding["reproduce"], str)
            assert finding["subject"] is None or isinstance(finding["subject"], str)
    assert results[1]["error"] == "TIMEOUT"


def test_json_renderer_writes_parseable_json_with_trailing_newline():
    stream = io.StringIO()
    json_report.render(FULL, stream)
    text = stream.getvalue()
    assert text.endswith("\n")
    assert json.loads(text) == FULL.to_json()


# ----- exit status ----------------------------------------------------------------------------


def test_exit_status_0_when_nothing_fails():
    assert exit_status(_report(_completed("dns.spf", _finding("X", Severity.WARN)))) == 0


def test_exit_status_0_with_no_probes():
    assert exit_status(_report()) == 0


def test_exit_status_1_on_fail_finding_even_with_errors():
    report = _report(_completed("dns.spf", _finding("X", Severity.FAIL)), _error("smtp.starttls"))
    assert exit_status(report) == 1


def test_exit_status_3_when_a_probe_errored_and_nothing_failed():
    assert exit_status(_report(_completed("dns.spf"), _error("smtp.starttls"))) == 3


def test_skipped_probe_is_not_an_error():
    assert exit_status(_report(_completed("dns.spf"), _skipped("dns.dkim"))) == 0


def test_exit_status_threshold_is_configurable():
    report = _report(_completed("dns.spf", _finding("X", Severity.WARN)))
    assert exit_status(report, fail_on=Severity.WARN) == 1
    assert exit_status(report, fail_on=Severity.FAIL) == 0
    info_only = _report(_completed("dns.spf", _finding("X", Severity.INFO)))
    assert exit_status(info_only, fail_on=Severity.WARN) == 0
    assert exit_status(info_only, fail_on=Severity.INFO) == 1


# ----- run ids ------------------------------------------------------------------------------


def test_run_id_is_utc_timestamp_and_random_hex():
    run_id = new_run_id(STARTED)
    assert re.fullmatch(r"20261121T221503Z-[0-9a-f]{6}", run_id)


def test_run_ids_sort_by_time():
    later = new_run_id(STARTED + timedelta(seconds=1))
    assert sorted([later, new_run_id(STARTED)])[1] == later


def test_run_id_without_time_uses_now():
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", new_run_id())


# ----- write_report -------------------------------------------------------------------------


def test_write_report_writes_one_file_per_format(tmp_path: Path):
    out = tmp_path / "reports" / "run1"
    paths = write_report(FULL, out, ["json", "text"], RENDERERS)
    assert paths == [out / "report.json", out / "report.txt"]
    assert json.loads((out / "report.json").read_text())["schema"] == 1
    assert (out / "report.txt").read_text().strip()
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.txt"]  # no temp files


def test_write_report_replaces_existing_file(tmp_path: Path):
    (tmp_path / "report.json").write_text("old")
    write_report(FULL, tmp_path, ["json"], RENDERERS)
    assert json.loads((tmp_path / "report.json").read_text())["schema"] == 1


def test_write_report_is_atomic_when_renderer_fails(tmp_path: Path):
    (tmp_path / "report.json").write_text("previous")

    def broken(report, stream):
        stream.write('{"half": ')
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        write_report(FULL, tmp_path, ["json"], {"json": broken})
    assert (tmp_path / "report.json").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_write_report_uses_os_replace(tmp_path: Path, monkeypatch):
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_report(FULL, tmp_path, ["json"], RENDERERS)
    [(src, dst)] = calls
    assert src.parent == dst.parent == tmp_path
    assert dst.name == "report.json"


def test_unwritable_output_dir_is_usage_error_naming_it(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "sub"
    with pytest.raises(UsageError, match=re.escape(str(out))):
        write_report(FULL, out, ["json"], RENDERERS)


def test_output_dir_that_is_a_file_is_usage_error(tmp_path: Path):
    out = tmp_path / "a-file"
    out.write_text("")
    with pytest.raises(UsageError, match=re.escape(str(out))):
        write_report(FULL, out, ["json"], RENDERERS)


def test_unknown_format_is_usage_error_listing_known_ones(tmp_path: Path):
    with pytest.raises(UsageError) as info:
        write_report(FULL, tmp_path / "out", ["json", "yaml"], RENDERERS)
    assert "yaml" in str(info.value)
    assert "json" in str(info.value) and "text" in str(info.value)
    assert not (tmp_path / "out").exists()


# ----- text renderer ------------------------------------------------------------------------


def _text(report: RunReport, **options) -> str:
    stream = io.StringIO()
    text_report.render(report, stream, **options)
    return stream.getvalue()


def test_text_report_with_no_probes_says_so():
    text = _text(_report())
    assert "no probes" in text
    assert "0 probes" in text


def test_text_report_verbose_lists_every_probe_and_finding_code():
    text = _text(FULL, verbose=True)
    for probe_id in ("dns.spf", "smtp.starttls", "dns.dkim"):
        assert probe_id in text
    for code in ("SPF_TOO_MANY_LOOKUPS", "SPF_PTR_MECHANISM"):
        assert code in text
    assert "dig +short TXT example.com" in text
    assert "TIMEOUT" in text


def test_text_report_lists_fail_findings_before_warn():
    text = _text(FULL)
    assert text.index("SPF_TOO_MANY_LOOKUPS") < text.index("SPF_PTR_MECHANISM")


def test_text_report_ends_with_tally():
    last = _text(FULL).strip().splitlines()[-1]
    numbers = [int(n) for n in re.findall(r"\d+", last)]
    assert numbers == [3, 1, 1, 1, 1, 1, 0]

"""Scenarios against the real lab: the shipped self-test scenarios pass under `mailprobe run`
and under pytest, a failing one shows its findings, and a known password never leaks.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
from pathlib import Path

import pytest

import probes.pytest_plugin
from probes import registry, scenario_run
from probes.cli_run import _slug, register
from probes.lab.flavours import FLAVOURS_ENV, MATRIX
from probes.pytest_scenarios import ScenarioFailed
from probes.report.output import write_report
from probes.scenario import Expect, load_text
from probes.scenario_run import describe, run_scenario

pytestmark = pytest.mark.lab
pytest_plugins = ["pytester"]

REPO = Path(__file__).parents[2]
LAB_SCENARIOS = REPO / "scenarios" / "selftest"
LOGIN_ENV = "MAILPROBE_TEST_SCENARIO_LOGIN"


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mailprobe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["run", *argv])
    return args.func(args)


def texts_under(directory: Path) -> dict[str, str]:
    return {str(p): p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file()}


def test_shipped_lab_scenarios_pass_under_mailprobe_run(tmp_path, capsys, monkeypatch):
    seen_secrets: list[str] = []
    original = scenario_run._run

    def recording_run(scenario, target, secrets, **when):
        seen_secrets.extend(secrets)
        return original(scenario, target, secrets, **when)

    monkeypatch.setattr(scenario_run, "_run", recording_run)
    files = sorted(str(p) for p in LAB_SCENARIOS.glob("*.yaml"))
    out = tmp_path / "reports"
    status = run_cli(*files, "--output", str(out), "--format", "text")
    captured = capsys.readouterr()
    assert status == 0, captured.out
    # Every shipped scenario runs on every flavour of the matrix (lab_flavours: all).
    names = [
        f"{n}[{f}]"
        for n in ("lab-blocklisted", "lab-correct", "lab-expired-cert", "lab-open-relay")
        for f in MATRIX
    ]
    assert sorted(line.split()[1] for line in captured.out.splitlines()) == sorted(names)
    assert all(line.startswith("PASS") for line in captured.out.splitlines())
    assert sorted(p.name for p in out.iterdir()) == sorted(_slug(n) for n in names)
    # Each lab had its own throwaway password; none of them is in any output.
    assert len(seen_secrets) == len(names)
    outputs = {"stdout": captured.out, "stderr": captured.err, **texts_under(out)}
    for secret in seen_secrets:
        assert [name for name, text in outputs.items() if secret in text] == []


def test_shipped_lab_scenarios_pass_under_pytest_and_a_failing_one_shows_its_findings(
    pytester: pytest.Pytester, monkeypatch
):
    scenarios = pytester.path / "scenarios" / "selftest"
    scenarios.mkdir(parents=True)
    shutil.copy(LAB_SCENARIOS / "correct.yaml", scenarios)
    (scenarios / "wrong.yaml").write_text(
        "name: expired-but-expected-clean\nlab_spec:\n  tls: {certificate: expired}\n"
        "probes: [smtp.mx]\nexpect: {max_severity: info}\n"
    )
    extra = (
        []
        if hasattr(probes.pytest_plugin, "pytest_collect_file")
        else ["-p", "probes.pytest_scenarios"]
    )
    monkeypatch.setenv(FLAVOURS_ENV, "exim+dovecot")  # correct.yaml runs on that cell only
    result = pytester.runpytest(*extra, "-p", "no:cacheprovider", "-m", "lab")
    result.assert_outcomes(passed=1, failed=1)
    text = "\n".join(result.outlines)
    assert "expectation failed: findings above max_severity info: CERT_EXPIRED" in text
    header = next(line for line in result.outlines if line.startswith("CODE "))
    assert header.split() == ["CODE", "SEVERITY", "SUBJECT", "MESSAGE"]
    row = next(line for line in result.outlines if line.startswith("CERT_EXPIRED "))
    assert row.split()[1:3] == ["fail", "mx.example.test:25"]


def test_a_known_password_appears_in_no_report_log_line_or_exception_text(
    mailprobe_lab, tmp_path, monkeypatch, caplog, capsys
):
    info = mailprobe_lab.info
    password = info.password
    (scenario,) = load_text(
        f"name: secret-keeping\nlab: true\ntarget:\n  credentials: env:{LOGIN_ENV}\n"
        "expect: {outcomes: COMPLETED}\n",
        "secret.yaml",
    )
    # An expectation that cannot hold, so that the failure text is produced as well. (The
    # loader refuses a code no probe declares, so it is set after loading.)
    scenario = dataclasses.replace(
        scenario, expect=Expect(codes=("NO_SUCH_CODE",), outcomes="COMPLETED")
    )
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(LOGIN_ENV, f"{info.user}:{password}")
    outcome = run_scenario(scenario, info)

    # The password was really used: every login and the round trip worked.
    codes = {f.code for f in outcome.findings}
    assert "AUTH_FAILED" not in codes
    completed = {r.probe_id for r in outcome.report.results if r.outcome.value == "COMPLETED"}
    assert {"message.roundtrip", "smtp.submission", "imap.tls", "pop3.tls"} <= completed
    assert outcome.report.target.credentials_ref == f"env:{LOGIN_ENV}"

    renderers = registry.load_renderers()
    paths = write_report(outcome.report, tmp_path / "out", list(renderers), renderers)
    assert len(paths) == len(renderers)
    failure = ScenarioFailed(outcome)
    with pytest.raises(ScenarioFailed) as excinfo:
        raise failure
    texts = {
        **texts_under(tmp_path / "out"),
        "log": caplog.text,
        "log messages": "\n".join(r.getMessage() for r in caplog.records),
        "exception": str(excinfo.value) + repr(excinfo.value),
        "traceback": str(excinfo.getrepr()),
        "describe": describe(outcome),
        "outcome repr": repr(outcome),
        "error details": "\n".join(r.error_detail or "" for r in outcome.report.results),
    }
    captured = capsys.readouterr()
    texts |= {"stdout": captured.out, "stderr": captured.err}
    assert "expected code(s) not found: NO_SUCH_CODE" in texts["describe"]
    assert [name for name, text in texts.items() if password in text] == []


def test_a_wrong_password_is_kept_out_of_every_text_too(mailprobe_lab, tmp_path, monkeypatch):
    info = mailprobe_lab.info
    wrong = info.password + "-wrong"
    (scenario,) = load_text(
        f"name: wrong-login\nlab: true\ntarget:\n  credentials: env:{LOGIN_ENV}\n"
        "probes: [smtp.submission, imap.tls]\nexpect: {absent: [AUTH_FAILED]}\n",
        "wrong.yaml",
    )
    monkeypatch.setenv(LOGIN_ENV, f"{info.user}:{wrong}")
    outcome = run_scenario(scenario, info)
    assert outcome.status == 1
    assert "AUTH_FAILED" in {f.code for f in outcome.findings}
    renderers = registry.load_renderers()
    write_report(outcome.report, tmp_path / "out", list(renderers), renderers)
    texts = {**texts_under(tmp_path / "out"), "failure": str(ScenarioFailed(outcome))}
    assert [name for name, text in texts.items() if wrong in text] == []

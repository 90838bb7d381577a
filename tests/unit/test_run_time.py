"""The time options of `check` (issue 14, item 5): --timeout and the four timeouts as the
scenario fields, checked by the one validation; --max-run-time, the whole run's deadline."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from probes import cli, registry
from probes.codes import Code, declare
from probes.model import ErrorReason, Finding, Outcome, Severity, Target, Timeouts
from probes.net import Net
from probes.probe import BaseProbe
from probes.report import EXIT_PROBE_ERROR, EXIT_USAGE
from probes.runner import RUN_DEADLINE, run_probes

pytestmark = pytest.mark.timeout(60)  # a hang guard, not a speed limit


def target_of(*options: str) -> Target:
    args = cli.build_parser().parse_args(["check", "example.test", *options])
    return cli._target_from_args(args, args.domain)


# ----- timeouts ------------------------------------------------------------------------------
def test_without_time_options_the_timeouts_are_the_defaults() -> None:
    assert target_of().timeouts == Timeouts()


def test_timeout_is_the_probe_budget_and_caps_the_others_at_a_third() -> None:
    assert target_of("--timeout", "9").timeouts == Timeouts(connect=3, io=3, dns=3, probe=9)
    # a large budget keeps the others at their defaults
    assert target_of("--timeout", "600").timeouts == Timeouts(connect=10, io=30, dns=5, probe=600)


def test_the_single_timeouts_win_over_what_timeout_derives() -> None:
    assert target_of("--timeout", "60", "--io-timeout", "5").timeouts == Timeouts(
        connect=10, io=5, dns=5, probe=60
    )
    assert target_of(
        "--connect-timeout", "1", "--io-timeout", "2", "--dns-timeout", "3", "--probe-timeout", "4"
    ).timeouts == Timeouts(connect=1, io=2, dns=3, probe=4)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--timeout", "0"], "--timeout: must be above 0 seconds"),
        (["--timeout", "nan"], "--timeout: must be above 0 seconds"),
        (["--timeout", "30", "--io-timeout", "-1"], "--io-timeout: must be above 0 seconds"),
        (["--connect-timeout", "inf"], "--connect-timeout: must be a finite number of seconds"),
        (["--dns-timeout", "0"], "--dns-timeout: must be above 0 seconds"),
        (["--probe-timeout", "0"], "--probe-timeout: must be above 0 seconds"),
        (["--max-run-time", "0"], "--max-run-time: must be a finite number of seconds above 0"),
    ],
)
def test_a_bad_time_is_exit_2_naming_its_option_before_probing(
    options: list[str], named: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = cli.main(
        ["check", "example.test", "--no-history", "--output", str(tmp_path), *options]
    )
    assert status == EXIT_USAGE
    assert named in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing ran, no report


def test_a_scenario_timeout_and_the_cli_go_through_the_same_validation() -> None:
    from probes.validate import checked_target

    _, problems = checked_target(Target(domain="example.test", timeouts=Timeouts(io=0)))
    assert problems == [("timeouts.io", "must be above 0 seconds")]
    assert cli._OPTIONS["timeouts.io"] == "--io-timeout"


# ----- the run's deadline ----------------------------------------------------------------------
RELEASE = threading.Event()  # set at the end of each test: the sleeping probes' threads end


@pytest.fixture(autouse=True)
def _release_sleepers() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()


class Quick(BaseProbe):
    id = "test.quick"
    description = "finishes at once"
    codes = declare(Code("TEST_DONE", "done", Severity.INFO))

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        yield self.finding("TEST_DONE", Severity.INFO, "done")


class Sleeper(BaseProbe):
    id = "test.sleeper"
    description = "sleeps until the test ends"
    codes = declare(Code("TEST_DONE", "done", Severity.INFO))

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        RELEASE.wait(50)
        yield self.finding("TEST_DONE", Severity.INFO, "late")


def test_the_run_deadline_ends_running_and_waiting_probes_as_timeouts() -> None:
    import time

    target = Target(domain="example.test")
    net = Net.for_target(target)
    probes = [Quick(), Sleeper(), Quick()]  # one at a time: the second Quick never starts
    results = run_probes(
        probes, target, net, max_workers=1, deadline=time.monotonic() + 0.5, run_limit=0.5
    )
    quick, running, waiting = results
    assert quick.outcome is Outcome.COMPLETED
    assert quick.findings[0].code == "TEST_DONE"
    for r in (running, waiting):
        assert (r.outcome, r.error) == (Outcome.ERROR, ErrorReason.TIMEOUT)
        assert RUN_DEADLINE in (r.error_detail or "")
    assert "abandoned" in (running.error_detail or "")
    assert "before it started" in (waiting.error_detail or "")
    assert net.endpoints.stopped == RUN_DEADLINE  # no new connection for the abandoned ones


def test_check_max_run_time_writes_the_report_and_exits_3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        registry, "load_probes", lambda: {"test.quick": Quick, "test.sleeper": Sleeper}
    )
    out = tmp_path / "report"
    status = cli.main(
        [
            "check",
            "example.test",
            "--probe",
            "test.*",
            "--max-run-time",
            "1",
            "--no-history",
            "--format",
            "json",
            "--output",
            str(out),
        ]
    )
    assert status == EXIT_PROBE_ERROR
    report = json.loads((out / "report.json").read_text())
    by_probe = {r["probe"]: r for r in report["results"]}
    assert by_probe["test.quick"]["outcome"] == "COMPLETED"
    sleeper = by_probe["test.sleeper"]
    assert (sleeper["outcome"], sleeper["error"]) == ("ERROR", "TIMEOUT")
    assert "run deadline reached (1 s for the whole run)" in sleeper["error_detail"]
    assert json.loads(capsys.readouterr().out)["run_id"] == report["run_id"]


def test_max_run_time_is_refused_with_domains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    domains = tmp_path / "domains.txt"
    domains.write_text("example.test\n")
    status = cli.main(
        [
            "check",
            "--domains",
            str(domains),
            "--max-run-time",
            "60",
            "--no-history",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert status == EXIT_USAGE
    assert "--max-run-time: not with --domains" in capsys.readouterr().err


# ----- `run`: the same options over every scenario ---------------------------------------------
SCENARIO = """\
name: sleepy
target:
  domain: example.test
  timeouts: {connect: 7, io: 20, dns: 4, probe: 100}
probes: ["test.*"]
expect:
  max_severity: fail
"""


def test_run_time_options_override_the_scenario_timeouts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from probes.cli_time import with_time_options

    monkeypatch.setattr(
        registry, "load_probes", lambda: {"test.quick": Quick, "test.sleeper": Sleeper}
    )
    from probes.scenario import load_paths

    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    (scenario,) = load_paths([str(path)])
    args = cli.build_parser().parse_args(["run", str(path), "--timeout", "9", "--dns-timeout", "1"])
    changed = with_time_options(scenario, args)
    assert changed.target.timeouts == Timeouts(connect=3, io=3, dns=1, probe=9)
    plain = cli.build_parser().parse_args(["run", str(path)])
    assert with_time_options(scenario, plain).target.timeouts == Timeouts(7, 20, 4, 100)


def test_run_a_bad_time_option_is_exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    status = cli.main(["run", str(path), "--io-timeout", "0", "--no-history"])
    assert status == EXIT_USAGE
    assert "--io-timeout: must be above 0 seconds" in capsys.readouterr().err


def test_run_max_run_time_ends_the_scenario_with_its_report_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        registry, "load_probes", lambda: {"test.quick": Quick, "test.sleeper": Sleeper}
    )
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    out = tmp_path / "out"
    status = cli.main(
        ["run", str(path), "--max-run-time", "1", "--no-history", "-q", "--output", str(out)]
    )
    assert status == EXIT_PROBE_ERROR
    report = json.loads((out / "sleepy" / "report.json").read_text())
    sleeper = {r["probe"]: r for r in report["results"]}["test.sleeper"]
    assert (sleeper["outcome"], sleeper["error"]) == ("ERROR", "TIMEOUT")
    assert RUN_DEADLINE in sleeper["error_detail"]

"""Using a running lab: `check --lab-name NAME`, `check --lab --keep-lab`, scenarios with
`lab: {name: NAME}`, and the reproduce lines of a lab that is gone.

Every command is a real `mailprobe` subprocess with its own state directory
($MAILPROBE_STATE_DIR under tmp_path), on the default flavour; every lab a test brings up is
brought down at the end, also when the test fails.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_lab_interrupts import (
    FINISHED,
    LINE_LATENCY_S,
    Moment,
    assert_nothing_left,
    containers_of,
    interrupt,
)

from probes.lab.containers import list_lab_containers, remove_lab_containers
from probes.lab.doctor import apply_env, ensure_docker_api
from probes.lab.state import LabState
from probes.lab.target import lab_target
from probes.report.removed_lab import LAB_REMOVED

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
NOTE = f"  # {LAB_REMOVED}"


@pytest.fixture(scope="module", autouse=True)
def engine():
    apply_env(ensure_docker_api())


@pytest.fixture
def state_dir(tmp_path, monkeypatch) -> Iterator[Path]:
    """This test's state directory (for the subprocesses and for LabState here); every lab
    left in it is brought down afterwards."""
    state = tmp_path / "state"
    monkeypatch.setenv("MAILPROBE_STATE_DIR", str(state))
    yield state
    labs = state / "labs"
    for left in sorted(labs.iterdir()) if labs.is_dir() else []:
        mailprobe("lab", "down", "--name", left.name)  # (never `--all`: other labs run too)


def mailprobe(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probes.cli", *argv],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def lab_up(name: str, flavour: str) -> None:
    up = mailprobe("lab", "up", "--name", name, "--flavour", flavour, "-q")
    assert up.returncode == 0, up.stderr


def lab_down(name: str) -> None:
    down = mailprobe("lab", "down", "--name", name)
    assert down.returncode == 0, down.stderr


def findings(report: dict) -> list[dict]:
    return [f | {"probe": r["probe"]} for r in report["results"] for f in r["findings"]]


def codes(report: dict) -> set[tuple[str, str, str]]:
    return {(f["probe"], f["code"], f["severity"]) for f in findings(report)}


def test_check_lab_name_probes_a_running_lab_as_check_lab_does(state_dir, tmp_path, flavour):
    lab_up("probed", flavour)
    try:
        named = mailprobe(
            "check", "--lab-name", "probed", "--no-history", "--format", "json",
            "--output", str(tmp_path / "named"),
        )  # fmt: skip
        assert named.returncode == 0, named.stderr
        report = json.loads(named.stdout)
        # The Target of `check --lab` for that lab (probes.lab.target.lab_target), as is.
        info = LabState("probed").load()
        assert report["target"] == lab_target(info).to_json()
        # The correct lab: no warn or fail finding, every probe completed; in particular no
        # false AUTHRES_SPF_NOT_PASS (the message is sent from the SPF-authorized client).
        assert {f["severity"] for f in findings(report)} == {"info"}, named.stdout
        assert {r["outcome"] for r in report["results"]} == {"COMPLETED"}
        assert "AUTHRES_SPF_NOT_PASS" not in {f["code"] for f in findings(report)}
        # The lab is still there: its reproduce lines carry no note.
        assert not any(NOTE in (f["reproduce"] or "") for f in findings(report))
        assert info.password not in named.stdout + named.stderr

        thrown = mailprobe(
            "check", "--lab", "--lab-flavour", flavour, "--no-history", "--format", "json",
            "--output", str(tmp_path / "thrown"),
        )  # fmt: skip
        assert thrown.returncode == 0, thrown.stderr
        throwaway = json.loads(thrown.stdout)
        assert codes(throwaway) == codes(report)
        assert [r["probe"] for r in throwaway["results"]] == [r["probe"] for r in report["results"]]
        # A throwaway lab is gone when the command ends: every reproduce line says so, in the
        # JSON on stdout and in every report file written.
        lines = [f["reproduce"] for f in findings(throwaway) if f["reproduce"]]
        assert lines and all(line.endswith(NOTE) for line in lines)
        text = (tmp_path / "thrown" / "report.json").read_text()
        assert text.count(LAB_REMOVED) == len(lines)
    finally:
        lab_down("probed")

    gone = mailprobe("check", "--lab-name", "probed", "--no-history", "--output", str(tmp_path))
    assert gone.returncode == 2
    assert gone.stderr.strip() == (
        "mailprobe: error: --lab-name probed: no lab 'probed' is up "
        "(start it with `mailprobe lab up --name probed`)"
    )
    assert gone.stdout == ""


def test_check_lab_name_refuses_a_lab_whose_containers_are_gone(state_dir, tmp_path, flavour):
    lab_up("hollow", flavour)
    try:
        lab_id = LabState("hollow").load().lab_id
        assert remove_lab_containers(lab_id)  # as if the engine restarted
        out = tmp_path / "out"
        check = mailprobe("check", "--lab-name", "hollow", "--no-history", "--output", str(out))
        assert check.returncode == 2, check.stderr
        assert "--lab-name hollow: lab 'hollow' does not answer (dns, mx, outbound" in check.stderr
        assert "`mailprobe lab down --name hollow`" in check.stderr
        assert not any(out.iterdir())  # refused before probing: no report
    finally:
        lab_down("hollow")


def test_keep_lab_keeps_the_lab_until_lab_down(state_dir, tmp_path, flavour):
    run = mailprobe(
        "check", "--lab", "--lab-flavour", flavour, "--keep-lab", "--no-history",
        "--probe", "dns.*", "--output", str(tmp_path / "kept"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    last = run.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("mailprobe lab down --name check-"), run.stdout
    name = last.split()[-1]
    state = LabState(name)
    assert state.exists() and oct(state.info_file.stat().st_mode & 0o777) == "0o600"
    info = state.load()
    assert info.password not in run.stdout + run.stderr
    try:
        # Still answering, its reproduce lines work (their CA file and keys are kept too).
        status = mailprobe("lab", "status", "--name", name)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads((tmp_path / "kept" / "report.json").read_text())
        lines = [f["reproduce"] or "" for f in findings(report)]
        digs = [line for line in lines if line.startswith("dig") and " TXT " in line]
        assert digs and not any(NOTE in line for line in digs)
        answer = subprocess.run(
            shlex.split(digs[0]), capture_output=True, text=True, timeout=30, check=True
        )
        assert answer.stdout.strip(), digs[0]
        again = mailprobe("check", "--lab-name", name, "--no-history", "--probe", "dns.*",
                          "--output", str(tmp_path / "again"))  # fmt: skip
        assert again.returncode == 0, again.stderr
    finally:
        lab_down(name)
    assert not state.root.exists()
    assert list_lab_containers(info.lab_id) == []


def test_keep_lab_with_a_name_refuses_a_name_already_up(state_dir, tmp_path, flavour):
    lab_up("taken", flavour)
    try:
        run = mailprobe("check", "--lab", "--keep-lab", "taken", "--no-history",
                        "--output", str(tmp_path))  # fmt: skip
        assert run.returncode == 2
        assert "--keep-lab taken: lab 'taken' is already up" in run.stderr
        assert "starting lab" not in run.stderr
    finally:
        lab_down("taken")


KEEP_TIMELINE = (
    Moment("starting lab", 0.1, (signal.SIGINT,)),
    Moment("ready in", 0.0, (signal.SIGTERM,)),
    Moment("ready in", 0.1, (signal.SIGINT, signal.SIGINT)),
    Moment("report written", 0.0, (signal.SIGINT,)),
)


@pytest.fixture
def reap():
    pids: list[int] = []
    yield pids
    for pid in pids:
        for container in containers_of(pid):
            container.remove(force=True)


@pytest.mark.parametrize("moment", KEEP_TIMELINE, ids=str)
def test_keep_lab_interrupted_before_the_run_finished_leaves_nothing(
    moment, state_dir, tmp_path, reap, flavour
):
    argv = ["check", "--lab", "--lab-flavour", flavour, "--keep-lab", "intr", "--no-history",
            "--output", str(tmp_path / "report")]  # fmt: skip
    run = interrupt(argv, moment, reap)
    state = LabState("intr")
    if run.status in (0, 1):  # it had finished: the lab is kept, as asked; then lab down
        assert FINISHED in run.read_at, run.stderr
        assert run.sent_at is None or run.read_at[FINISHED] < run.sent_at + LINE_LATENCY_S
        assert state.exists()
        lab_down("intr")
    else:
        assert run.status == 128 + run.sent[0], run.stderr
    assert not state.root.exists(), (run.status, run.sent, run.stderr)
    assert_nothing_left(run, finished=None)


SCENARIOS = """\
name: running-lab-authorized
lab: {name: scen}
probes: [dns.spf]
target:
  sending_ips: ["{lab.authorized}"]
expect:
  codes: [SPF_IP_AUTHORIZED]
  absent: [SPF_IP_NOT_AUTHORIZED]
  max_severity: info
  outcomes: COMPLETED
---
name: running-lab-unauthorized
lab: {name: scen}
probes: [dns.spf]
target:
  sending_ips: ["{lab.unauthorized}"]
expect:
  codes: [SPF_IP_NOT_AUTHORIZED]
  max_severity: fail
"""


def test_scenarios_probe_a_running_lab_and_name_its_addresses(state_dir, tmp_path, flavour):
    scenarios = tmp_path / "running.yaml"
    scenarios.write_text(SCENARIOS)
    out = tmp_path / "reports"
    lab_up("scen", flavour)
    try:
        run = mailprobe("run", str(scenarios), "--no-history", "--output", str(out))
        assert run.returncode == 0, run.stdout + run.stderr
        assert [line.split()[:2] for line in run.stdout.splitlines()] == [
            ["PASS", "running-lab-authorized"],
            ["PASS", "running-lab-unauthorized"],
        ]
        info = LabState("scen").load()
        for name, role in (("authorized", "authorized"), ("unauthorized", "unauthorized")):
            report = json.loads((out / f"running-lab-{name}" / "report.json").read_text())
            assert report["target"]["sending_ips"] == [info.client_ips[role]]
            assert report["target"]["domain"] == info.domain
        assert "starting lab" not in run.stderr  # the running lab, none of its own
    finally:
        lab_down("scen")
    gone = mailprobe("run", str(scenarios), "--no-history", "--output", str(out))
    assert gone.returncode == 2
    assert (
        f"{scenarios}:2: field `lab.name`: no lab 'scen' is up "
        "(start it with `mailprobe lab up --name scen`)"
    ) in gone.stderr

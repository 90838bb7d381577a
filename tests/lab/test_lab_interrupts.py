"""Ctrl-C and SIGTERM at many moments of real `mailprobe` commands leave nothing behind.

Each case starts a real `mailprobe check --lab` (on every lab flavour of the matrix), `run
SCENARIO` or `lab up` subprocess, waits for a progress line on its stderr (a moment of its
timeline), waits an offset more, and sends one or two signals. Afterwards: the exit status is
128 + the first signal (130 SIGINT, 143 SIGTERM), or 0/1 when the command had already finished
its report; the "everything started was stopped" line is printed exactly when interrupted; and
nothing of the run is left: no container of its lab, no listening socket in its 127.x.y block,
no lab directory (keys, password) in the temporary directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from probes.lab.containers import (
    LABEL_INSTANCE,
    LABEL_LAB,
    _docker_client,
    list_lab_containers,
)
from probes.lab.doctor import apply_env, ensure_docker_api

pytestmark = pytest.mark.lab
FLAVOURED = True  # tests taking `flavour` run once per lab flavour (tests/lab/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
SIGINT, SIGTERM = signal.SIGINT, signal.SIGTERM
ALL_STOPPED = "mailprobe: interrupted; everything started was stopped"
MARKER_TIMEOUT_S = 120.0  # the first start of a flavour may build nothing, but may be slow


@dataclass(frozen=True)
class Moment:
    """Send `signals` (`gap` s apart) `offset` s after the `nth` stderr line holding `marker`
    ("" = right after the process started)."""

    marker: str
    offset: float
    signals: tuple[int, ...]
    nth: int = 1
    gap: float = 0.03

    def __str__(self) -> str:
        names = "+".join(signal.Signals(s).name for s in self.signals)
        return f"{names}@{self.marker or 'spawn'}#{self.nth}+{self.offset:g}s"


# The timeline of `check --lab`: doctor and image, container creation (signals held), the
# readiness wait, probing (DNS, SMTP, the message round trip), the report, the teardown
# (signals held; Ctrl-C twice, SIGTERM then Ctrl-C).
CHECK_TIMELINE = (
    Moment("", 0.0, (SIGINT,)),
    Moment("Docker-compatible API", 0.0, (SIGTERM,)),
    Moment("starting lab", 0.0, (SIGINT,)),
    Moment("starting lab", 0.15, (SIGTERM,)),
    Moment("ready in", 0.0, (SIGINT,)),
    Moment("ready in", 0.2, (SIGTERM,)),
    Moment("ready in", 0.45, (SIGINT,)),
    Moment("report written", 0.0, (SIGTERM,)),
    Moment("stopping lab", 0.0, (SIGINT, SIGINT)),
    Moment("stopping lab", 0.05, (SIGTERM, SIGINT)),
    Moment("stopping lab", 0.12, (SIGINT, SIGINT)),
)
FINISHED = "mailprobe: report written"  # the command's work is done (then its teardown)
# A line reaches the test within this long of being written (pipe, thread; a loaded machine).
LINE_LATENCY_S = 0.5


@dataclass
class Run:
    moment: Moment
    pid: int
    status: int  # shell-style: death by signal N is 128 + N
    lines: list[str] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    sent_at: float | None = None  # time.monotonic() of the first signal
    read_at: dict[str, float] = field(default_factory=dict)  # first line with a text -> time

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    @property
    def lab_ids(self) -> list[str]:
        return [
            line.split("starting lab", 1)[1].split()[0]
            for line in self.lines
            if "starting lab" in line
        ]


def interrupt(
    argv: list[str],
    moment: Moment,
    reap: list[int],
    env: dict[str, str] | None = None,
    *,
    python: bool = False,
) -> Run:
    """Run `mailprobe ARGV` (`python ARGV`), signal it at `moment`, wait for it to end."""
    proc = subprocess.Popen(
        [sys.executable, *argv] if python else [sys.executable, "-m", "probes.cli", *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    reap.append(proc.pid)
    lines: list[str] = []
    read_at: dict[str, float] = {}
    seen = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        count = 0
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith(FINISHED):
                read_at.setdefault(FINISHED, time.monotonic())
            if moment.marker and moment.marker in line:
                count += 1
                if count == moment.nth:
                    seen.set()
        seen.set()  # the process ended (its stderr closed) before the marker

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent: list[int] = []
    sent_at = None
    try:
        if moment.marker:
            assert seen.wait(MARKER_TIMEOUT_S), f"{moment}: no {moment.marker!r} line"
        time.sleep(moment.offset)
        for i, signum in enumerate(moment.signals):
            if i:
                time.sleep(moment.gap)
            if proc.poll() is None:
                proc.send_signal(signum)
                sent.append(signum)
                sent_at = sent_at or time.monotonic()
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    status = 128 - status if status < 0 else status
    return Run(moment, proc.pid, status, lines, sent, sent_at, read_at)


def containers_of(pid: int) -> list[Any]:
    """The lab containers a process created (their instance label begins with its pid). One
    list request: labels of other tests' labs come and go meanwhile."""
    client = _docker_client()
    try:
        return [
            client.containers.prepare_model(found)
            for found in client.api.containers(all=True, filters={"label": LABEL_LAB})
            if (found.get("Labels") or {}).get(LABEL_INSTANCE, "").startswith(f"{pid}-")
        ]
    finally:
        client.close()


def listening_in(lab_id: str) -> list[str]:
    """TCP listeners and bound UDP sockets on this machine in the lab's 127.a.b.0/24 block."""
    prefix = lab_id.replace("-", ".") + "."
    found = []
    for table in ("tcp", "udp"):
        with open(f"/proc/net/{table}") as fh:
            next(fh)
            for row in fh:
                cols = row.split()
                hex_ip, hex_port = cols[1].split(":")
                ip = socket.inet_ntoa(bytes.fromhex(hex_ip)[::-1])
                if ip.startswith(prefix) and (table == "udp" or cols[3] == "0A"):
                    found.append(f"{table} {ip}:{int(hex_port, 16)}")
    return found


def _died_starting_python(run: Run) -> bool:
    return (
        run.status == 1
        and "Fatal Python error: init_import_site" in run.stderr
        and run.lines[-1:] == ["KeyboardInterrupt"]
    )


def assert_nothing_left(run: Run, *, finished: str | None = FINISHED) -> None:
    """The exit status, the last line, and that nothing of the run is left. `finished`: the
    stderr line that says the command's work is done (None: the caller judges that)."""
    sent = [signal.Signals(s).name for s in run.sent]
    where = f"{run.moment}: sent {sent}, exit {run.status}\n{run.stderr}"
    interrupted = any(line.startswith("mailprobe: interrupted") for line in run.lines)
    if run.sent and _died_starting_python(run):
        # A SIGINT while CPython itself starts (importing `site`, before any mailprobe code)
        # is its "Fatal Python error: init_import_site", exit 1: nothing was started.
        assert not any(line.startswith("mailprobe:") for line in run.lines), where
    elif run.sent and run.status == 128 + run.sent[0]:
        # Interrupted: it says so, and says nothing was left (unless it died before main()).
        assert ALL_STOPPED in run.lines or not any("mailprobe:" in x for x in run.lines), where
        if any("mailprobe:" in x for x in run.lines):
            assert "Traceback" not in run.stderr, where
    else:
        # Not interrupted: only because the command had finished, its report written before
        # the signal was sent (or as it was: a line takes a moment to reach us).
        assert run.status in (0, 1), where
        assert not interrupted, where
        if run.sent_at is not None and finished is not None:
            assert FINISHED in run.read_at, where
            assert run.read_at[FINISHED] < run.sent_at + LINE_LATENCY_S, where
    assert [c.name for c in containers_of(run.pid)] == [], where
    for lab_id in run.lab_ids:
        assert list_lab_containers(lab_id) == [], where
        assert listening_in(lab_id) == [], where
        assert glob.glob(os.path.join(tempfile.gettempdir(), f"mailprobe-lab-{lab_id}-*")) == []
    assert glob.glob(os.path.join(tempfile.gettempdir(), f"mailprobe-lab-*-{run.pid}-*")) == []


@pytest.fixture(scope="module", autouse=True)
def engine():
    apply_env(ensure_docker_api())


@pytest.fixture(autouse=True)
def reap():
    """After a failed case, remove whatever its process left, so the suite leaves nothing."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        for container in containers_of(pid):
            container.remove(force=True)
        for path in glob.glob(os.path.join(tempfile.gettempdir(), f"mailprobe-lab-*-{pid}-*")):
            shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("moment", CHECK_TIMELINE, ids=str)
def test_check_lab_interrupted_leaves_nothing(flavour, flavoured, moment, tmp_path, reap):
    flavoured()  # skips a flavour the matrix cannot run
    argv = ["check", "--lab", "--lab-flavour", flavour, "--no-history"]
    run = interrupt([*argv, "--output", str(tmp_path / "report")], moment, reap)
    assert_nothing_left(run)


SCENARIOS = """\
name: interrupt-first
lab: true
probes: [dns.spf, smtp.relay]
expect:
  outcomes: COMPLETED
---
name: interrupt-second
lab: true
probes: [dns.spf]
expect:
  outcomes: COMPLETED
"""

RUN_TIMELINE = (
    Moment("starting lab", 0.0, (SIGTERM,)),
    Moment("ready in", 0.2, (SIGINT,)),
    Moment("stopping lab", 0.0, (SIGINT, SIGINT)),
    Moment("starting lab", 0.1, (SIGTERM, SIGINT), nth=2),  # the second scenario's lab
)


@pytest.mark.parametrize("moment", RUN_TIMELINE, ids=str)
def test_run_scenarios_interrupted_leaves_nothing(moment, tmp_path, reap):
    scenario = tmp_path / "interrupt.yaml"
    scenario.write_text(SCENARIOS)
    argv = ["run", str(scenario), "--no-history", "--output", str(tmp_path / "reports")]
    run = interrupt(argv, moment, reap)
    assert_nothing_left(run)
    assert run.status == 128 + moment.signals[0], run.stderr  # a second scenario was to come


LAB_UP_TIMELINE = (
    Moment("starting lab", 0.0, (SIGINT,)),
    Moment("starting lab", 0.15, (SIGTERM, SIGINT)),
    Moment("ready in", 0.0, (SIGINT, SIGINT)),  # the lab is up: leaving it is all that is left
)


@pytest.mark.parametrize("moment", LAB_UP_TIMELINE, ids=str)
def test_lab_up_interrupted_leaves_nothing(moment, tmp_path, reap):
    env = {"MAILPROBE_STATE_DIR": str(tmp_path / "state")}
    state = tmp_path / "state" / "labs" / "intr"

    def lab_down() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "probes.cli", "lab", "down", "--name", "intr"],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        run = interrupt(["lab", "up", "--name", "intr"], moment, reap, env)
        if run.status == 0:  # it had finished: the lab is up, as asked; then lab down
            assert moment.marker == "ready in", run.stderr
            assert (state / "info.json").exists()
            down = lab_down()
            assert down.returncode == 0, down.stderr
        assert not state.exists(), (run.status, run.sent, run.stderr)
        assert_nothing_left(run, finished=None)
    finally:
        if state.exists():  # a failed case must not leave its lab running either
            lab_down()
    if moment.marker == "starting lab":
        assert run.status == 128 + moment.signals[0], run.stderr


FIXTURE_USER = """\
import sys
import time


def say(msg):
    print("mailprobe: " + msg, file=sys.stderr, flush=True)


def test_holds_two_labs(mailprobe_lab_factory):
    mailprobe_lab_factory(say=say)
    mailprobe_lab_factory(say=say)
    say("labs up")
    time.sleep(60)
"""

FIXTURE_TIMELINE = (
    Moment("starting lab", 0.1, (SIGTERM,)),  # the first lab starting
    Moment("labs up", 0.0, (SIGINT,)),
    Moment("labs up", 0.0, (SIGTERM,)),
    Moment("labs up", 0.0, (SIGINT, SIGINT), gap=0.15),  # Ctrl-C again during the teardown
)


@pytest.mark.parametrize("moment", FIXTURE_TIMELINE, ids=str)
def test_pytest_fixtures_interrupted_leave_nothing(moment, tmp_path, reap):
    (tmp_path / "test_user.py").write_text(FIXTURE_USER)
    argv = ["-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path)]
    run = interrupt(argv, moment, reap, python=True)
    where = f"{moment}: exit {run.status}\n{run.stderr}"
    # pytest's "interrupted"; 130 when the second Ctrl-C interrupted pytest's own reporting of
    # the first (then the labs were stopped at exit, by probes.lab.lab's atexit backstop).
    assert run.status in (2, 130 if len(moment.signals) > 1 else 2), where
    assert [c.name for c in containers_of(run.pid)] == [], where
    for lab_id in run.lab_ids:
        assert listening_in(lab_id) == [], where
    assert glob.glob(os.path.join(tempfile.gettempdir(), f"mailprobe-lab-*-{run.pid}-*")) == []


def test_what_a_sigkill_left_is_swept_by_the_next_doctor(tmp_path, reap):
    # SIGKILL cannot be handled: the lab stays. The next lab start or `lab doctor` removes the
    # lab directories whose process is gone, with their containers.
    argv = ["check", "--lab", "--no-history", "--output", str(tmp_path / "report")]
    run = interrupt(argv, Moment("ready in", 0.0, (signal.SIGKILL,)), reap)
    assert run.status == 128 + signal.SIGKILL
    left = glob.glob(os.path.join(tempfile.gettempdir(), f"mailprobe-lab-*-{run.pid}-*"))
    assert len(left) == 1 and containers_of(run.pid), run.stderr
    doctor = subprocess.run(
        [sys.executable, "-m", "probes.cli", "lab", "doctor", "--no-image"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert doctor.returncode == 0, doctor.stderr
    assert "removed a lab left by a process that is gone: " in doctor.stderr
    assert containers_of(run.pid) == []
    assert not os.path.exists(left[0])
    for lab_id in run.lab_ids:
        assert listening_in(lab_id) == []

"""Lab teardown without a container engine: every step runs whatever another step raised
(KeyboardInterrupt in a stop worker included), signals arriving meanwhile wait for the end,
and what a killed process left is swept."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from probes.lab import lab as lab_module
from probes.lab.lab import Lab, leftover_report, stop_labs, sweep_stale_labs


class FakeContainer:
    def __init__(self, log: list[str], name: str, action=None) -> None:
        self.log, self.name, self.action = log, name, action

    def stop(self) -> None:
        time.sleep(0.02)
        self.log.append(self.name)
        if self.action is not None:
            self.action()


@pytest.fixture
def swept(monkeypatch):
    calls: list[tuple[str | None, str | None]] = []

    def remove(lab_id=None, *, instance=None):
        calls.append((lab_id, instance))
        return []

    monkeypatch.setattr(lab_module, "remove_lab_containers", remove)
    return calls


def started_lab(tmp_path: Path, containers) -> Lab:
    """A Lab as start() leaves it, with fake containers and a real directory holding a key."""
    lab = Lab()
    lab.lab_id = "127-9-9"
    lab._swept = False
    workdir = tmp_path / f"mailprobe-lab-127-9-9-{lab.instance}"
    (workdir / "dkim").mkdir(parents=True)
    (workdir / "dkim" / "key").write_text("-----BEGIN PRIVATE KEY-----")
    lab._workdir = lab.lab_dir = workdir
    lab.containers = containers
    return lab


def _raise(exc: BaseException):
    def action() -> None:
        raise exc

    return action


def test_keyboard_interrupt_in_a_stop_worker_does_not_skip_the_rest(tmp_path, swept):
    log: list[str] = []
    lab = started_lab(
        tmp_path,
        [
            FakeContainer(log, "dns", _raise(KeyboardInterrupt())),
            FakeContainer(log, "mx", _raise(RuntimeError("engine hiccup"))),
            FakeContainer(log, "mailbox"),
        ],
    )
    with pytest.raises(KeyboardInterrupt):
        lab.stop()
    assert sorted(log) == ["dns", "mailbox", "mx"]
    assert swept == [("127-9-9", lab.instance)]  # the label sweep ran, for this instance only
    assert not lab.lab_dir.exists()
    assert lab.stopped


def test_ctrl_c_twice_during_teardown_waits_for_its_end(tmp_path, swept):
    log: list[str] = []

    def ctrl_c() -> None:  # from a stop worker: the signal reaches a thread, not main
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    lab = started_lab(
        tmp_path,
        [FakeContainer(log, "dns", ctrl_c), FakeContainer(log, "mx", ctrl_c)],
    )
    with pytest.raises(KeyboardInterrupt):
        lab.stop()
    assert sorted(log) == ["dns", "mx"]
    assert swept and not lab.lab_dir.exists()
    lab.stop()  # again: nothing left to do, no engine call
    assert len(swept) == 1


def test_stop_labs_stops_every_lab_even_when_one_is_interrupted(tmp_path, swept):
    log: list[str] = []
    labs = [
        started_lab(tmp_path / "a", [FakeContainer(log, "a", _raise(KeyboardInterrupt()))]),
        started_lab(tmp_path / "b", [FakeContainer(log, "b")]),
    ]
    kept = started_lab(tmp_path / "c", [FakeContainer(log, "c")])
    kept.keep()
    with pytest.raises(KeyboardInterrupt):
        stop_labs([*labs, kept])
    assert sorted(log) == ["a", "b"]
    assert all(lab.stopped for lab in labs)
    assert kept.lab_dir.exists()  # `lab up` keeps its lab


def test_an_interrupt_at_the_end_of_start_still_stops_the_lab(tmp_path, swept, monkeypatch):
    log: list[str] = []

    def start(self):
        started = started_lab(tmp_path, [FakeContainer(log, "dns")])
        self.__dict__.update(started.__dict__)
        raise KeyboardInterrupt  # after the lab is up, before `with` has its __exit__

    monkeypatch.setattr(Lab, "start", start)
    with pytest.raises(KeyboardInterrupt), Lab():
        pytest.fail("the body must not run")
    assert log == ["dns"]
    assert not any(tmp_path.iterdir())


def test_leftover_report_names_what_is_left_and_how_to_remove_it(tmp_path, monkeypatch):
    lab = started_lab(tmp_path, [])
    monkeypatch.setattr(lab_module, "find_docker_api", lambda: None)
    monkeypatch.setattr(
        lab_module,
        "list_lab_containers",
        lambda lab_id, instance=None: [("mailprobe-127-9-9-mx", "mx", "running")],
    )
    text = leftover_report([lab])
    assert text is not None
    assert "container mailprobe-127-9-9-mx" in text
    assert f"label=mailprobe.instance={lab.instance}" in text
    assert f"rm -rf {lab.lab_dir}" in text
    monkeypatch.setattr(lab_module, "list_lab_containers", lambda lab_id, instance=None: [])
    lab.keep()
    assert leftover_report([lab]) is None


def test_sweep_removes_only_the_dirs_of_processes_that_are_gone(tmp_path, monkeypatch, swept):
    monkeypatch.setattr(lab_module.tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    dead = tmp_path / f"mailprobe-lab-127-1-2-{dead_pid}-0123abcd"
    alive = tmp_path / f"mailprobe-lab-127-1-3-{lab_module.os.getpid()}-0123abcd"
    other = tmp_path / "mailprobe-lab-127-1-4-xyz"  # an older name: not ours to judge
    for path in (dead, alive, other):
        path.mkdir()
        (path / "ca.pem").write_text("x")
    removed = sweep_stale_labs()
    assert removed == [str(dead)]
    assert swept == [("127-1-2", f"{dead_pid}-0123abcd")]
    assert not dead.exists() and alive.exists() and other.exists()

"""`check --domains` interrupted: its worker processes end with it, without finishing their
chunks first (SIGTERM reaches the parent only), also on a second signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGTERM)])
def test_interrupted_audit_ends_its_workers_at_once(tmp_path, signals):
    domains = tmp_path / "domains.txt"
    domains.write_text("".join(f"d{i}.example.test\n" for i in range(64)))
    # A resolver that never answers: every domain waits for its DNS timeouts.
    argv = ["check", "--domains", str(domains), "--processes", "2", "--resolver", "127.0.0.1:9"]
    argv += ["--no-history", "--output", str(tmp_path / "out"), "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "probes.cli", *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # signals reach the parent only, as with `kill PID`
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = children(proc.pid)
        assert len(workers) >= 2, "the audit never started its worker processes"
        time.sleep(1.0)  # the workers are busy with their chunks
        t0 = time.monotonic()
        for signum in signals:
            proc.send_signal(signum)
            time.sleep(0.05)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
        assert proc.returncode == 128 + signals[0], err
        assert "interrupted; everything started was stopped" in err
        assert took < 10, f"the interrupt waited {took:.1f} s for the workers' chunks"
        time.sleep(0.5)
        assert [w for w in workers if alive(w)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for worker in workers:
            if alive(worker):
                os.kill(worker, signal.SIGKILL)

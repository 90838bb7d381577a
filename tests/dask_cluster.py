"""A real Dask cluster on loopback for tests: `dask scheduler` and `dask worker` processes
(the standard CLI from the venv), each in its own process group, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaskCluster:
    """`with DaskCluster(workers=2) as cluster:` ... `cluster.address`, `cluster.kill(i)`."""

    def __init__(
        self,
        workers: int = 2,
        *,
        worker_env: dict[str, str] | None = None,
        worker_args: tuple[str, ...] = (),
    ) -> None:
        self.worker_args = worker_args
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.n_workers = workers
        self.worker_env = worker_env or {}
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def _spawn(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.logs.append(log)
        with open(log, "wb") as out:
            return subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={
                    **os.environ,
                    "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
                    # the statistical profiler can deadlock a busy worker on CPython 3.11
                    # (cpython#106883; docs/dns.md, "Running on a cluster")
                    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
                    # their scratch space (and its lock files) in the test's directory
                    "DASK_TEMPORARY_DIRECTORY": str(log.parent),
                    **env,
                },
            )

    def start(self, tmp: Path) -> DaskCluster:
        self.scheduler = self._spawn(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-dashboard",
            ],
            tmp / "scheduler.log",
            {},
        )
        self._wait_port()
        for i in range(self.n_workers):
            self.add_worker(tmp, i)
        self.wait_workers(self.n_workers)
        return self

    def add_worker(self, tmp: Path, i: int) -> subprocess.Popen[bytes]:
        worker = self._spawn(
            [
                str(BIN / "dask"),
                "worker",
                self.address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--name",
                f"w{i}",
                "--local-directory",  # its scratch space, not /tmp/dask-scratch-space
                str(tmp / f"dask-w{i}"),
                *self.worker_args,
            ],
            tmp / f"worker{i}.log",
            self.worker_env,
        )
        self.workers.append(worker)
        return worker

    def _wait_port(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.scheduler is not None and self.scheduler.poll() is None, self.log()
                time.sleep(0.2)
        raise TimeoutError(f"the scheduler did not listen within {timeout} s\n{self.log()}")

    def wait_workers(self, n: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=timeout)

    def kill(self, i: int) -> None:
        """A worker dies (SIGKILL, as a crashed host would)."""
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait(10)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs if p.exists())

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in [*self.workers, self.scheduler]:
            if proc is None:
                continue
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

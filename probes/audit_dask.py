"""`check --domains FILE --scheduler tcp://HOST:PORT`: the audit on a Dask cluster.

The standard Dask CLI runs the cluster (`dask scheduler`, `dask worker tcp://HOST:PORT` on
each host; `pip install 'mailprobe[dask]'` everywhere, the same mailprobe version on the
workers). This process sends the domains out in chunks (`audit.audit_chunk`, run by a worker
thread with `--concurrency` domains in flight), and yields the reports in file order as the
chunks finish. Dask retries a chunk whose worker died on another worker.

The workers share one board on the scheduler (`DaskBoard`): a conversation with an endpoint
is had once in the run (a Dask Lock names who records it, the scheduler's metadata holds the
recording for the others) and `--max-per-host` is a Dask Semaphore per address, whose leases
a dead worker gives back. The recordings are dropped at the end of the run.

Nothing secret goes to the workers: the Target's in-memory login (a lab's throwaway user) is
dropped; a `--credentials env:NAME` / `file:PATH` reference is read on the worker itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import pickle
import threading
import time
import uuid
from collections import deque
from collections.abc import Generator, Sequence
from typing import Any

from probes.audit import (
    DEFAULT_CONCURRENCY,
    BoardRef,
    ChunkResult,
    FleetCounts,
    audit_chunk,
    forget_run,
)
from probes.errors import UsageError
from probes.model import Target
from probes.net import DEFAULT_MAX_PER_HOST
from probes.net.tapes import Key, Tape
from probes.registry import mailprobe_version
from probes.report.run import RunReport

CONNECT_TIMEOUT_S = 5.0
HANDSHAKE_GRACE_S = 5.0
WORKERS_TIMEOUT_S = 60.0
CHUNK_RETRIES = 2
WAIT_FOR_RECORDING_S = 1.0
METADATA_ROOT = "mailprobe-recordings"  # the scheduler's metadata: run -> name -> a recording


def connect(address: str, *, workers_timeout: float = WORKERS_TIMEOUT_S) -> Any:
    """A Dask client of the scheduler at `address`, its workers checked.

    UsageError (exit 2) when Dask is not installed, the scheduler cannot be reached, no
    worker joins within `workers_timeout` seconds, or the scheduler or a worker runs another
    mailprobe version (or none, on a worker)."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            "--scheduler: Dask is not installed: pip install 'mailprobe[dask]'"
        ) from None
    # Dask's own timeout does not cover a server that accepts the connection and never
    # answers its handshake (an HTTP port): the client is made in a thread given a deadline.
    made: list[Any] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            made.append(Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False))
        except BaseException as exc:  # handed to the caller below
            failed.append(exc)

    thread = threading.Thread(target=make, name="mailprobe-dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S + HANDSHAKE_GRACE_S)
    if failed or not made:
        for exc in failed:
            _forget_half_made_client(exc, Client)
        if not failed:
            reason = f"no Dask handshake within {CONNECT_TIMEOUT_S + HANDSHAKE_GRACE_S:g} s"
        elif isinstance(failed[0], OSError | TimeoutError):
            reason = str(failed[0]).splitlines()[0] or type(failed[0]).__name__
        elif isinstance(failed[0], Exception):  # e.g. MemoryError reading a non-Dask reply
            reason = f"it does not answer as a Dask scheduler ({type(failed[0]).__name__})"
        else:
            raise failed[0]
        raise UsageError(
            f"--scheduler {address}: cannot reach the scheduler: {reason} (start one with "
            "`dask scheduler`; the address is tcp://HOST:PORT, port 8786 by default)"
        ) from None
    client = made[0]
    try:
        try:
            client.wait_for_workers(1, timeout=workers_timeout)
        except TimeoutError:
            raise UsageError(
                f"--scheduler {address}: no worker joined within {workers_timeout:g} s "
                "(start one with `dask worker " + address + "`)"
            ) from None
        check_versions(client, address)
    except BaseException:
        client.close()
        raise
    return client


def _forget_half_made_client(exc: BaseException, client_class: Any) -> None:
    """A Client whose constructor failed closes itself when collected, waiting 10 s for a
    scheduler that is not there: mark it closed (its own 'nothing to do' state) instead."""
    tb = exc.__traceback__
    while tb is not None:
        candidate: Any = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, client_class):
            candidate.status = "closed"
        tb = tb.tb_next


def check_versions(client: Any, address: str) -> None:
    """UsageError unless the scheduler (when it has mailprobe) and every worker run ours."""
    mine = mailprobe_version()
    found = client.get_versions(packages=["mailprobe"])
    theirs = (found.get("scheduler") or {}).get("packages", {}).get("mailprobe")
    if theirs is not None and theirs != mine:
        raise UsageError(
            f"--scheduler {address}: the scheduler has mailprobe {theirs}, this is {mine}: "
            "install the same version everywhere"
        )
    wrong = []
    for worker, info in sorted((found.get("workers") or {}).items()):
        got = (info or {}).get("packages", {}).get("mailprobe")
        if got != mine:
            wrong.append(f"{worker} has {'no mailprobe' if got is None else 'mailprobe ' + got}")
    if wrong:
        raise UsageError(
            f"--scheduler {address}: every worker needs mailprobe {mine}: " + "; ".join(wrong)
        )


def worker_template(template: Target) -> Target:
    """The Target as the workers get it: no password held in memory."""
    return dataclasses.replace(template, login=None)


def audit_on_cluster(
    client: Any,
    domains: Sequence[str],
    probe_ids: Sequence[str],
    template: Target,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_per_host: int = DEFAULT_MAX_PER_HOST,
    stats: FleetCounts | None = None,
    chunk_size: int | None = None,
) -> Generator[RunReport, None, None]:
    """Audit `domains` on the cluster of `client`; yield the reports in input order.

    Each chunk runs `concurrency` domains at a time on a worker thread; at most two chunks
    per worker thread are queued ahead. Closing the generator cancels what is not done."""

    run = uuid.uuid4().hex
    ref = BoardRef("dask", run)
    shipped = worker_template(template)
    threads = max(1, sum(client.nthreads().values()))
    size = chunk_size or max(1, concurrency) * 4
    chunks = [list(domains[i : i + size]) for i in range(0, len(domains), size)]
    pending: deque[Any] = deque()

    def take(future: Any) -> list[RunReport]:
        result: ChunkResult = future.result()
        if stats is not None:
            stats.add(result)
        return result.reports

    try:
        for index, chunk in enumerate(chunks):
            pending.append(
                client.submit(
                    cluster_chunk,
                    chunk,
                    list(probe_ids),
                    shipped,
                    concurrency,
                    ref,
                    max_per_host,
                    key=f"mailprobe-chunk-{run}-{index}",
                    pure=False,
                    retries=CHUNK_RETRIES,
                )
            )
            if len(pending) > 2 * threads:
                yield from take(pending.popleft())
        while pending:
            yield from take(pending.popleft())
    finally:
        for future in pending:
            future.cancel()
        # the workers' own copies of the recordings, and then the scheduler's (on a cluster
        # that may be gone)
        with contextlib.suppress(Exception):
            client.run(forget_run, run)
        with contextlib.suppress(Exception):
            client.set_metadata([METADATA_ROOT, run], None)


def cluster_chunk(*args: Any) -> ChunkResult:
    """`audit_chunk` on a worker, with Dask's statistical profiler stopped first: it samples
    every thread's frame 100 times a second, which a chunk's hundreds of threads make costly,
    and on CPython before 3.11.9 / 3.12.3 it can deadlock a busy worker (python/cpython#106883:
    `sys._current_frames()` against the garbage collector)."""
    _stop_profiler()
    return audit_chunk(*args)


def _stop_profiler() -> None:
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return
    callbacks = [pc for name, pc in worker.periodic_callbacks.items() if "profile" in name]
    if any(pc.is_running() for pc in callbacks):
        done = threading.Event()

        def stop() -> None:
            for pc in callbacks:
                pc.stop()
            done.set()

        worker.loop.add_callback(stop)
        done.wait(5)


class DaskBoard:
    """The run's board on the scheduler (probes.net.tapes.Board), from a worker."""

    def __init__(self, run: str) -> None:
        from distributed import get_client

        self.run = run
        self.client = get_client()  # the worker's client, usable from any of our threads
        self._lock = threading.Lock()
        self._locks: dict[Key, Any] = {}  # a Dask Lock per conversation asked about
        self._semaphores: dict[str, Any] = {}

    def _name(self, key: Key) -> str:
        return hashlib.sha1(repr(key).encode()).hexdigest()[:24]

    def _recording(self, name: str, wait: float = 0.0) -> Tape | None:
        """The recording published under `name` in the scheduler's metadata (None: not yet),
        looking again every 0.1 s for up to `wait` seconds."""
        deadline = time.monotonic() + wait
        while True:
            data = self.client.get_metadata([METADATA_ROOT, self.run, name], None)
            if data is not None:
                tape: Tape = pickle.loads(data)
                return tape
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def claim(self, key: Key, owner: str) -> Tape | bool:
        from distributed import Lock

        name = self._name(key)
        tape = self._recording(name)
        if tape is not None:
            return tape
        with self._lock:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = Lock(
                    f"mailprobe-{self.run}-{name}",
                    scheduler_rpc=self.client.scheduler,
                    loop=self.client.loop,
                )
        if not lock.acquire(blocking=False):
            # another worker records it: wait for its recording where it will appear
            tape = self._recording(name, wait=WAIT_FOR_RECORDING_S)
            if tape is None:
                return False
            with self._lock:
                self._locks.pop(key, None)  # never held, no longer needed
            return tape
        tape = self._recording(name)  # published between the look and the lock
        if tape is not None:
            self._release(key)
            return tape
        return True

    def _release(self, key: Key) -> None:
        with self._lock:
            lock = self._locks.pop(key, None)
        if lock is not None:
            lock.release()

    def publish(self, key: Key, tape: Tape, owner: str) -> None:
        self.client.set_metadata([METADATA_ROOT, self.run, self._name(key)], pickle.dumps(tape))
        self._release(key)

    def abandon(self, key: Key, owner: str) -> None:
        self._release(key)

    def _semaphore(self, host: str, limit: int) -> Any:
        from distributed import Semaphore

        with self._lock:
            semaphore = self._semaphores.get(host)
            if semaphore is None:
                semaphore = Semaphore(max_leases=limit, name=f"mailprobe-{self.run}-host-{host}")
                self._semaphores[host] = semaphore
            return semaphore

    def take_slot(self, host: str, limit: int, owner: str) -> bool:
        return bool(self._semaphore(host, limit).acquire(timeout=0.001))

    def give_slot(self, host: str, owner: str) -> None:
        with self._lock:
            semaphore = self._semaphores.get(host)
        if semaphore is not None:
            semaphore.release()

    def stats(self) -> dict[str, Any]:
        return {}

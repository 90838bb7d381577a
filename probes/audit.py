"""Audit many domains concurrently: `mailprobe check --domains FILE` and its API.

Each domain is a run of its own: its own Target (built from a template), its own DnsClient
(its own per-run cache and query count, a view over the process's shared, TTL- and
memory-bounded answer cache: the provider records most domains share are asked once per
process), and its own RunReport. At most `concurrency` domains are in flight; reports come
back in the order the domains were given, as soon as each (and those before it) is done.

The domains of a run share one board (probes.net.tapes): each transport conversation with an
endpoint is had once in the run and played back for every other domain that uses it, and
`--max-per-host` holds across the run's threads, processes and cluster workers
(probes.audit_dask).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes.errors import UsageError
from probes.interrupts import deferred
from probes.model import Target
from probes.names import InvalidDomain, normalize_domain
from probes.net import DEFAULT_MAX_PER_HOST, Net
from probes.net.dns import client_for
from probes.net.stream import HostSlots
from probes.net.tapes import Board, LocalBoard, Tapes, connect_board, serve_board
from probes.probe import Probe
from probes.report.run import RunReport
from probes.runner import run_report

DEFAULT_CONCURRENCY = 32


def read_domains(path: str | Path) -> list[str]:
    """Domains from a file, one per line; blank lines and `#` comments are skipped.

    Raises UsageError naming the file and line of the first invalid name, or an unreadable
    file. Duplicates are dropped (first one kept).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"--domains {path}: cannot read: {reason}") from None
    domains: dict[str, None] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            domains[normalize_domain(entry)] = None
        except InvalidDomain as exc:
            raise UsageError(f"--domains {path}, line {lineno}: {exc}") from None
    if not domains:
        raise UsageError(f"--domains {path}: no domains in the file")
    return list(domains)


_SLOTS: HostSlots | None = None
_SLOTS_LOCK = threading.Lock()


def _shared_slots(max_per_host: int = DEFAULT_MAX_PER_HOST) -> HostSlots:
    global _SLOTS
    with _SLOTS_LOCK:
        if _SLOTS is None or _SLOTS.per_host != max_per_host:
            _SLOTS = HostSlots(max_per_host)
        return _SLOTS


# ----- the run's board (probes.net.tapes): who has had which conversation with which endpoint
@dataclass(frozen=True)
class BoardRef:
    """How a worker reaches the run's board: "local" (this process), "manager" (a
    multiprocessing manager of the parent: address and authkey) or "dask" (the cluster's
    scheduler, names under `run`)."""

    kind: str
    run: str
    address: Any = None
    authkey: bytes = b""


_TAPES: dict[tuple[BoardRef, int], Tapes] = {}
_TAPES_LOCK = threading.Lock()


def tapes_for(ref: BoardRef, max_per_host: int) -> Tapes:
    """This process's side of the board `ref` (one per run and process)."""
    with _TAPES_LOCK:
        tapes = _TAPES.get((ref, max_per_host))
        if tapes is None:
            board: Board
            if ref.kind == "manager":
                board = _manager_board(ref)
            elif ref.kind == "dask":
                from probes.audit_dask import DaskBoard

                board = DaskBoard(ref.run)
            else:
                board = LocalBoard()
            owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tapes = Tapes(board, owner, max_per_host=max_per_host)
            _TAPES[(ref, max_per_host)] = tapes
        return tapes


def _manager_board(ref: BoardRef) -> Board:
    return connect_board(ref.address, ref.authkey)


def audit_one(
    domain: str,
    probes: Sequence[Probe],
    template: Target,
    *,
    max_workers: int = 16,  # every dns.* probe at once (was 8: dns.spf started a round late)
    tapes: Tapes | None = None,
    max_per_host: int = DEFAULT_MAX_PER_HOST,
) -> RunReport:
    """Run `probes` against one domain with a fresh DNS client; return its report.

    With `tapes`, the transport probes' conversations with an endpoint are had once in the
    run and replayed for every other domain that uses it (probes.net.tapes)."""
    target = dataclasses.replace(template, domain=domain)
    resolver = Net.for_target(target).resolver_addr()
    # Its own door (its own per-run cache and counts), a view over the worker's shared,
    # TTL- and memory-bounded answer cache (probes.net.answer_cache).
    dns_client = client_for(resolver, timeout=target.timeouts.dns, shared=True)
    net = Net.for_target(target, dns_client=dns_client, max_per_host=max_per_host)
    # Domains often share mail servers: the per-host connection limit holds across them all
    # (within one process; across processes through the board's slots).
    object.__setattr__(net, "host_slots", _shared_slots(max_per_host))
    if tapes is not None:
        object.__setattr__(net, "recorder", tapes.recorder())
    return run_report(probes, target, net, max_workers=max_workers)


def audit_domains(
    domains: Iterable[str],
    probe_factory: Callable[[], Sequence[Probe]],
    template: Target,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    tapes: Tapes | None = None,
    max_per_host: int = DEFAULT_MAX_PER_HOST,
) -> Iterator[RunReport]:
    """Audit every domain, `concurrency` at a time; yield reports in input order.

    `probe_factory` makes the probe instances for one domain (probes may keep state).
    Closing the iterator early (or KeyboardInterrupt) cancels the domains not yet started;
    those in flight end within their own timeouts. Without `tapes`, the domains share a
    board of this process: each endpoint is still talked to once.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if tapes is None:
        tapes = Tapes(LocalBoard(), f"{os.getpid()}", max_per_host=max_per_host)
    pending: deque[Future[RunReport]] = deque()
    queue = iter(domains)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mailprobe-domain")
    try:
        for domain in queue:
            pending.append(
                pool.submit(
                    audit_one,
                    domain,
                    probe_factory(),
                    template,
                    tapes=tapes,
                    max_per_host=max_per_host,
                )
            )
            if len(pending) >= 2 * concurrency:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class ChunkResult:
    """A worker's answer for one chunk: its reports (in order) and its conversation counts."""

    reports: list[RunReport]
    recorded: int
    replayed: int
    diverged: int


def _audit_by_ids(
    domains: Iterable[str],
    probe_ids: Sequence[str],
    template: Target,
    concurrency: int,
    tapes: Tapes,
    max_per_host: int,
) -> Iterator[RunReport]:
    """audit_domains with the installed probes named by `probe_ids` (a worker's way)."""
    from probes import registry

    available = registry.load_probes()
    classes = [available[pid] for pid in probe_ids]
    return audit_domains(
        domains,
        lambda: [cls() for cls in classes],
        template,
        concurrency=concurrency,
        tapes=tapes,
        max_per_host=max_per_host,
    )


def audit_chunk(
    domains: list[str],
    probe_ids: list[str],
    template: Target,
    concurrency: int,
    board: BoardRef,
    max_per_host: int = DEFAULT_MAX_PER_HOST,
) -> ChunkResult:
    """Worker (process or cluster): audit `domains` with the installed probes `probe_ids`."""
    tapes = tapes_for(board, max_per_host)
    before = dict(tapes.stats.counts)
    reports = list(_audit_by_ids(domains, probe_ids, template, concurrency, tapes, max_per_host))
    after = tapes.stats.counts
    return ChunkResult(
        reports,
        recorded=after.get("recorded", 0) - before.get("recorded", 0),
        replayed=after.get("replayed", 0) - before.get("replayed", 0),
        diverged=after.get("diverged", 0) - before.get("diverged", 0),
    )


@dataclass
class FleetCounts:
    """Conversations with endpoints over a run: had (went to the network), replayed, and
    replays that went another way than their recording."""

    recorded: int = 0
    replayed: int = 0
    diverged: int = 0

    def add(self, result: ChunkResult) -> None:
        self.recorded += result.recorded
        self.replayed += result.replayed
        self.diverged += result.diverged


def forget_run(run: str) -> int:
    """Let go of this process's tapes of `run` (a cluster worker, at the end of the run)."""
    with _TAPES_LOCK:
        gone = [key for key in _TAPES if key[0].run == run]
        for key in gone:
            del _TAPES[key]
    return len(gone)


def _forget(ref: BoardRef, max_per_host: int, stats: FleetCounts | None) -> None:
    """The end of an in-process run: its counts, and its tapes let go."""
    with _TAPES_LOCK:
        tapes = _TAPES.pop((ref, max_per_host), None)
    if tapes is not None and stats is not None:
        counts = tapes.stats.counts
        stats.recorded += counts.get("recorded", 0)
        stats.replayed += counts.get("replayed", 0)
        stats.diverged += counts.get("diverged", 0)


def audit_domains_in_processes(
    domains: Sequence[str],
    probe_ids: Sequence[str],
    template: Target,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    processes: int = 2,
    max_per_host: int = DEFAULT_MAX_PER_HOST,
    stats: FleetCounts | None = None,
) -> Generator[RunReport, None, None]:
    """Like audit_domains, spread over `processes` worker processes (input order kept).

    Python runs one thread at a time per process, and a domain costs a few tens of ms of
    CPU (mostly building and parsing DNS messages), so one process tops out at a few dozen
    domains per second; more processes use more cores. `concurrency` is the total number
    of domains in flight, shared between the processes. Probes are named by id and loaded
    from the installed entry points in each worker. The processes share one board (a
    multiprocessing manager): each endpoint is talked to once in the run, and
    `max_per_host` holds across them. `stats`, when given, adds up the conversations.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, not {processes}")
    run = uuid.uuid4().hex
    if processes == 1:
        ref = BoardRef("local", run)
        tapes = tapes_for(ref, max_per_host)
        try:
            yield from _audit_by_ids(domains, probe_ids, template, concurrency, tapes, max_per_host)
        finally:
            _forget(ref, max_per_host, stats)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    # A board the processes share, for probes that talk to servers; the DNS probes never do
    # (their run needs no process more: the board would be a process for nothing).
    manager = None
    ref = BoardRef("local", run)
    if any(not pid.startswith("dns.") for pid in probe_ids):
        manager = serve_board(context)
        ref = BoardRef("manager", run, manager.address, bytes(manager._authkey))
    per_process = max(1, concurrency // processes)
    size = per_process * 4
    chunks = [list(domains[i : i + size]) for i in range(0, len(domains), size)]
    pending: deque[Future[ChunkResult]] = deque()
    # spawn, not fork: the parent may hold threads (and their locks) already.
    pool = ProcessPoolExecutor(processes, mp_context=context)

    def take(result: ChunkResult) -> list[RunReport]:
        if stats is not None:
            stats.add(result)
        return result.reports

    try:
        for chunk in chunks:
            pending.append(
                pool.submit(
                    audit_chunk, chunk, list(probe_ids), template, per_process, ref, max_per_host
                )
            )
            if len(pending) > 2 * processes:
                yield from take(pending.popleft().result())
        while pending:
            yield from take(pending.popleft().result())
    except BaseException:
        # Interrupted, failed or closed early: end the workers now, not after their chunks
        # (a SIGTERM reaches this process only), and let no second signal cut this short.
        with deferred():
            for future in pending:
                future.cancel()
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if manager is not None:
            manager.shutdown()

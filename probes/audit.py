"""Audit many domains concurrently: `mailprobe check --domains FILE` and its API.

Each domain is a run of its own: its own Target (built from a template), its own DnsClient
(so its cache and query count are its own and memory stays bounded however many domains
there are), and its own RunReport. At most `concurrency` domains are in flight; reports
come back in the order the domains were given, as soon as each (and those before it) is done.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from probes.errors import UsageError
from probes.interrupts import deferred
from probes.model import Target
from probes.names import InvalidDomain, normalize_domain
from probes.net import DEFAULT_MAX_PER_HOST, Net
from probes.net.dns import client_for
from probes.net.stream import HostSlots
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


def _shared_slots() -> HostSlots:
    global _SLOTS
    with _SLOTS_LOCK:
        if _SLOTS is None:
            _SLOTS = HostSlots(DEFAULT_MAX_PER_HOST)
        return _SLOTS


def audit_one(
    domain: str,
    probes: Sequence[Probe],
    template: Target,
    *,
    max_workers: int = 16,  # every dns.* probe at once (was 8: dns.spf started a round late)
) -> RunReport:
    """Run `probes` against one domain with a fresh DNS client; return its report."""
    target = dataclasses.replace(template, domain=domain)
    resolver = Net.for_target(target).resolver_addr()
    # Its own door (its own per-run cache and counts), a view over the worker's shared,
    # TTL- and memory-bounded answer cache (probes.net.answer_cache): issue 17 item 4.
    dns_client = client_for(resolver, timeout=target.timeouts.dns, shared=True)
    net = Net.for_target(target, dns_client=dns_client)
    # Domains often share mail servers: the per-host connection limit holds across them all
    # (within one process).
    object.__setattr__(net, "host_slots", _shared_slots())
    return run_report(probes, target, net, max_workers=max_workers)


def audit_domains(
    domains: Iterable[str],
    probe_factory: Callable[[], Sequence[Probe]],
    template: Target,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Iterator[RunReport]:
    """Audit every domain, `concurrency` at a time; yield reports in input order.

    `probe_factory` makes the probe instances for one domain (probes may keep state).
    Closing the iterator early (or KeyboardInterrupt) cancels the domains not yet started;
    those in flight end within their own timeouts.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    pending: deque[Future[RunReport]] = deque()
    queue = iter(domains)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mailprobe-domain")
    try:
        for domain in queue:
            pending.append(pool.submit(audit_one, domain, probe_factory(), template))
            if len(pending) >= 2 * concurrency:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def _audit_chunk(
    domains: list[str], probe_ids: list[str], template: Target, concurrency: int
) -> list[RunReport]:
    """Worker process: audit `domains` with the installed probes named by `probe_ids`."""
    from probes import registry

    available = registry.load_probes()
    classes = [available[pid] for pid in probe_ids]
    return list(
        audit_domains(
            domains, lambda: [cls() for cls in classes], template, concurrency=concurrency
        )
    )


def audit_domains_in_processes(
    domains: Sequence[str],
    probe_ids: Sequence[str],
    template: Target,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    processes: int = 2,
) -> Generator[RunReport, None, None]:
    """Like audit_domains, spread over `processes` worker processes (input order kept).

    Python runs one thread at a time per process, and a domain costs a few tens of ms of
    CPU (mostly building and parsing DNS messages), so one process tops out at a few dozen
    domains per second; more processes use more cores. `concurrency` is the total number
    of domains in flight, shared between the processes. Probes are named by id and loaded
    from the installed entry points in each worker.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, not {processes}")
    if processes == 1:
        from probes import registry

        available = registry.load_probes()
        classes = [available[pid] for pid in probe_ids]
        yield from audit_domains(
            domains, lambda: [cls() for cls in classes], template, concurrency=concurrency
        )
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    per_process = max(1, concurrency // processes)
    size = per_process * 4
    chunks = [list(domains[i : i + size]) for i in range(0, len(domains), size)]
    pending: deque[Future[list[RunReport]]] = deque()
    # spawn, not fork: the parent may hold threads (and their locks) already.
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
    try:
        for chunk in chunks:
            pending.append(pool.submit(_audit_chunk, chunk, list(probe_ids), template, per_process))
            if len(pending) > 2 * processes:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
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

"""Run probes concurrently against one target and classify how each run ended.

The mapping from exception to (Outcome, ErrorReason) lives in ONE table, CLASSIFICATION.

Timeouts: each probe gets `target.timeouts.probe` seconds, counted from when it is handed to a
worker thread. A probe still running after that is reported as ERROR/TIMEOUT and its thread is
*abandoned*: Python cannot kill a thread, so it keeps running in the background until its own
network timeouts (also from the Target) end it; its late result is discarded. Abandoned threads
do not hold up the remaining probes (a fresh pool takes over), but the interpreter still waits
for them at exit.

The run's deadline (`deadline`, a time.monotonic() instant; `check --max-run-time`): when it
passes, every probe still running is abandoned the same way and every probe not yet started is
not started, all reported ERROR/TIMEOUT "run deadline reached"; the run's endpoint memory
is stopped (probes.net.endpoints), so abandoned probes get no new connection or slot and end
within their current read.
"""

from __future__ import annotations

import imaplib
import math
import poplib
import smtplib
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime

import dns.exception

from probes.codes import UndeclaredCode, declared
from probes.errors import DnsError, ProbeConfigError, ProbeSkipped, ProtocolError, SubjectError
from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Target
from probes.net import Net
from probes.net.tapes import probe_scope
from probes.probe import Probe
from probes.redact import Redactor, secret_forms
from probes.report.run import RunReport, new_run_id

DEFAULT_MAX_WORKERS = 32  # probes wait on the network, not the CPU
MAX_DETAIL_CHARS = 500

# (exception class, outcome, reason) — checked with isinstance, first match wins. Order
# matters: ssl.SSLError and smtplib.SMTPException are OSError subclasses, socket.timeout is
# TimeoutError, so the specific rows come before the OSError rows.
CLASSIFICATION: tuple[tuple[type[BaseException], Outcome, ErrorReason | None], ...] = (
    (ProbeSkipped, Outcome.SKIPPED, None),
    (TimeoutError, Outcome.ERROR, ErrorReason.TIMEOUT),  # includes socket.timeout
    (dns.exception.Timeout, Outcome.ERROR, ErrorReason.TIMEOUT),  # incl. LifetimeTimeout
    (ssl.CertificateError, Outcome.ERROR, ErrorReason.TLS),
    (ssl.SSLError, Outcome.ERROR, ErrorReason.TLS),
    (dns.exception.DNSException, Outcome.ERROR, ErrorReason.DNS),
    (DnsError, Outcome.ERROR, ErrorReason.DNS),
    (socket.gaierror, Outcome.ERROR, ErrorReason.DNS),  # a host name did not resolve
    (socket.herror, Outcome.ERROR, ErrorReason.DNS),
    (smtplib.SMTPServerDisconnected, Outcome.ERROR, ErrorReason.CONNECTIVITY),
    (smtplib.SMTPException, Outcome.ERROR, ErrorReason.PROTOCOL),
    (imaplib.IMAP4.error, Outcome.ERROR, ErrorReason.PROTOCOL),
    (poplib.error_proto, Outcome.ERROR, ErrorReason.PROTOCOL),
    (ProtocolError, Outcome.ERROR, ErrorReason.PROTOCOL),
    (ProbeConfigError, Outcome.ERROR, ErrorReason.CONFIG),
    (ConnectionError, Outcome.ERROR, ErrorReason.CONNECTIVITY),
    (OSError, Outcome.ERROR, ErrorReason.CONNECTIVITY),
    (Exception, Outcome.ERROR, ErrorReason.BUG),
)


def classify(exc: BaseException) -> tuple[Outcome, ErrorReason | None]:
    """The (outcome, reason) for an exception a probe raised, from CLASSIFICATION."""
    if isinstance(exc, SubjectError):
        return classify(exc.cause)
    for exc_type, outcome, reason in CLASSIFICATION:
        if isinstance(exc, exc_type):
            return outcome, reason
    return Outcome.ERROR, ErrorReason.BUG


def error_detail(exc: BaseException, redact: Redactor) -> str:
    """One line, `ExceptionType: message`, secrets redacted (reason only for ProbeSkipped)."""
    if isinstance(exc, ProbeSkipped):
        text = exc.reason
    elif isinstance(exc, SubjectError):
        text = str(exc)
    else:
        message = str(exc)
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    text = redact(" ".join(redact(text).split()))
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1] + "…"
    return text


def probe_id_of(probe: Probe) -> str:
    probe_id = getattr(probe, "id", None)
    return probe_id if isinstance(probe_id, str) else type(probe).__name__


def _in_scope(probe_id: str, run: Callable[[], Iterable[Finding]]) -> Iterator[Finding]:
    """The probe's findings, its code running as `probe_id` (the connections it opens are
    its own: probes.net.tapes)."""
    with probe_scope(probe_id):
        iterator = iter(run())
    while True:
        with probe_scope(probe_id):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def run_one(probe: Probe, target: Target, net: Net, redact: Redactor) -> ProbeResult:
    """Run one probe in the calling thread and classify how it ended.

    Findings yielded before an exception are kept (they were found); the outcome still says
    the run did not complete. A finding whose code the probe does not declare ends the run
    ERROR/BUG (UndeclaredCode, naming the code), whatever the caller. BaseExceptions that are
    not Exceptions (KeyboardInterrupt, SystemExit) propagate.
    """
    probe_id = probe_id_of(probe)
    codes = declared(probe)
    findings: list[Finding] = []
    start = time.perf_counter()
    try:
        for item in _in_scope(probe_id, lambda: probe.run(target, net)):
            if not isinstance(item, Finding):
                raise TypeError(f"probe {probe_id} yielded {type(item).__name__}, not Finding")
            if item.code not in codes:
                raise UndeclaredCode(probe_id, item.code, codes)
            findings.append(item)
    except Exception as exc:
        outcome, reason = classify(exc)
        return ProbeResult(
            probe_id=probe_id,
            outcome=outcome,
            findings=tuple(findings),
            error=reason,
            error_detail=error_detail(exc, redact),
            duration_s=time.perf_counter() - start,
        )
    return ProbeResult(
        probe_id=probe_id,
        outcome=Outcome.COMPLETED,
        findings=tuple(findings),
        duration_s=time.perf_counter() - start,
    )


def _timed_out(probe: Probe, limit: float, elapsed: float) -> ProbeResult:
    return ProbeResult(
        probe_id=probe_id_of(probe),
        outcome=Outcome.ERROR,
        error=ErrorReason.TIMEOUT,
        error_detail=f"TimeoutError: probe did not finish within {limit:g} s (abandoned)",
        duration_s=elapsed,
    )


RUN_DEADLINE = "run deadline reached"


def _deadline_reached(probe: Probe, limit: float | None, elapsed: float | None) -> ProbeResult:
    when = "before it started" if elapsed is None else f"after {elapsed:.1f} s (abandoned)"
    whole = "" if limit is None else f" ({limit:g} s for the whole run)"
    return ProbeResult(
        probe_id=probe_id_of(probe),
        outcome=Outcome.ERROR,
        error=ErrorReason.TIMEOUT,
        error_detail=f"TimeoutError: {RUN_DEADLINE}{whole} {when}",
        duration_s=elapsed or 0.0,
    )


def _new_pool(max_workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mailprobe-probe")


def run_probes(
    probes: Sequence[Probe],
    target: Target,
    net: Net | None = None,
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    secrets: Collection[str] = (),
    deadline: float | None = None,
    run_limit: float | None = None,
) -> list[ProbeResult]:
    """Run `probes` against `target`, at most `max_workers` at a time.

    Returns one ProbeResult per probe, in the order the probes were given. `secrets` are
    values (passwords, tokens) that must never appear in `error_detail`; the password of the
    target's in-memory login (a lab's) is always one of them. `deadline` (time.monotonic())
    ends the whole run (see the module's doc); `run_limit` is the whole run's seconds, for the
    message.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, not {max_workers}")
    if net is None:
        net = Net.for_target(target)
    limit = target.timeouts.probe
    if target.login is not None:
        secrets = (*secrets, *secret_forms(target.login.user, target.login.password))
    redact = Redactor(secrets)
    results: list[ProbeResult | None] = [None] * len(probes)
    queue = deque(enumerate(probes))
    # future -> (index, submitted at). Only futures we still wait for; abandoned ones leave.
    in_flight: dict[Future[ProbeResult], tuple[int, float]] = {}
    pools = [_new_pool(max_workers)]
    try:
        while queue or in_flight:
            if deadline is not None and time.monotonic() >= deadline:
                _end_run(probes, results, in_flight, queue, net, run_limit)
                break
            # Never more than max_workers live (non-abandoned) probes, so the current pool
            # always has a free thread and a probe starts as soon as it is submitted.
            while queue and len(in_flight) < max_workers:
                index, probe = queue.popleft()
                future = pools[-1].submit(run_one, probe, target, net, redact)
                in_flight[future] = (index, time.perf_counter())
            next_deadline = min(started for _, started in in_flight.values()) + limit
            remaining = next_deadline - time.perf_counter()
            if deadline is not None:
                remaining = min(remaining, deadline - time.monotonic())
            done, _ = wait(
                in_flight,
                timeout=None if math.isinf(remaining) else max(0.0, remaining),
                return_when=FIRST_COMPLETED,
            )
            for future in done:
                index, _ = in_flight.pop(future)
                results[index] = future.result()  # re-raises KeyboardInterrupt & co.
            now = time.perf_counter()
            expired = [
                future
                for future, (_, started) in in_flight.items()
                if not future.done() and now - started >= limit
            ]
            for future in expired:
                index, started = in_flight.pop(future)
                results[index] = _timed_out(probes[index], limit, now - started)
            if expired:
                # The abandoned threads still occupy the old pool: later probes go to a new one.
                pools[-1].shutdown(wait=False)
                pools.append(_new_pool(max_workers))
    finally:
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def _end_run(
    probes: Sequence[Probe],
    results: list[ProbeResult | None],
    in_flight: dict[Future[ProbeResult], tuple[int, float]],
    queue: deque[tuple[int, Probe]],
    net: Net,
    run_limit: float | None,
) -> None:
    """The run's deadline passed: results for the probes still running or waiting."""
    net.endpoints.stop(RUN_DEADLINE)  # no new connection or slot for the abandoned probes
    now = time.perf_counter()
    for future, (index, started) in list(in_flight.items()):
        in_flight.pop(future)
        if future.done():
            results[index] = future.result()  # re-raises KeyboardInterrupt & co.
        else:
            results[index] = _deadline_reached(probes[index], run_limit, now - started)
    while queue:
        index, probe = queue.popleft()
        results[index] = _deadline_reached(probe, run_limit, None)


def run_report(
    probes: Sequence[Probe],
    target: Target,
    net: Net,
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    secrets: Collection[str] = (),
    deadline: float | None = None,
    run_limit: float | None = None,
) -> RunReport:
    """run_probes, timed and wrapped in the RunReport every command writes (with the run's DNS
    statistics when `net` has a DNS client)."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    results = run_probes(
        probes,
        target,
        net,
        max_workers=max_workers,
        secrets=secrets,
        deadline=deadline,
        run_limit=run_limit,
    )
    return RunReport(
        run_id=new_run_id(started),
        target=target,
        started=started,
        duration_s=time.perf_counter() - t0,
        results=tuple(results),
        dns=net.dns_client.stats.to_json() if net.dns_client is not None else None,
    )

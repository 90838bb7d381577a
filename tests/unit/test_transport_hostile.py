"""Hostile servers against the real transport probes (issue 4, "Hostile servers").

Each misbehaving server (tests/hostile_server.py, bound to the probe's real port on a random
127.x.y.z address) must end the probe in a finding or in an ERROR outcome with the right
reason, never BUG; within the configured I/O timeout plus one second (the issue's hang-safety
requirement, the one wall-clock bound asserted here) and in bounded memory (measured with
tracemalloc around the probe run, well under the 10 MB a flooding server sends).

The per-host connection limit is checked the same way: several endpoint probes run at once
against one address whose server holds every connection for a while and records how many were
open at the same time.
"""

from __future__ import annotations

import ssl
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest

from probes.checks.mailbox_endpoints import ImapStartTls, ImapTls, Pop3StartTls, Pop3Tls
from probes.checks.smtp_endpoints import SmtpMx, SmtpSubmission, SmtpSubmissions
from probes.checks.smtp_relay import SmtpRelay
from probes.model import ErrorReason, Outcome, ProbeResult, Severity, Target, Timeouts
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.probe import BaseProbe
from probes.runner import Redactor, run_one, run_probes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_server as hs

IO_S = 1.0
DRIP_IO_S = 2.0  # the drip test: each byte comes within the I/O timeout, the reply never does
TEN_MB = 10 * 1024 * 1024
MEMORY_CAP = 2 * 1024 * 1024
# A hang guard (pytest-timeout), not a speed limit.
pytestmark = pytest.mark.timeout(60)

PROBES: dict[str, type[BaseProbe]] = {
    "smtp.mx": SmtpMx,
    "smtp.submission": SmtpSubmission,
    "smtp.submissions": SmtpSubmissions,
    "smtp.relay": SmtpRelay,
    "imap.starttls": ImapStartTls,
    "imap.tls": ImapTls,
    "pop3.starttls": Pop3StartTls,
    "pop3.tls": Pop3Tls,
}
PORTS = {
    "smtp.mx": 25,
    "smtp.submission": 587,
    "smtp.submissions": 465,
    "smtp.relay": 25,
    "imap.starttls": 143,
    "imap.tls": 993,
    "pop3.starttls": 110,
    "pop3.tls": 995,
}


def target_for(host: str, ca_file: str | None, io: float = IO_S) -> Target:
    return Target(
        domain="example.test",
        mx_hosts=(host,),
        submission_hosts=(host,),
        mailbox_hosts=(host,),
        ca_file=ca_file,
        timeouts=Timeouts(connect=2, io=io, probe=30),
    )


def net_for(target: Target, max_per_host: int = 2) -> Net:
    # Static DNS (no records): smtp.mx compares the banner name with the PTR; nothing may ask
    # a real resolver.
    return Net.for_target(
        target, dns_client=DnsClient(StaticBackend({})), max_per_host=max_per_host
    )


@dataclass(frozen=True)
class Case:
    probe: str
    handler: hs.Handler
    outcome: Outcome
    reason: ErrorReason | None = None  # for ERROR outcomes
    code: str | None = None  # for COMPLETED outcomes: the FAIL finding expected
    io: float = IO_S


def error(probe: str, handler: hs.Handler, reason: ErrorReason, io: float = IO_S) -> Case:
    return Case(probe, handler, Outcome.ERROR, reason=reason, io=io)


def found(probe: str, handler: hs.Handler, code: str) -> Case:
    return Case(probe, handler, Outcome.COMPLETED, code=code)


SMTP_BANNER = b"220 hostile.test ESMTP ready\r\n"
P, T, C = ErrorReason.PROTOCOL, ErrorReason.TIMEOUT, ErrorReason.CONNECTIVITY

CASES = {
    # --- SMTP with STARTTLS (port 25) -----------------------------------------------------------
    "smtp garbage banner": error("smtp.mx", hs.garbage_banner, P),
    "smtp no banner": error("smtp.mx", hs.silent, T),
    "smtp no banner, closed at once": error("smtp.mx", hs.close_at_once, C),
    "smtp banner dripped 1 byte/s": error("smtp.mx", hs.drip(SMTP_BANNER), T, io=DRIP_IO_S),
    "smtp endless banner line": error("smtp.mx", hs.endless_line, P),
    "smtp 10 MB 220- banner": error(
        "smtp.mx", hs.flood(b"220-hostile " + b"y" * 60 + b"\r\n", TEN_MB), P
    ),
    "smtp 10 MB banner of long 220- lines": error(
        "smtp.mx", hs.flood(b"220-" + b"L" * 8000 + b"\r\n", TEN_MB), P
    ),
    "smtp 10 MB 250- EHLO reply": error(
        "smtp.mx",
        hs.smtp(on_ehlo=hs.flood(b"250-X-HOSTILE " + b"z" * 60 + b"\r\n", TEN_MB)),
        P,
    ),
    "smtp endless EHLO line": error("smtp.mx", hs.smtp(on_ehlo=hs.endless_line), P),
    "smtp STARTTLS answered 454": found(
        "smtp.mx", hs.smtp(starttls=b"454 4.7.0 TLS not available\r\n"), "STARTTLS_FAILED"
    ),
    "smtp closed after the STARTTLS go-ahead": found(
        "smtp.mx", hs.smtp(after_go_ahead=hs.close_at_once), "STARTTLS_FAILED"
    ),
    "smtp closed after reading the ClientHello": found(
        "smtp.mx", hs.smtp(after_go_ahead=hs.half_handshake(b"")), "STARTTLS_FAILED"
    ),
    "smtp garbage instead of a ServerHello": found(
        "smtp.mx", hs.smtp(after_go_ahead=hs.half_handshake(hs.GARBAGE)), "STARTTLS_FAILED"
    ),
    "smtp half a ServerHello, then closed": found(
        "smtp.mx",
        hs.smtp(after_go_ahead=hs.half_handshake(hs.HALF_SERVER_HELLO)),
        "STARTTLS_FAILED",
    ),
    "smtp half a ServerHello, then silence": error(
        "smtp.mx",
        hs.smtp(after_go_ahead=hs.half_handshake(hs.HALF_SERVER_HELLO, then_close=False)),
        T,
    ),
    "smtp TLS done, then silence": error(
        "smtp.mx", hs.smtp(after_go_ahead=hs.tls_then(hs.silent)), T
    ),
    "smtp submission STARTTLS answered 454": found(
        "smtp.submission",
        hs.smtp(ehlo=("STARTTLS", "AUTH PLAIN"), starttls=b"454 4.7.0 TLS not available\r\n"),
        "STARTTLS_FAILED",
    ),
    # --- SMTP over implicit TLS (465) -----------------------------------------------------------
    "smtps silence (no ServerHello)": error("smtp.submissions", hs.silent, T),
    "smtps closed at once": found("smtp.submissions", hs.close_at_once, "TLS_HANDSHAKE_FAILED"),
    "smtps closed after reading the ClientHello": found(
        "smtp.submissions", hs.half_handshake(b""), "TLS_HANDSHAKE_FAILED"
    ),
    "smtps garbage instead of a ServerHello": found(
        "smtp.submissions", hs.half_handshake(hs.GARBAGE), "TLS_HANDSHAKE_FAILED"
    ),
    "smtps half a ServerHello, then closed": found(
        "smtp.submissions", hs.half_handshake(hs.HALF_SERVER_HELLO), "TLS_HANDSHAKE_FAILED"
    ),
    "smtps half a ServerHello, then silence": error(
        "smtp.submissions", hs.half_handshake(hs.HALF_SERVER_HELLO, then_close=False), T
    ),
    "smtps TLS done, then silence": error("smtp.submissions", hs.tls_then(hs.silent), T),
    "smtps TLS done, then garbage": error("smtp.submissions", hs.tls_then(hs.garbage_banner), P),
    "smtps TLS done, then an endless line": error(
        "smtp.submissions", hs.tls_then(hs.endless_line), P
    ),
    # --- smtp.relay -----------------------------------------------------------------------------
    "relay garbage banner": error("smtp.relay", hs.garbage_banner, P),
    "relay no banner": error("smtp.relay", hs.silent, T),
    "relay 10 MB 250- EHLO reply": error(
        "smtp.relay",
        hs.smtp(on_ehlo=hs.flood(b"250-X-HOSTILE " + b"z" * 60 + b"\r\n", TEN_MB)),
        P,
    ),
    # --- IMAP -----------------------------------------------------------------------------------
    "imap garbage greeting": error("imap.starttls", hs.garbage_banner, P),
    "imap no greeting": error("imap.starttls", hs.silent, T),
    "imap no greeting, closed at once": error("imap.starttls", hs.close_at_once, C),
    "imap endless greeting line": error("imap.starttls", hs.endless_line, P),
    "imap 10 MB untagged flood": error(
        "imap.starttls", hs.flood(b"* OK " + b"w" * 70 + b"\r\n", TEN_MB, first=b"* OK hi\r\n"), P
    ),
    "imap STARTTLS refused": found(
        "imap.starttls", hs.imap(starttls="NO TLS not available"), "STARTTLS_FAILED"
    ),
    "imap STARTTLS answered BAD": found(
        "imap.starttls", hs.imap(starttls="BAD unknown command"), "STARTTLS_FAILED"
    ),
    "imaps half a ServerHello, then closed": found(
        "imap.tls", hs.half_handshake(hs.HALF_SERVER_HELLO), "TLS_HANDSHAKE_FAILED"
    ),
    "imaps TLS done, then silence": error("imap.tls", hs.tls_then(hs.silent), T),
    "imaps TLS done, then garbage": error("imap.tls", hs.tls_then(hs.garbage_banner), P),
    # --- POP3 -----------------------------------------------------------------------------------
    "pop3 garbage greeting": error("pop3.starttls", hs.garbage_banner, P),
    "pop3 no greeting": error("pop3.starttls", hs.silent, T),
    "pop3 no greeting, closed at once": error("pop3.starttls", hs.close_at_once, C),
    "pop3 endless greeting line": error("pop3.starttls", hs.endless_line, P),
    "pop3 10 MB CAPA reply": error(
        "pop3.starttls",
        # The greeting and the first line of the CAPA answer, then 10 MB of capability lines.
        hs.flood(b"X-HOSTILE " + b"v" * 60 + b"\r\n", TEN_MB, first=b"+OK hi\r\n+OK\r\n"),
        P,
    ),
    "pop3 STLS refused": found(
        "pop3.starttls", hs.pop3(stls="-ERR TLS not available"), "STARTTLS_FAILED"
    ),
    "pop3s TLS done, then silence": error("pop3.tls", hs.tls_then(hs.silent), T),
    "pop3s TLS done, then garbage": error("pop3.tls", hs.tls_then(hs.garbage_banner), P),
    "pop3s closed after reading the ClientHello": found(
        "pop3.tls", hs.half_handshake(b""), "TLS_HANDSHAKE_FAILED"
    ),
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    return hs.tls_material(tmp_path_factory.mktemp("hostile-tls"))


def run_hostile(
    case: Case, tls: tuple[ssl.SSLContext, str]
) -> tuple[ProbeResult, int, hs.HostileServer]:
    """Run the case's probe against its server; (result, tracemalloc peak, server)."""
    context, ca_file = tls
    port = PORTS[case.probe]
    with hs.HostileServer(case.handler, ports=(port,), tls=context) as server:
        target = target_for(server.host, ca_file, io=case.io)
        net = net_for(target)
        probe = PROBES[case.probe]()
        tracemalloc.start()
        try:
            result = run_one(probe, target, net, Redactor())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return result, peak, server


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_server_ends_in_a_finding_or_a_classified_error_in_time_and_memory(
    name: str, tls: tuple[ssl.SSLContext, str]
) -> None:
    case = CASES[name]
    result, peak, server = run_hostile(case, tls)
    detail = f"{result.outcome} {result.error} {result.error_detail} {result.findings}"
    assert server.errors == []
    assert server.accepted >= 1  # the probe really talked to the hostile server
    assert result.error is not ErrorReason.BUG, detail
    assert result.outcome is case.outcome, detail
    if case.outcome is Outcome.ERROR:
        assert result.error is case.reason, detail
    else:
        fails = [f.code for f in result.findings if f.severity is Severity.FAIL]
        assert case.code in fails, detail
        subject = f"{server.host}:{PORTS[case.probe]}"
        assert all(f.subject == subject for f in result.findings), detail
    assert result.duration_s < case.io + 1, detail
    assert peak < MEMORY_CAP, f"peak {peak} bytes"


# ----- the per-host connection limit -------------------------------------------------------------
ALL_PORTS = (25, 587, 465, 143, 993, 110, 995)
HOLD_S = 0.3  # holds-then-closes: every connection stays open this long
TALK_DELAY_S = 0.1  # talks-slowly: a pause before every greeting (4 connections per endpoint)

SPEAKERS: dict[int, hs.Handler] = {
    25: hs.smtp(),
    587: hs.smtp(),
    465: hs.tls_then(hs.smtp(starttls=None)),
    143: hs.imap(),
    993: hs.tls_then(hs.imap(capabilities="IMAP4rev1 AUTH=PLAIN")),
    110: hs.pop3(),
    995: hs.tls_then(hs.pop3(capa=("USER",))),
}


def talks_slowly(peer: hs.Peer) -> None:
    """A correct server on every port that pauses before its greeting."""
    peer.wait(TALK_DELAY_S)
    SPEAKERS[peer.port](peer)


@pytest.mark.parametrize(
    ("handler", "max_per_host"),
    [
        pytest.param(hs.hold_then_close(HOLD_S), 1, id="holds-then-closes-1"),
        pytest.param(hs.hold_then_close(HOLD_S), 2, id="holds-then-closes-2"),
        pytest.param(talks_slowly, 2, id="talks-slowly-2"),
    ],
)
def test_concurrent_endpoint_probes_never_exceed_the_per_host_connection_limit(
    max_per_host: int, handler: hs.Handler, tmp_path: Path
) -> None:
    probes = [cls() for cls in PROBES.values()]
    with hs.HostileServer(handler, ports=ALL_PORTS) as server:
        server.tls, ca_file = hs.tls_material(tmp_path, server.host)
        target = target_for(server.host, ca_file, io=2.0)
        results = run_probes(probes, target, net_for(target, max_per_host=max_per_host))
    detail = [(r.probe_id, r.outcome, r.error, r.error_detail) for r in results]
    assert server.errors == []
    assert all(r.error is not ErrorReason.BUG for r in results), detail
    assert all(r.error is not ErrorReason.TIMEOUT for r in results), detail
    assert server.accepted >= len(probes)
    assert server.max_concurrent == max_per_host, (server.max_concurrent, server.accepted)
    if handler is talks_slowly:
        # A slow but correct server: every probe completes (main conversation, then the TLS
        # version sweep on connections of its own) and finds nothing wrong.
        assert [r.outcome for r in results] == [Outcome.COMPLETED] * len(probes), detail
        problems = [
            (f.code, f.subject)
            for r in results
            for f in r.findings
            if f.severity is not Severity.INFO
        ]
        assert problems == []
        negotiated = {f.subject for r in results for f in r.findings if f.code == "TLS_NEGOTIATED"}
        assert negotiated == {f"{server.host}:{port}" for port in ALL_PORTS}

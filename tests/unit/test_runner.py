import imaplib
import poplib
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterable

import dns.exception
import dns.resolver
import pytest

from probes.codes import Code, declare
from probes.errors import DnsError, ProbeConfigError, ProbeSkipped, ProtocolError
from probes.model import ErrorReason, Finding, Outcome, Severity, Target, Timeouts
from probes.net import Net
from probes.probe import BaseProbe, Probe
from probes.runner import CLASSIFICATION, classify, run_probes

TARGET = Target(domain="example.com", timeouts=Timeouts(probe=5.0))
# Every code the toy probes below emit (a probe declares the codes it can emit).
TEST_CODES = declare(
    Code("TEST_CODE", "a test finding", Severity.WARN),
    Code("FIRST", "the finding before the error", Severity.FAIL),
)
# A hang guard (pytest-timeout), not a speed limit: speed is measured in benchmarks.
HANG_GUARD_S = 30


class Raising(BaseProbe):
    description = "raises a given exception"
    codes = TEST_CODES

    def __init__(self, exc: BaseException, probe_id: str = "test.raising") -> None:
        self.exc = exc
        self.id = probe_id  # type: ignore[misc]

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        raise self.exc


class Yielding(BaseProbe):
    description = "yields one finding"
    codes = TEST_CODES

    def __init__(self, probe_id: str = "test.yielding", delay: float = 0.0) -> None:
        self.id = probe_id  # type: ignore[misc]
        self.delay = delay

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        time.sleep(self.delay)
        yield self.finding("TEST_CODE", Severity.WARN, "found", subject=target.domain)


class Hanging(BaseProbe):
    id = "test.hanging"
    description = "blocks until released"
    codes = TEST_CODES

    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished = threading.Event()

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        self.release.wait(30)
        self.finished.set()
        return []


def _run_one(exc: BaseException, **kwargs):
    [result] = run_probes([Raising(exc)], TARGET, **kwargs)
    return result


EXCEPTION_TABLE = [
    (ProbeSkipped("tool not installed"), Outcome.SKIPPED, None),
    (TimeoutError("timed out"), Outcome.ERROR, ErrorReason.TIMEOUT),
    (dns.resolver.LifetimeTimeout(timeout=1.0, errors={}), Outcome.ERROR, ErrorReason.TIMEOUT),
    (ssl.SSLError(1, "handshake failure"), Outcome.ERROR, ErrorReason.TLS),
    (ssl.CertificateError("hostname mismatch"), Outcome.ERROR, ErrorReason.TLS),
    (ssl.SSLCertVerificationError(1, "verify failed"), Outcome.ERROR, ErrorReason.TLS),
    (dns.resolver.NXDOMAIN(), Outcome.ERROR, ErrorReason.DNS),
    (dns.resolver.NoNameservers(), Outcome.ERROR, ErrorReason.DNS),
    (dns.exception.DNSException("x"), Outcome.ERROR, ErrorReason.DNS),
    (DnsError("SERVFAIL"), Outcome.ERROR, ErrorReason.DNS),
    (socket.gaierror(-2, "Name or service not known"), Outcome.ERROR, ErrorReason.DNS),
    (smtplib.SMTPServerDisconnected("gone"), Outcome.ERROR, ErrorReason.CONNECTIVITY),
    (smtplib.SMTPResponseException(554, b"no"), Outcome.ERROR, ErrorReason.PROTOCOL),
    (imaplib.IMAP4.error("BAD"), Outcome.ERROR, ErrorReason.PROTOCOL),
    (poplib.error_proto("-ERR"), Outcome.ERROR, ErrorReason.PROTOCOL),
    (ProtocolError("unexpected reply"), Outcome.ERROR, ErrorReason.PROTOCOL),
    (ProbeConfigError("bad selector"), Outcome.ERROR, ErrorReason.CONFIG),
    (ConnectionRefusedError(111, "refused"), Outcome.ERROR, ErrorReason.CONNECTIVITY),
    (ConnectionResetError(104, "reset"), Outcome.ERROR, ErrorReason.CONNECTIVITY),
    (OSError(113, "no route to host"), Outcome.ERROR, ErrorReason.CONNECTIVITY),
    (KeyError("oops"), Outcome.ERROR, ErrorReason.BUG),
    (ValueError("oops"), Outcome.ERROR, ErrorReason.BUG),
]


@pytest.mark.parametrize(
    ("exc", "outcome", "reason"), EXCEPTION_TABLE, ids=lambda v: type(v).__name__
)
def test_exception_maps_to_outcome_and_reason(exc, outcome, reason):
    result = _run_one(exc)
    assert (result.outcome, result.error) == (outcome, reason)
    assert result.probe_id == "test.raising"
    assert result.error_detail
    assert "\n" not in result.error_detail


def test_classification_table_ends_with_catch_all_bug():
    assert CLASSIFICATION[-1][0] is Exception
    assert classify(RuntimeError()) == (Outcome.ERROR, ErrorReason.BUG)


def test_real_socket_timeout_is_timeout():
    class SlowPeer(BaseProbe):
        id = "test.slow_peer"
        description = "reads from a socket that never answers"
        codes = TEST_CODES

        def run(self, target, net):
            a, b = socket.socketpair()
            with a, b:
                a.settimeout(0.01)
                a.recv(1)
            return []

    [result] = run_probes([SlowPeer()], TARGET)
    assert (result.outcome, result.error) == (Outcome.ERROR, ErrorReason.TIMEOUT)


def test_tls_rows_come_before_oserror():
    order = [row[0] for row in CLASSIFICATION]
    assert order.index(ssl.SSLError) < order.index(OSError)
    assert order.index(TimeoutError) < order.index(OSError)


def test_error_detail_names_exception_type():
    result = _run_one(ProtocolError("unexpected reply"))
    assert result.error_detail is not None
    assert result.error_detail.startswith("ProtocolError:")


def test_multiline_error_detail_becomes_one_line():
    result = _run_one(ProtocolError("line one\r\nline two"))
    assert result.error_detail is not None
    assert "\n" not in result.error_detail and "\r" not in result.error_detail


def test_secrets_are_redacted_from_error_detail():
    exc = smtplib.SMTPAuthenticationError(535, b"auth failed for hunter2 / s3cr3t-token")
    result = _run_one(exc, secrets=["hunter2", "s3cr3t-token", ""])
    assert result.error_detail is not None
    assert "hunter2" not in result.error_detail
    assert "s3cr3t-token" not in result.error_detail
    assert "***" in result.error_detail


def test_longer_secret_containing_a_shorter_one_is_fully_redacted():
    result = _run_one(ProtocolError("pw=abcdef"), secrets=["abc", "abcdef"])
    assert result.error_detail is not None
    assert "def" not in result.error_detail


def test_successful_probe_completes_with_findings_and_duration():
    [result] = run_probes([Yielding()], TARGET)
    assert result.outcome is Outcome.COMPLETED
    assert result.error is None
    assert [f.code for f in result.findings] == ["TEST_CODE"]
    assert result.findings[0].probe_id == "test.yielding"
    assert result.duration_s >= 0


def test_findings_before_an_error_are_kept_with_error_outcome():
    class Partial(BaseProbe):
        id = "test.partial"
        description = "finds then fails"
        codes = TEST_CODES

        def run(self, target, net):
            yield self.finding("FIRST", Severity.FAIL, "found first")
            raise TimeoutError("then timed out")

    [result] = run_probes([Partial()], TARGET)
    assert (result.outcome, result.error) == (Outcome.ERROR, ErrorReason.TIMEOUT)
    assert [f.code for f in result.findings] == ["FIRST"]


def test_yielding_a_non_finding_is_a_bug():
    class Wrong(BaseProbe):
        id = "test.wrong"
        description = "yields a string"
        codes = TEST_CODES

        def run(self, target, net):
            yield "not a finding"

    [result] = run_probes([Wrong()], TARGET)
    assert (result.outcome, result.error) == (Outcome.ERROR, ErrorReason.BUG)


def test_results_keep_the_order_probes_were_given():
    probes = [Yielding(f"test.p{i}", delay=0.05 * (5 - i)) for i in range(6)]
    results = run_probes(probes, TARGET, max_workers=6)
    assert [r.probe_id for r in results] == [f"test.p{i}" for i in range(6)]


class Meeting(BaseProbe):
    description = "finishes only when all its peers are running at the same time"
    codes = TEST_CODES

    def __init__(self, probe_id: str, meeting: threading.Barrier) -> None:
        self.id = probe_id  # type: ignore[misc]
        self.meeting = meeting

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        self.meeting.wait()  # BrokenBarrierError (ERROR/BUG) unless all 8 run at once
        return []


@pytest.mark.timeout(HANG_GUARD_S)
def test_probes_run_concurrently():
    meeting = threading.Barrier(8, timeout=10.0)  # a hang guard: run one by one, it breaks
    target = Target(domain="example.com", timeouts=Timeouts(probe=20.0))
    try:
        probes = [Meeting(f"test.p{i}", meeting) for i in range(8)]
        results = run_probes(probes, target, max_workers=8)
    finally:
        meeting.abort()
    assert all(r.outcome is Outcome.COMPLETED for r in results)


@pytest.mark.timeout(HANG_GUARD_S)
def test_probe_exceeding_probe_timeout_is_error_timeout():
    hanging = Hanging()
    target = Target(domain="example.com", timeouts=Timeouts(probe=0.2))
    try:
        results = run_probes([hanging, Yielding()], target)
        # The run ended on the probe timeout: the hanging probe is still waiting to be released.
        assert not hanging.finished.is_set()
    finally:
        hanging.release.set()
    assert (results[0].outcome, results[0].error) == (Outcome.ERROR, ErrorReason.TIMEOUT)
    assert results[1].outcome is Outcome.COMPLETED


def test_abandoned_probes_do_not_block_queued_ones():
    hanging = [Hanging() for _ in range(2)]
    target = Target(domain="example.com", timeouts=Timeouts(probe=0.3))
    try:
        probes = [*hanging, Yielding("test.a"), Yielding("test.b")]
        results = run_probes(probes, target, max_workers=2)
    finally:
        for probe in hanging:
            probe.release.set()
    assert [r.error for r in results[:2]] == [ErrorReason.TIMEOUT, ErrorReason.TIMEOUT]
    assert [r.outcome for r in results[2:]] == [Outcome.COMPLETED, Outcome.COMPLETED]


def test_keyboard_interrupt_propagates():
    with pytest.raises(KeyboardInterrupt):
        run_probes([Raising(KeyboardInterrupt())], TARGET)


def test_no_probes_gives_no_results():
    assert run_probes([], TARGET) == []


def test_net_is_passed_to_probes():
    seen = []

    class Recording(BaseProbe):
        id = "test.recording"
        description = "records its net"
        codes = TEST_CODES

        def run(self, target, net):
            seen.append(net)
            return []

    net = Net(resolver="192.0.2.53")
    run_probes([Recording()], TARGET, net)
    assert seen == [net]


def test_base_probe_instances_satisfy_probe_protocol():
    assert isinstance(Yielding(), Probe)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
    ],
)
def test_resolver_addr_parses_ip_and_port(value, expected):
    assert Net(resolver=value).resolver_addr() == expected


@pytest.mark.parametrize("value", ["dns.example", "1.2.3.4:0", "1.2.3.4:99999", "1.2.3.4:x", ""])
def test_bad_resolver_is_config_error(value):
    with pytest.raises(ProbeConfigError, match="resolver"):
        Net(resolver=value).resolver_addr()


def test_net_for_target_takes_timeouts_resolver_and_ca_file():
    target = Target(domain="example.com", resolver="127.0.0.1:53", ca_file="/tmp/ca.pem")
    net = Net.for_target(target)
    assert (net.timeouts, net.resolver, net.ca_file) == (
        target.timeouts,
        "127.0.0.1:53",
        "/tmp/ca.pem",
    )

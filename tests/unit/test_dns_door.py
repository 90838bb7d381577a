"""The resolver door: cache, counts, CNAME chasing, failures as data, hostile resolvers."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest

from probes.errors import DnsError
from probes.net import Net
from probes.net import dns as dns_door
from probes.net.dns import (
    BADNAME,
    BADRESPONSE,
    CNAME_LOOP,
    NETWORK,
    NOERROR,
    NXDOMAIN,
    TIMEOUT,
    DnsClient,
    DnsTimeout,
    RawAnswer,
    StaticBackend,
    WireBackend,
    interpret,
)

# A hang guard (pytest-timeout), not a speed limit: speed is measured in benchmarks.
HANG_GUARD_S = 30


class CountingBackend(StaticBackend):
    def __init__(self, records, delay: float = 0.0):
        super().__init__(records)
        self.asked: list[tuple[str, str]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def resolve(self, name, rdtype):
        with self.lock:
            self.asked.append((name, rdtype))
        time.sleep(self.delay)
        return super().resolve(name, rdtype)


RECORDS = {
    ("example.com", "TXT"): ["v=spf1 -all", ("part one ", "part two")],
    ("example.com", "MX"): [(10, "mx.example.com.")],
    ("mx.example.com", "A"): ["192.0.2.1"],
    ("alias.example.com", "CNAME"): ["mx.example.com"],
    ("loop1.example.com", "CNAME"): ["loop2.example.com"],
    ("loop2.example.com", "CNAME"): ["loop1.example.com"],
    ("broken.example.com", "TXT"): "SERVFAIL",
    ("slow.example.com", "TXT"): "TIMEOUT",
}


def test_txt_character_strings_are_joined_without_separator():
    client = DnsClient(StaticBackend(RECORDS))
    assert client.query("example.com", "TXT").texts() == ["v=spf1 -all", "part one part two"]


def test_same_question_is_asked_once_per_run_even_with_other_spelling():
    backend = CountingBackend(RECORDS)
    client = DnsClient(backend)
    for name in ("example.com", "Example.COM.", "example.com"):
        client.query(name, "txt")
    assert backend.asked == [("example.com", "TXT")]
    assert client.stats.queries == 1
    assert client.stats.cache_hits == 2


def test_concurrent_askers_share_one_query():
    backend = CountingBackend(RECORDS, delay=0.05)
    client = DnsClient(backend)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.query("example.com", "MX"), range(16)))
    assert backend.asked == [("example.com", "MX")]
    assert {a.records for a in answers} == {((10, "mx.example.com"),)}


class MeetingBackend(StaticBackend):
    """Each question waits in resolve() until `parties` questions are there at the same time."""

    def __init__(self, records, parties: int):
        super().__init__(records)
        # The timeout is a hang guard: asked one by one, the meeting breaks (BADRESPONSE).
        self.meeting = threading.Barrier(parties, timeout=HANG_GUARD_S / 3)

    def resolve(self, name, rdtype):
        self.meeting.wait()
        return super().resolve(name, rdtype)


@pytest.mark.timeout(HANG_GUARD_S)
def test_query_many_asks_in_parallel():
    records = {(f"n{i}.example.com", "A"): ["192.0.2.1"] for i in range(20)}
    client = DnsClient(MeetingBackend(records, parties=20))
    answers = client.query_many([(f"n{i}.example.com", "A") for i in range(20)])
    # Answered only because all 20 questions were in flight at once, on the shared pool.
    assert [a.records for a in answers] == [("192.0.2.1",)] * 20


def test_cname_is_followed_and_reported():
    answer = DnsClient(StaticBackend(RECORDS)).query("alias.example.com", "A")
    assert answer.rcode == NOERROR
    assert answer.records == ("192.0.2.1",)
    assert answer.cnames == ("mx.example.com",)
    assert answer.canonical_name == "mx.example.com"


def test_cname_target_answer_comes_from_the_cache():
    backend = CountingBackend(RECORDS)
    client = DnsClient(backend)
    client.query("mx.example.com", "A")
    client.query("alias.example.com", "A")
    assert backend.asked.count(("mx.example.com", "A")) == 1


def test_cname_loop_is_a_failure_not_a_hang():
    answer = DnsClient(StaticBackend(RECORDS)).query("loop1.example.com", "TXT")
    assert answer.rcode == CNAME_LOOP
    assert not answer.ok
    with pytest.raises(DnsError):
        answer.raise_for_failure()


def test_long_cname_chain_is_cut():
    chain = {(f"c{i}.example.com", "CNAME"): [f"c{i + 1}.example.com"] for i in range(20)}
    answer = DnsClient(StaticBackend(chain)).query("c0.example.com", "A")
    assert answer.rcode == CNAME_LOOP


def test_nxdomain_and_nodata_are_void_answers():
    client = DnsClient(StaticBackend(RECORDS))
    nx = client.query("nothing.example.com", "TXT")
    nodata = client.query("mx.example.com", "TXT")
    assert (nx.rcode, nx.ok, nx.void) == (NXDOMAIN, True, True)
    assert (nodata.rcode, nodata.ok, nodata.void) == (NOERROR, True, True)


def test_servfail_is_data_and_raises_dns_error_on_request():
    answer = DnsClient(StaticBackend(RECORDS)).query("broken.example.com", "TXT")
    assert answer.rcode == "SERVFAIL" and not answer.ok and not answer.void
    with pytest.raises(DnsError, match=r"broken\.example\.com"):
        answer.raise_for_failure()


def test_timeout_raises_a_timeout_error():
    answer = DnsClient(StaticBackend(RECORDS)).query("slow.example.com", "TXT")
    with pytest.raises(TimeoutError):
        answer.raise_for_failure()
    assert issubclass(DnsTimeout, DnsError)


def test_failures_are_cached_and_counted():
    backend = CountingBackend(RECORDS)
    client = DnsClient(backend)
    client.query("broken.example.com", "TXT")
    client.query("broken.example.com", "TXT")
    assert backend.asked == [("broken.example.com", "TXT")]
    assert client.stats.failures == 1


@pytest.mark.parametrize(
    "name",
    ["a" * 64 + ".example.com", "a..example.com", ".".join(["abcdefghij"] * 26)],
)
def test_invalid_names_are_refused_without_asking(name):
    backend = CountingBackend(RECORDS)
    answer = DnsClient(backend).query(name, "TXT")
    assert answer.rcode == BADNAME
    assert backend.asked == []


def test_a_backend_bug_becomes_badresponse_not_a_hang():
    class Broken:
        def resolve(self, name, rdtype):
            raise RuntimeError("boom")

        def describe(self):
            return "broken"

        def describe_dig(self, name, rdtype):
            return "dig"

    answer = DnsClient(Broken()).query("example.com", "A")
    assert answer.rcode == BADRESPONSE


def test_cache_is_bounded():
    records = {(f"n{i}.example.com", "A"): ["192.0.2.1"] for i in range(50)}
    client = DnsClient(StaticBackend(records), cache_size=10)
    for i in range(50):
        client.query(f"n{i}.example.com", "A")
    assert len(client._cache) <= 10


def test_net_builds_its_door_from_the_resolver_setting():
    net = Net(resolver="127.0.0.1:5353")
    assert net.dns is net.dns
    assert net.dns.dig("example.com", "TXT") == "dig +short TXT example.com @127.0.0.1 -p 5353"


# --- interpreting real replies ------------------------------------------------------------------


def _reply(qname: str, qtype: str, *rrsets: tuple[str, str, str], rcode=dns.rcode.NOERROR):
    query = dns.message.make_query(qname, qtype)
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    for owner, rdtype, value in rrsets:
        response.answer.append(dns.rrset.from_text(owner, 60, "IN", rdtype, value))
    return response


def test_interpret_follows_a_cname_chain_inside_the_reply():
    response = _reply(
        "www.example.com.",
        "A",
        ("www.example.com.", "CNAME", "edge.example.net."),
        ("edge.example.net.", "A", "192.0.2.7"),
    )
    raw = interpret(response, "www.example.com", "A")
    assert raw == RawAnswer(NOERROR, ("192.0.2.7",), cname=None, chain=("edge.example.net",))


def test_interpret_leaves_an_unanswered_cname_target_to_the_client():
    response = _reply("www.example.com.", "A", ("www.example.com.", "CNAME", "other.example."))
    raw = interpret(response, "www.example.com", "A")
    assert raw.cname == "other.example" and raw.records == ()


def test_interpret_reports_server_failures():
    raw = interpret(_reply("x.example.", "A", rcode=dns.rcode.REFUSED), "x.example", "A")
    assert raw.rcode == "REFUSED"


# --- hostile resolvers on loopback -------------------------------------------------------------


@pytest.fixture
def silent_udp():
    """A 'resolver' that reads every query and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()
    sock.close()


@pytest.mark.timeout(HANG_GUARD_S)
def test_resolver_that_never_answers_times_out_within_the_configured_timeout(
    silent_udp, monkeypatch
):
    per_try: list[float] = []
    real_udp = dns_door._udp_exchange  # the door's one UDP exchange (issue 17: no dnspython)

    def counted_udp(*args, **kwargs):
        per_try.append(kwargs["timeout"])
        return real_udp(*args, **kwargs)

    monkeypatch.setattr(dns_door, "_udp_exchange", counted_udp)
    client = DnsClient(WireBackend([silent_udp], timeout=0.6, attempts=2))
    answer = client.query("example.com", "TXT")
    assert answer.rcode == TIMEOUT
    # The configured timeout bounds the whole question: two tries share it, not 0.6 s each.
    assert per_try == [pytest.approx(0.3)] * 2


def test_closed_port_is_a_network_or_timeout_failure():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    addr = sock.getsockname()
    sock.close()
    answer = DnsClient(WireBackend([addr], timeout=0.5)).query("example.com", "TXT")
    assert answer.rcode in (NETWORK, TIMEOUT)


class _Handler(socketserver.BaseRequestHandler):
    mode = "garbage"

    def handle(self):
        if isinstance(self.request, tuple):  # UDP
            data, sock = self.request
            query = dns.message.from_wire(data)
            if self.server.mode == "garbage":
                sock.sendto(b"\x00\x01garbage", self.client_address)
                return
            response = dns.message.make_response(query)
            response.flags |= dns.flags.TC  # "too big": come back over TCP
            sock.sendto(response.to_wire(), self.client_address)
        else:  # TCP
            length = int.from_bytes(self.request.recv(2), "big")
            query = dns.message.from_wire(self.request.recv(length))
            response = dns.message.make_response(query)
            big = " ".join('"' + "x" * 255 + '"' for _ in range(30))  # ~7.7 KB TXT
            response.answer.append(
                dns.rrset.from_text(query.question[0].name, 60, "IN", "TXT", big)
            )
            wire = response.to_wire(max_size=65535)
            self.request.sendall(len(wire).to_bytes(2, "big") + wire)


@pytest.fixture
def fake_resolver():
    # UDP and TCP on the same port: a free UDP port may be taken for TCP, so retry.
    for _ in range(50):
        udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _Handler)
        port = udp.server_address[1]
        try:
            tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), _Handler)
            break
        except OSError:
            udp.server_close()
    servers = [udp, tcp]
    for server in servers:
        server.mode = "truncate"
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield servers, ("127.0.0.1", port)
    for server in servers:
        server.shutdown()
        server.server_close()


def test_truncated_udp_answer_is_retried_over_tcp(fake_resolver):
    _, addr = fake_resolver
    answer = DnsClient(WireBackend([addr], timeout=2.0)).query("big.example.com", "TXT")
    assert answer.rcode == NOERROR
    assert len(answer.texts()[0]) == 30 * 255


def test_garbage_reply_is_a_failure_with_a_reason(fake_resolver):
    servers, addr = fake_resolver
    for server in servers:
        server.mode = "garbage"
    answer = DnsClient(WireBackend([addr], timeout=1.0)).query("example.com", "TXT")
    assert not answer.ok
    assert answer.rcode in (BADRESPONSE, TIMEOUT)
    assert answer.detail

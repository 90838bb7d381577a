"""The answer cache shared by the doors of a worker process (`check --domains`, issue 17):
asked once per worker, TTL- and memory-bounded, single-flight, counted per domain."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dns.message
import dns.rcode
import dns.rrset
import pytest

from probes.audit import audit_domains
from probes.checks.dns_spf import DnsSpf
from probes.model import Target
from probes.net import Net
from probes.net.answer_cache import AnswerCache, shared_answers
from probes.net.dns import (
    NOERROR,
    NXDOMAIN,
    DnsClient,
    RawAnswer,
    StaticBackend,
    WireBackend,
    client_for,
    interpret,
)
from tests.tiny_dns import TinyDns

HANG_GUARD_S = 30


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedBackend:
    """Answers each question with the next of its scripted RawAnswers (the last one repeats);
    counts what it was asked. `delay` holds every answer that long (a slow network)."""

    def __init__(self, script: dict[tuple[str, str], list[RawAnswer]], delay: float = 0.0):
        self.script = script
        self.asked: list[tuple[str, str]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def resolve(self, name: str, rdtype: str) -> RawAnswer:
        with self.lock:
            self.asked.append((name, rdtype))
            answers = self.script.get((name, rdtype)) or [RawAnswer(NXDOMAIN)]
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        time.sleep(self.delay)
        return answer

    def describe(self) -> str:
        return "scripted"

    def describe_dig(self, name: str, rdtype: str) -> str:
        return f"dig {rdtype} {name}"


SPF = RawAnswer(NOERROR, ((b"v=spf1 ip4:192.0.2.0/24 -all",),), ttl=300)


def test_a_question_two_domains_share_goes_to_the_network_once():
    backend = ScriptedBackend({("_spf.provider.example", "TXT"): [SPF]})
    cache = AnswerCache()
    first, second = DnsClient(backend, shared=cache), DnsClient(backend, shared=cache)
    assert first.query("_spf.provider.example", "TXT").texts() == ["v=spf1 ip4:192.0.2.0/24 -all"]
    assert second.query("_spf.provider.example", "TXT").records == SPF.records
    assert backend.asked == [("_spf.provider.example", "TXT")]
    # each domain's count is the questions it needed; the network count what it sent
    assert first.stats.to_json() == {
        "queries": 1,
        "cache_hits": 0,
        "failures": 0,
        "network_queries": 1,
    }
    assert (second.stats.queries, second.stats.network_queries) == (1, 0)


def test_a_repeated_question_within_a_domain_is_a_cache_hit_not_a_query():
    backend = ScriptedBackend({("_spf.provider.example", "TXT"): [SPF]})
    client = DnsClient(backend, shared=AnswerCache())
    client.query("_spf.provider.example", "TXT")
    client.query("_spf.provider.example", "TXT")
    assert (client.stats.queries, client.stats.cache_hits, client.stats.network_queries) == (
        1,
        1,
        1,
    )


def test_a_door_without_shared_cache_sends_every_query_to_the_network():
    client = DnsClient(StaticBackend({("a.example", "A"): ["192.0.2.1"]}))
    client.query("a.example", "A")
    client.query("b.example", "A")
    assert client.stats.queries == client.stats.network_queries == 2
    # a single-domain run (`check DOMAIN`) builds such a door
    assert Net(resolver="127.0.0.1:5353").dns.shared is None
    assert client_for(("127.0.0.1", 5353), timeout=1).shared is None
    assert client_for(("127.0.0.1", 5353), timeout=1, shared=True).shared is shared_answers()


def test_an_answer_expires_after_its_ttl():
    clock = Clock()
    later = RawAnswer(NOERROR, ((b"v=spf1 -all",),), ttl=300)
    backend = ScriptedBackend({("p.example", "TXT"): [SPF, later]})
    cache = AnswerCache(clock=clock)
    DnsClient(backend, shared=cache).query("p.example", "TXT")
    clock.now += 299
    assert DnsClient(backend, shared=cache).query("p.example", "TXT").records == SPF.records
    clock.now += 2
    fresh = DnsClient(backend, shared=cache)
    assert fresh.query("p.example", "TXT").records == later.records
    assert fresh.stats.network_queries == 1
    assert len(backend.asked) == 2
    assert cache.stats().expirations == 1


def test_a_long_ttl_is_capped():
    cache = AnswerCache(max_ttl=60)
    assert cache.ttl_for(RawAnswer(NOERROR, ("192.0.2.1",), ttl=86400)) == 60
    assert cache.ttl_for(RawAnswer(NOERROR, ("192.0.2.1",), ttl=30)) == 30
    assert cache.ttl_for(RawAnswer(NOERROR, ("192.0.2.1",))) == 60  # backend gave no TTL


def test_a_zero_ttl_answer_is_not_kept():
    zero = RawAnswer(NOERROR, ("192.0.2.1",), ttl=0)
    backend = ScriptedBackend({("z.example", "A"): [zero]})
    cache = AnswerCache()
    for _ in range(3):
        DnsClient(backend, shared=cache).query("z.example", "A")
    assert len(backend.asked) == 3
    assert cache.stats().entries == 0


def _negative_reply(qname: str, soa_ttl: int, minimum: int) -> dns.message.Message:
    query = dns.message.make_query(qname, "TXT")
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.NXDOMAIN)
    soa = f"ns.example. host.example. 1 7200 900 1209600 {minimum}"
    reply.authority.append(dns.rrset.from_text("example.", soa_ttl, "IN", "SOA", soa))
    return dns.message.from_wire(reply.to_wire())


def test_a_negative_answer_lives_for_its_soa_negative_ttl():
    # RFC 2308 §5: the smaller of the SOA's own TTL and its MINIMUM field
    name = "_dmarc.gone.example"
    raw = interpret(_negative_reply(name + ".", 3600, 120), name, "TXT")
    assert (raw.rcode, raw.ttl) == (NXDOMAIN, 120)
    raw = interpret(_negative_reply(name + ".", 45, 120), name, "TXT")
    assert raw.ttl == 45
    clock = Clock()
    backend = ScriptedBackend({("_dmarc.gone.example", "TXT"): [raw]})
    cache = AnswerCache(clock=clock)
    DnsClient(backend, shared=cache).query("_dmarc.gone.example", "TXT")
    clock.now += 44
    assert DnsClient(backend, shared=cache).query("_dmarc.gone.example", "TXT").rcode == NXDOMAIN
    assert len(backend.asked) == 1
    clock.now += 2
    DnsClient(backend, shared=cache).query("_dmarc.gone.example", "TXT")
    assert len(backend.asked) == 2


def test_a_negative_answer_is_capped_and_kept_briefly_without_soa():
    cache = AnswerCache(negative_ttl=300)
    assert cache.ttl_for(RawAnswer(NXDOMAIN, ttl=86400)) == 300
    assert cache.ttl_for(RawAnswer(NOERROR, ttl=86400)) == 300  # NODATA
    assert cache.ttl_for(RawAnswer(NXDOMAIN)) == 300


def test_a_failure_is_kept_briefly_then_asked_again():
    clock = Clock()
    servfail = RawAnswer("SERVFAIL", detail="server answered SERVFAIL")
    backend = ScriptedBackend({("p.example", "TXT"): [servfail, SPF]}, delay=0)
    cache = AnswerCache(failure_ttl=5, clock=clock)
    failed = DnsClient(backend, shared=cache)
    assert failed.query("p.example", "TXT").rcode == "SERVFAIL"
    assert failed.stats.failures == 1
    # within the failure TTL another domain gets the failure without asking again
    assert DnsClient(backend, shared=cache).query("p.example", "TXT").rcode == "SERVFAIL"
    assert len(backend.asked) == 1
    clock.now += 6  # never kept as long as an answer: asked again, answered now
    assert DnsClient(backend, shared=cache).query("p.example", "TXT").rcode == NOERROR
    assert len(backend.asked) == 2


def test_a_backend_exception_reaches_the_asker_and_is_not_kept():
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("backend bug")

    cache = AnswerCache()
    with pytest.raises(RuntimeError):
        cache.resolve(("s", "x.example", "A"), broken)
    raw, network = cache.resolve(("s", "x.example", "A"), lambda: SPF)
    assert (raw, network) == (SPF, True)
    assert cache.stats().entries == 1


def test_the_memory_bound_evicts_the_least_recently_used():
    records = {(f"n{i}.example", "TXT"): [("x" * 1000,)] for i in range(20)}
    backend = StaticBackend(records)
    cache = AnswerCache(max_bytes=8_000)
    door = DnsClient(backend, shared=cache)
    door.query("n0.example", "TXT")
    for i in range(1, 20):
        DnsClient(backend, shared=cache).query("n0.example", "TXT")  # n0 stays recently used
        DnsClient(backend, shared=cache).query(f"n{i}.example", "TXT")
    stats = cache.stats()
    assert stats.bytes <= 8_000
    assert 1 < stats.entries < 20
    assert stats.evictions == 20 - stats.entries
    kept = DnsClient(backend, shared=cache)
    kept.query("n0.example", "TXT")
    kept.query("n19.example", "TXT")
    assert kept.stats.network_queries == 0
    evicted = DnsClient(backend, shared=cache)
    evicted.query("n1.example", "TXT")
    assert evicted.stats.network_queries == 1


def test_the_entry_bound_holds():
    cache = AnswerCache(max_entries=5)
    for i in range(12):
        cache.resolve(("s", f"n{i}.example", "A"), lambda: RawAnswer(NOERROR, ("192.0.2.1",)))
    assert cache.stats().entries == 5
    assert cache.stats().evictions == 7


@pytest.mark.timeout(HANG_GUARD_S)
def test_identical_questions_from_many_domains_at_once_wait_for_one_query():
    backend = ScriptedBackend({("_spf.provider.example", "TXT"): [SPF]}, delay=0.2)
    cache = AnswerCache()
    doors = [DnsClient(backend, shared=cache) for _ in range(8)]
    start = threading.Barrier(len(doors))

    def ask(door: DnsClient):
        start.wait()
        return door.query("_spf.provider.example", "TXT")

    with ThreadPoolExecutor(len(doors)) as pool:
        answers = list(pool.map(ask, doors))
    assert all(a.records == SPF.records for a in answers)
    assert backend.asked == [("_spf.provider.example", "TXT")]
    assert [d.stats.queries for d in doors] == [1] * 8
    assert sum(d.stats.network_queries for d in doors) == 1
    assert cache.stats().shared_waits == 7


def test_doors_asking_different_resolvers_do_not_share_answers():
    with (
        TinyDns({("p.example", "A"): ["192.0.2.1"]}) as one,
        TinyDns({("p.example", "A"): ["192.0.2.2"]}) as two,
    ):
        cache = AnswerCache()
        a = DnsClient(WireBackend([_addr(one)], timeout=2), shared=cache)
        b = DnsClient(WireBackend([_addr(two)], timeout=2), shared=cache)
        assert a.query("p.example", "A").records == ("192.0.2.1",)
        assert b.query("p.example", "A").records == ("192.0.2.2",)
        same = DnsClient(WireBackend([_addr(one)], timeout=2), shared=cache)
        assert same.query("p.example", "A").records == ("192.0.2.1",)
        assert (one.asked, two.asked) == ([("p.example", "A")], [("p.example", "A")])
        assert same.stats.network_queries == 0


def test_a_wire_answer_carries_its_ttl():
    with TinyDns({("p.example", "TXT"): ['"v=spf1 -all"']}) as server:
        raw = WireBackend([_addr(server)], timeout=2).resolve("p.example", "TXT")
    assert (raw.rcode, raw.ttl) == (NOERROR, 300)  # tiny_dns serves TTL 300


def test_the_root_name_is_asked_as_the_root():
    with TinyDns({}) as server:
        raw = WireBackend([_addr(server)], timeout=2).resolve(".", "DNSKEY")
    # it reached the server (before: ".." was refused as BADNAME without asking)
    assert raw.rcode in (NOERROR, NXDOMAIN)
    assert len(server.asked) == 1


def _addr(server: TinyDns) -> tuple[str, int]:
    host, port = server.address.rsplit(":", 1)
    return host, int(port)


@pytest.mark.timeout(HANG_GUARD_S)
def test_an_audit_asks_a_shared_include_once_and_counts_it_per_domain():
    include = "v=spf1 ip4:192.0.2.0/24 -all"
    records = {("_spf.provider.example", "TXT"): [f'"{include}"']}
    domains = [f"d{i}.example" for i in range(6)]
    for d in domains:
        records[(d, "TXT")] = ['"v=spf1 include:_spf.provider.example -all"']
    with TinyDns(records) as server:
        template = Target(domain=domains[0], resolver=server.address)
        reports = list(audit_domains(domains, lambda: [DnsSpf()], template, concurrency=3))
        asked = list(server.asked)
    assert [r.target.domain for r in reports] == domains
    assert asked.count(("_spf.provider.example", "TXT")) == 1
    for report in reports:
        assert report.dns is not None
        assert report.dns["queries"] == 2  # its own TXT and the include: what it needed
    network = [r.dns["network_queries"] for r in reports if r.dns]
    assert sum(network) == len(asked) == len(domains) + 1


@pytest.mark.timeout(HANG_GUARD_S)
def test_the_domains_summary_says_how_many_questions_went_to_the_network(tmp_path, capsys):
    from probes import cli

    records = {("_spf.provider.example", "TXT"): ['"v=spf1 -all"']}
    domains = [f"d{i}.example" for i in range(4)]
    for d in domains:
        records[(d, "TXT")] = ['"v=spf1 include:_spf.provider.example -all"']
    (tmp_path / "domains.txt").write_text("\n".join(domains) + "\n")
    with TinyDns(records) as server:
        argv = ["check", "--domains", str(tmp_path / "domains.txt"), "--probe", "dns.spf"]
        argv += ["--resolver", server.address, "--output", str(tmp_path / "out")]
        cli.main([*argv, "--no-history", "--processes", "1"])
    said = capsys.readouterr()
    assert "8 DNS queries (5 to the network)" in said.out + said.err


# --- the door's threads --------------------------------------------------------------------------


@pytest.mark.timeout(HANG_GUARD_S)
def test_the_wire_pool_runs_every_task_within_its_thread_bound():
    from probes.net.dns import WirePool

    pool = WirePool(size=4, name="test-wire")
    lock = threading.Lock()
    running, most, done = [0], [0], threading.Semaphore(0)

    def task(i: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        done.release()

    for i in range(40):
        pool.submit(task, i)
    for _ in range(40):
        assert done.acquire(timeout=10)
    assert most[0] == 4
    assert len([t for t in threading.enumerate() if t.name.startswith("test-wire")]) == 4


@pytest.mark.timeout(HANG_GUARD_S)
def test_an_idle_wire_thread_takes_the_next_task_and_a_failing_task_does_not_kill_it():
    from probes.net.dns import WirePool

    pool = WirePool(size=8, name="test-idle")
    finished = threading.Semaphore(0)

    def broken() -> None:
        finished.release()
        raise RuntimeError("task bug")

    for _ in range(5):
        pool.submit(broken)
        assert finished.acquire(timeout=10)
        time.sleep(0.01)  # the thread is back waiting
    assert len([t for t in threading.enumerate() if t.name.startswith("test-idle")]) == 1

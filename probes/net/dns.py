"""The resolver door: every DNS question mailprobe asks goes through a `DnsClient`.

- **One answer per (name, type) per run.** The client caches every answer, failures included,
  and concurrent askers of the same question share one in-flight query. `stats` counts the
  questions the run needed, what came from the run's cache and what went to the network.
- **Shared across domains.** A client made with `shared=` (`check --domains`: one per domain,
  `client_for(..., shared=True)`) is a view over a process-wide `AnswerCache`
  (probes.net.answer_cache): TTL- and memory-bounded, single-flight across domains. The
  run's own cache and counts stay its own; `stats.network_queries` counts the questions the
  shared cache did not have.
- **Failures are data.** `query()` never raises for a DNS-level problem: SERVFAIL, REFUSED,
  a timeout, a malformed reply, a CNAME loop or an invalid name come back as a `DnsAnswer`
  whose `rcode` says so (`answer.ok` is False). A probe either turns that into a finding or
  calls `answer.raise_for_failure()` and lets the runner classify it (ERROR/DNS or TIMEOUT).
- **Concurrency.** `submit()` returns a Future, `query_many()` asks several questions at once.
  Wire queries run on one bounded pool of threads (`WirePool`) shared by every client in the
  process; a wire query never waits on a queued one, so the pool cannot deadlock.
- **Backends.** `WireBackend` speaks DNS to a resolver (UDP, TCP when truncated); plain
  messages are built and read by probes.net.dns_wire, the rest by dnspython;
  `StaticBackend` answers from records held in memory (unit tests, the OpenSPF suite).

Names are handled lower-case, without the trailing dot ("." is the root).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import queue
import shlex
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from probes.errors import DnsError
from probes.names import InvalidDomain, to_ascii
from probes.net.answer_cache import AnswerCache, shared_answers
from probes.net.dns_wire import Unsupported, build_query, read_reply

# rcode values that are answers (the name does or does not exist); everything else is a failure.
NOERROR = "NOERROR"
NXDOMAIN = "NXDOMAIN"
# Pseudo-rcodes for failures that are not a server's rcode.
TIMEOUT = "TIMEOUT"  # no reply within the time allowed
NETWORK = "NETWORK"  # the resolver could not be reached (connection refused, unreachable)
BADNAME = "BADNAME"  # the question is not a valid DNS name (label > 63, name > 255, empty label)
BADRESPONSE = "BADRESPONSE"  # the reply could not be parsed or did not match the question
CNAME_LOOP = "CNAME_LOOP"  # a CNAME chain loops or is longer than MAX_CNAMES

MAX_CNAMES = 8
# The types asked with DO (RRSIGs and denial proofs): those probes.net.dnssec validates. The
# others (TXT above all: SPF, DMARC, DKIM, with many negative answers) are asked without, so
# a signed zone's bigger replies cost nothing where nothing validates them.
DNSSEC_TYPES = frozenset({"MX", "TLSA", "DS", "DNSKEY", "SOA"})
DEFAULT_POOL_SIZE = 128
DEFAULT_CACHE_SIZE = 200_000
EDNS_PAYLOAD = 1232


class DnsTimeout(DnsError, TimeoutError):
    """A DNS question got no answer in time (the runner reports ERROR/TIMEOUT)."""


@dataclass(frozen=True)
class DnsAnswer:
    """The answer to one question, after following CNAMEs.

    `records` holds the rdata of type `rdtype` at the end of the CNAME chain:
    TXT -> tuple of bytes strings per record (join them without separator for the value),
    A/AAAA -> address text, MX -> (preference, exchange name), PTR/CNAME/NS -> name,
    TLSA -> (usage, selector, mtype, hex data), SRV -> (priority, weight, port, "target"),
    anything else -> rdata text.
    """

    name: str
    rdtype: str
    rcode: str
    records: tuple[Any, ...] = ()
    cnames: tuple[str, ...] = ()  # the CNAME targets followed, in order
    detail: str | None = None  # why a failure happened (human readable)
    # The reply's DNSSEC material (RRSIGs, NSEC/NSEC3, the authority section) as dnspython
    # rrsets, for probes.net.dnssec; None when the backend gives none (StaticBackend).
    signed: Signed | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """The question was answered: the name exists (NOERROR) or does not (NXDOMAIN)."""
        return self.rcode in (NOERROR, NXDOMAIN)

    @property
    def void(self) -> bool:
        """Answered with nothing: NXDOMAIN, or NOERROR without records (RFC 7208 void lookup)."""
        return self.ok and not self.records

    @property
    def canonical_name(self) -> str:
        return self.cnames[-1] if self.cnames else self.name

    def texts(self) -> list[str]:
        """TXT records as strings: character-strings joined without separator, UTF-8 decoded
        with undecodable bytes replaced (parsers check for non-ASCII themselves)."""
        return [b"".join(parts).decode("utf-8", errors="replace") for parts in self.records]

    def raise_for_failure(self) -> DnsAnswer:
        """Return self when answered; raise DnsTimeout or DnsError naming the question if not."""
        if self.ok:
            return self
        text = f"{self.rdtype} {self.name}: {self.rcode}"
        if self.detail:
            text += f" ({self.detail})"
        if self.rcode == TIMEOUT:
            raise DnsTimeout(text)
        raise DnsError(text)


@dataclass(frozen=True)
class Signed:
    """A reply's sections as dnspython rrsets (the answer with its RRSIGs, the authority with
    SOA, NSEC/NSEC3 and their RRSIGs), kept for DNSSEC validation."""

    answer: tuple[Any, ...] = ()
    authority: tuple[Any, ...] = ()


@dataclass(frozen=True)
class RawAnswer:
    """What a backend returns for one question, before CNAME chasing.

    `records` are already in DnsAnswer form; `cname` is the alias target when the name is a
    CNAME and the backend did not give the target's records; `chain` lists CNAME targets the
    backend already followed (a recursive resolver returns the whole chain at once).
    """

    rcode: str
    records: tuple[Any, ...] = ()
    cname: str | None = None
    chain: tuple[str, ...] = ()
    detail: str | None = None
    signed: Signed | None = field(default=None, compare=False, repr=False)
    # Seconds the answer may be kept (positive: the smallest TTL of the answer's rrsets;
    # negative: the SOA's negative TTL, RFC 2308); None when the backend does not say.
    ttl: float | None = field(default=None, compare=False)


class Backend(Protocol):
    def resolve(self, name: str, rdtype: str) -> RawAnswer: ...

    def describe(self) -> str: ...

    def describe_dig(self, name: str, rdtype: str) -> str: ...


@dataclass
class DnsStats:
    queries: int = 0  # questions the run needed (its cache misses, CNAME follow-ups included)
    cache_hits: int = 0  # answered from the run's own cache
    failures: int = 0  # answers that were not NOERROR/NXDOMAIN
    network_queries: int = 0  # of `queries`, those that went to the backend (the network)

    def to_json(self) -> dict[str, int]:
        return {
            "queries": self.queries,
            "cache_hits": self.cache_hits,
            "failures": self.failures,
            "network_queries": self.network_queries,
        }


class WirePool:
    """The door's threads: at most `size`, started when no thread is idle, kept afterwards.

    Lighter than a ThreadPoolExecutor (whose every task makes a Future of its own besides the
    door's, and a thread wake-up per idle check): a task is a function and its arguments on a
    SimpleQueue. Tasks never wait on queued tasks (a wire query waits on nothing but its
    reply or an in-flight query another thread runs), so the bound cannot deadlock. Daemon
    threads: an interrupted run does not wait for its last DNS replies."""

    def __init__(self, size: int = DEFAULT_POOL_SIZE, name: str = "mailprobe-dns") -> None:
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Any, tuple[Any, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads that will take the next task at once
        self._backlog = 0  # tasks queued while every thread was busy

    def submit(self, fn: Any, *args: Any) -> None:
        self._queue.put((fn, args))
        with self._lock:
            if self._idle:
                self._idle -= 1
                return
            if self._threads >= self.size:
                self._backlog += 1
                return
            self._threads += 1
            number = self._threads
        threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True).start()

    def _work(self) -> None:
        while True:
            fn, args = self._queue.get()
            with contextlib.suppress(BaseException):  # a task reports its own failures
                fn(*args)
            del fn, args
            with self._lock:
                if self._backlog:
                    self._backlog -= 1  # this thread takes a queued task next
                else:
                    self._idle += 1


_pool_lock = threading.Lock()
_pool: WirePool | None = None


def _shared_pool() -> WirePool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WirePool()
        return _pool


@functools.lru_cache(maxsize=4096)
def normalize_name(name: str) -> str:
    """The name as asked: lower-case A-labels (probes.names.to_ascii, IDNA 2008 / UTS 46),
    no trailing dot. A name that cannot be encoded is asked as given (the backend refuses it)."""
    text = name.strip()
    try:
        text = to_ascii(text)
    except InvalidDomain:
        text = text.lower()
    if text in ("", "."):
        return "."
    return text.rstrip(".")


@functools.lru_cache(maxsize=4096)
def check_name(name: str) -> str | None:
    """None when `name` is a valid DNS name, else why not."""
    if name == ".":
        return None
    if len(name) > 253:
        return f"name is {len(name)} characters long (at most 253)"
    for label in name.split("."):
        if not label:
            return "empty label"
        if len(label.encode("utf-8", errors="replace")) > 63:
            return f"label {label[:20]!r}… longer than 63 bytes"
    return None


_ANCHORS: dict[tuple[Any, ...], Any] = {}
_ANCHORS_LOCK = threading.Lock()


def _anchors(path: str | None, load: Any) -> Any:
    """The trust anchors of `path` (None: the packaged root anchor), parsed once per process
    for as long as the file is unchanged: every domain of `check --domains` has a door, and
    so a validator, of its own."""
    key: tuple[Any, ...] = (path,)
    if path is not None:
        try:
            info = os.stat(path)
        except OSError:
            return load(path)  # the loader names the problem
        key = (path, info.st_mtime_ns, info.st_size, info.st_ino)
    with _ANCHORS_LOCK:
        known = _ANCHORS.get(key)
    if known is None:
        known = load(path)
        with _ANCHORS_LOCK:
            if len(_ANCHORS) > 16:
                _ANCHORS.clear()
            known = _ANCHORS.setdefault(key, known)
    return known


class DnsClient:
    """The per-run resolver door: cached, counted, concurrent. Thread-safe."""

    def __init__(
        self,
        backend: Backend,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        pool: ThreadPoolExecutor | WirePool | None = None,
        shared: AnswerCache | None = None,
    ) -> None:
        self.backend = backend
        self.shared = shared
        # The shared cache's key prefix: the resolver asked (doors asking different resolvers
        # never share answers); a backend without `cache_scope` shares with itself only.
        self._scope: Any = getattr(backend, "cache_scope", None) or ("backend", id(backend))
        self.stats = DnsStats()
        self._cache: OrderedDict[tuple[str, str], Future[DnsAnswer]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._pool = pool
        self._validators: dict[str | None, Any] = {}

    # --- asking -----------------------------------------------------------------------------

    def submit(self, name: str, rdtype: str) -> Future[DnsAnswer]:
        """Ask (name, rdtype) without waiting; the Future never raises for DNS problems."""
        key = (normalize_name(name), rdtype.upper())
        with self._lock:
            future = self._cache.get(key)
            if future is not None:
                self.stats.cache_hits += 1
                self._cache.move_to_end(key)
                return future
            future = Future()
            self._cache[key] = future
            while len(self._cache) > self._cache_size:
                oldest_key = next(iter(self._cache))
                if not self._cache[oldest_key].done():
                    break
                del self._cache[oldest_key]
        if self.shared is not None and self._answer_inline(future, *key):
            return future
        pool = self._pool or _shared_pool()
        pool.submit(self._fill, future, *key)
        return future

    def _answer_inline(self, future: Future[DnsAnswer], name: str, rdtype: str) -> bool:
        """Answer from the shared cache in the asker's thread, without a trip through the
        pool, when the shared cache holds a fresh answer that needs no CNAME follow-up."""
        assert self.shared is not None
        raw = self.shared.peek((self._scope, name, rdtype))
        if raw is None or (raw.cname is not None and not raw.records):
            return False
        with self._lock:
            self.stats.queries += 1
        self._finish(future, self._from_raw(name, rdtype, (), raw))
        return True

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Ask (name, rdtype) and wait for the answer (cached for the rest of the run)."""
        return self.submit(name, rdtype).result()

    def query_many(self, questions: Iterable[tuple[str, str]]) -> list[DnsAnswer]:
        """Ask several questions at once; answers in the order asked."""
        futures = [self.submit(name, rdtype) for name, rdtype in questions]
        return [f.result() for f in futures]

    def addresses(self, name: str) -> tuple[DnsAnswer, DnsAnswer]:
        """The A and AAAA answers for `name`, asked together."""
        a, aaaa = self.query_many([(name, "A"), (name, "AAAA")])
        return a, aaaa

    def validator(self, trust_anchor: str | None) -> Any:
        """The DNSSEC validator (probes.net.dnssec.Validator) for this door and trust anchor
        file (None: the IANA root anchor): one per door, so every target asking through it
        shares the validated keys of common zones (the root, a TLD, a hoster's zone).

        Raises probes.parse.trust_anchor.TrustAnchorError for an unusable anchor file."""
        with self._lock:
            known = self._validators.get(trust_anchor)
        if known is not None:
            return known
        from probes.net.dnssec import Validator
        from probes.parse.trust_anchor import load_trust_anchor

        made = Validator(self, _anchors(trust_anchor, load_trust_anchor))
        with self._lock:
            return self._validators.setdefault(trust_anchor, made)

    # --- reproducing ------------------------------------------------------------------------

    def dig(self, name: str, rdtype: str) -> str:
        """The dig command line that asks the same question of the same resolver."""
        return self.backend.describe_dig(name, rdtype)

    # --- internals --------------------------------------------------------------------------

    def _fill(self, future: Future[DnsAnswer], name: str, rdtype: str) -> None:
        try:
            answer = self._lookup(name, rdtype, ())
        except Exception as exc:  # a backend bug must not leave askers waiting forever
            answer = DnsAnswer(name, rdtype, BADRESPONSE, detail=f"{type(exc).__name__}: {exc}")
        self._finish(future, answer)

    def _finish(self, future: Future[DnsAnswer], answer: DnsAnswer) -> None:
        if not answer.ok:
            with self._lock:
                self.stats.failures += 1
        future.set_result(answer)

    def _lookup(self, name: str, rdtype: str, seen: tuple[str, ...]) -> DnsAnswer:
        """Ask the backend for (name, rdtype); CNAME targets go through the cache too."""
        problem = check_name(name)
        if problem is not None:
            return DnsAnswer(name, rdtype, BADNAME, detail=problem)
        with self._lock:
            self.stats.queries += 1
        if self.shared is None:
            with self._lock:
                self.stats.network_queries += 1
            raw = self.backend.resolve(name, rdtype)
        else:
            backend = self.backend
            raw, network = self.shared.resolve(
                (self._scope, name, rdtype), lambda: backend.resolve(name, rdtype)
            )
            if network:
                with self._lock:
                    self.stats.network_queries += 1
        return self._from_raw(name, rdtype, seen, raw)

    def _from_raw(self, name: str, rdtype: str, seen: tuple[str, ...], raw: RawAnswer) -> DnsAnswer:
        """The answer a backend's raw answer gives (CNAME targets asked through the cache)."""
        if raw.rcode not in (NOERROR, NXDOMAIN):
            return DnsAnswer(name, rdtype, raw.rcode, detail=raw.detail)
        chain = list(raw.chain)
        if raw.cname is not None and not raw.records:
            chain.append(normalize_name(raw.cname))
        visited = {name, *seen}
        for i, target in enumerate(chain):
            if target in visited:
                return DnsAnswer(
                    name, rdtype, CNAME_LOOP, cnames=tuple(chain[: i + 1]), detail=f"at {target}"
                )
            visited.add(target)
        if len(seen) + len(chain) > MAX_CNAMES:
            return DnsAnswer(
                name,
                rdtype,
                CNAME_LOOP,
                cnames=tuple(chain),
                detail=f"chain longer than {MAX_CNAMES}",
            )
        if raw.cname is None or raw.records:
            return DnsAnswer(
                name, rdtype, raw.rcode, raw.records, tuple(chain), raw.detail, raw.signed
            )
        tail = self._follow(chain[-1], rdtype, (*seen, name, *chain[:-1]))
        return DnsAnswer(
            name,
            rdtype,
            tail.rcode,
            tail.records,
            (*chain, *tail.cnames),
            tail.detail,
            _joined(raw.signed, tail.signed),
        )

    def _follow(self, target: str, rdtype: str, seen: tuple[str, ...]) -> DnsAnswer:
        """The answer for a CNAME target: from the cache when done, else asked here."""
        key = (target, rdtype)
        with self._lock:
            future = self._cache.get(key)
            if future is None:
                future = Future()
                self._cache[key] = future
                mine = True
            else:
                mine = False
                self.stats.cache_hits += 1
        if not mine:
            if future.done():
                return future.result()
            # Another thread is asking it right now; waiting could deadlock a loop: ask again.
            return self._lookup(target, rdtype, seen)
        try:
            answer = self._lookup(target, rdtype, seen)
        except Exception as exc:
            answer = DnsAnswer(target, rdtype, BADRESPONSE, detail=f"{type(exc).__name__}: {exc}")
        self._finish(future, answer)
        return answer


_NO_SIGNATURES = Signed()


def _joined(first: Signed | None, second: Signed | None) -> Signed | None:
    """The DNSSEC material of a CNAME hop and its target's answer, together."""
    if first is None or second is None:
        return second if first is None else first
    return Signed(first.answer + second.answer, second.authority)


# --- rdata conversion ------------------------------------------------------------------------


def _name_text(name: dns.name.Name) -> str:
    return normalize_name(name.to_text())


def convert_rdata(rdata: Any) -> Any:
    """One dnspython rdata in DnsAnswer form (see DnsAnswer.records)."""
    rdtype = rdata.rdtype
    if rdtype in (dns.rdatatype.TXT, dns.rdatatype.SPF):
        return tuple(bytes(s) for s in rdata.strings)
    if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return rdata.address
    if rdtype == dns.rdatatype.MX:
        return (int(rdata.preference), _name_text(rdata.exchange))
    if rdtype in (dns.rdatatype.PTR, dns.rdatatype.CNAME, dns.rdatatype.NS):
        return _name_text(rdata.target)
    if rdtype == dns.rdatatype.SRV:
        return (int(rdata.priority), int(rdata.weight), int(rdata.port), _name_text(rdata.target))
    if rdtype == dns.rdatatype.TLSA:
        return (int(rdata.usage), int(rdata.selector), int(rdata.mtype), rdata.cert.hex())
    return rdata.to_text()


def interpret(response: dns.message.Message, name: str, rdtype: str) -> RawAnswer:
    """A dnspython response to (name, rdtype) as a RawAnswer, CNAMEs in the reply followed."""
    rcode = dns.rcode.to_text(response.rcode())
    qtype = dns.rdatatype.from_text(rdtype)
    by_owner: dict[tuple[str, int], list[Any]] = {}
    for rrset in response.answer:
        if rrset.rdclass != dns.rdataclass.IN:
            continue
        key = (_name_text(rrset.name), rrset.rdtype)
        by_owner.setdefault(key, []).extend(rrset)
    chain: list[str] = []
    current = name
    while (current, dns.rdatatype.CNAME) in by_owner and qtype != dns.rdatatype.CNAME:
        target = _name_text(by_owner[(current, dns.rdatatype.CNAME)][0].target)
        if target in chain or target == name or len(chain) > MAX_CNAMES:
            chain.append(target)
            break
        chain.append(target)
        current = target
    records = tuple(convert_rdata(rd) for rd in by_owner.get((current, qtype), ()))
    if rcode not in (NOERROR, NXDOMAIN):
        return RawAnswer(rcode, detail="server answered " + rcode)
    cname = chain[-1] if chain and not records else None
    # The final target's records were not in the reply: the client asks for them itself.
    return RawAnswer(
        rcode,
        records,
        cname=cname,
        chain=tuple(chain[:-1]) if cname else tuple(chain),
        signed=Signed(tuple(response.answer), tuple(response.authority)),
        ttl=_ttl(response, positive=bool(records or chain)),
    )


def _ttl(response: dns.message.Message, *, positive: bool) -> int | None:
    """How long the reply may be kept: the smallest TTL of its answer rrsets, or for a
    negative reply its SOA's negative TTL (RFC 2308 §5: min(SOA TTL, SOA MINIMUM))."""
    if positive:
        return min((rrset.ttl for rrset in response.answer), default=None)
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return min(rrset.ttl, rrset[0].minimum)
    return None


class WireBackend:
    """Questions to a resolver over UDP (TCP when truncated), `attempts` tries per question."""

    def __init__(
        self,
        servers: Sequence[tuple[str, int]] | None = None,
        *,
        timeout: float = 5.0,
        attempts: int = 2,
        source: str | None = None,
    ) -> None:
        if servers is None:
            system = dns.resolver.Resolver()
            servers = [(str(ip), 53) for ip in system.nameservers]
            self.explicit = False
        else:
            self.explicit = True
        if not servers:
            raise DnsError("no DNS resolver configured (give --resolver IP[:PORT])")
        self.servers = list(servers)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.source = source

    def describe(self) -> str:
        ip, port = self.servers[0]
        return f"{ip}:{port}" if self.explicit else "system resolver"

    def describe_dig(self, name: str, rdtype: str) -> str:
        parts = ["dig", "+short", rdtype, shlex.quote(name)]
        if self.explicit:
            ip, port = self.servers[0]
            parts.append(f"@{ip}")
            if port != 53:
                parts += ["-p", str(port)]
        return " ".join(parts)

    @property
    def cache_scope(self) -> tuple[Any, ...]:
        """What answers depend on: the resolvers asked, from which source address."""
        return ("wire", tuple(self.servers), self.source)

    def resolve(self, name: str, rdtype: str) -> RawAnswer:
        dnssec = rdtype in DNSSEC_TYPES
        qid = int.from_bytes(os.urandom(2), "big")
        wire = build_query(qid, name, rdtype, dnssec=dnssec, payload=EDNS_PAYLOAD)
        if wire is None:  # a name or type outside the plain form: dnspython builds it
            try:
                wire = self._request(name, rdtype, dnssec).to_wire()
            except (dns.exception.DNSException, ValueError) as exc:
                return RawAnswer(BADNAME, detail=str(exc))
            qid = int.from_bytes(wire[:2], "big")
        per_try = self.timeout / self.attempts
        last = RawAnswer(TIMEOUT, detail=f"no answer within {self.timeout:g} s")
        for attempt in range(self.attempts):
            ip, port = self.servers[attempt % len(self.servers)]
            try:
                reply = _udp_exchange(wire, ip, port, timeout=per_try, source=self.source)
                raw = self._read(reply, wire, qid, name, rdtype, dnssec)
                if raw is None:  # truncated: the same question over TCP
                    raw = self._over_tcp(name, rdtype, dnssec, ip, port, per_try)
            except dns.exception.Timeout:
                last = RawAnswer(TIMEOUT, detail=f"no answer from {ip}:{port} in {per_try:g} s")
                continue
            except TimeoutError:
                last = RawAnswer(TIMEOUT, detail=f"no answer from {ip}:{port} in {per_try:g} s")
                continue
            except (ConnectionError, OSError) as exc:
                last = RawAnswer(NETWORK, detail=f"{ip}:{port}: {exc}")
                continue
            except dns.exception.DNSException as exc:
                last = RawAnswer(BADRESPONSE, detail=f"{ip}:{port}: {exc}")
                continue
            if raw.rcode == BADRESPONSE:
                last = raw
                continue
            if raw.rcode == "SERVFAIL" and attempt + 1 < self.attempts:
                last = raw
                continue
            return raw
        return last

    def _request(self, name: str, rdtype: str, dnssec: bool) -> dns.message.Message:
        """The query as dnspython builds it (the TCP fallback, names outside the plain form)."""
        return dns.message.make_query(
            dns.name.root if name == "." else name + ".",
            rdtype,
            use_edns=0,
            payload=EDNS_PAYLOAD,
            # CD: a validating resolver hands over bogus data too, so that
            # probes.net.dnssec can say why it is bogus rather than see SERVFAIL.
            flags=dns.flags.RD | dns.flags.CD,
            # DO: RRSIGs and denial proofs, for the types probes.net.dnssec validates
            want_dnssec=dnssec,
        )

    def _read(
        self, reply: bytes, query: bytes, qid: int, name: str, rdtype: str, dnssec: bool
    ) -> RawAnswer | None:
        """The reply as a RawAnswer (None: truncated). Read by probes.net.dns_wire when it is
        plain, else (and for DO questions, whose rrsets DNSSEC validation needs) by dnspython."""
        qname = query[12 : len(query) - 15]  # between the header and QTYPE, QCLASS, OPT
        try:
            got = read_reply(reply, qid, qname, name, rdtype, unsigned=dnssec)
        except Unsupported:
            pass
        else:
            if got.truncated:
                return None
            if got.rcode not in (NOERROR, NXDOMAIN):
                return RawAnswer(got.rcode, detail="server answered " + got.rcode)
            assert got.records is not None
            # A DO question's reply without any DNSSEC record (an unsigned zone): what the
            # validator sees in it is "no signatures", as from dnspython's rrsets.
            signed = _NO_SIGNATURES if dnssec else None
            return RawAnswer(got.rcode, got.records, got.cname, got.chain, None, signed, got.ttl)
        request = dns.message.from_wire(query)
        response = dns.message.from_wire(reply, raise_on_truncation=False)
        if not request.is_response(response):
            return RawAnswer(BADRESPONSE, detail="the reply does not answer the question asked")
        if response.flags & dns.flags.TC:
            return None
        return interpret(response, name, rdtype)

    def _over_tcp(
        self, name: str, rdtype: str, dnssec: bool, ip: str, port: int, timeout: float
    ) -> RawAnswer:
        response = dns.query.tcp(
            self._request(name, rdtype, dnssec), ip, timeout=timeout, port=port, source=self.source
        )
        if response.flags & dns.flags.TC:
            return RawAnswer(BADRESPONSE, detail="answer truncated even over TCP")
        return interpret(response, name, rdtype)


def _udp_exchange(query: bytes, ip: str, port: int, *, timeout: float, source: str | None) -> bytes:
    """Send `query` to ip:port over UDP and return the first reply from there with its ID.
    Raises TimeoutError after `timeout` seconds. The socket is not connected, as dnspython's
    is not: an ICMP "port unreachable" is not heard, so a dead resolver port times out."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if source is not None:
            sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.sendto(query, (ip, port))
        while True:
            reply, peer = sock.recvfrom(65535)
            if reply[:2] == query[:2] and _same_peer(peer, ip, port):
                return reply
            remaining = deadline - time.monotonic()  # a stray datagram: wait for ours
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)


def _same_peer(peer: Any, ip: str, port: int) -> bool:
    if peer[1] != port:
        return False
    return bool(peer[0] == ip or ipaddress.ip_address(peer[0]) == ipaddress.ip_address(ip))


class StaticBackend:
    """Answers from memory: {(name, TYPE): [records in DnsAnswer form] | rcode string}.

    A CNAME is given as {(name, "CNAME"): ["target"]}; TXT records may be str (one string),
    bytes, or a tuple of str/bytes (several character-strings). The rcode TIMEOUT stands for a
    server that never answers. Names not present at all are NXDOMAIN; present names without the
    asked type are NOERROR with no records.
    """

    def __init__(self, records: Mapping[tuple[str, str], Any]) -> None:
        self.data: dict[tuple[str, str], Any] = {}
        self.names: set[str] = set()
        for (name, rdtype), value in records.items():
            key = (normalize_name(name), rdtype.upper())
            self.data[key] = value if isinstance(value, str) else [_norm(rdtype, v) for v in value]
            self.names.add(key[0])

    def describe(self) -> str:
        return "static records"

    def describe_dig(self, name: str, rdtype: str) -> str:
        return f"dig +short {rdtype} {shlex.quote(name)}"

    def resolve(self, name: str, rdtype: str) -> RawAnswer:
        value = self.data.get((name, rdtype))
        if isinstance(value, str):
            return RawAnswer(value, detail="static " + value)
        if value:
            return RawAnswer(NOERROR, tuple(value))
        cname = self.data.get((name, "CNAME"))
        if isinstance(cname, str):
            return RawAnswer(cname, detail="static " + cname)
        if cname and rdtype != "CNAME":
            return RawAnswer(NOERROR, cname=cname[0])
        return RawAnswer(NOERROR if name in self.names else NXDOMAIN)


def _norm(rdtype: str, value: Any) -> Any:
    kind = rdtype.upper()
    if kind in ("TXT", "SPF"):
        parts = value if isinstance(value, tuple | list) else (value,)
        return tuple(p.encode() if isinstance(p, str) else bytes(p) for p in parts)
    if kind == "MX":
        pref, host = value
        return (int(pref), normalize_name(host))
    if kind in ("PTR", "CNAME", "NS"):
        return normalize_name(value)
    return value


def client_for(
    resolver: tuple[str, int] | None,
    *,
    timeout: float,
    source: str | None = None,
    shared: bool = False,
) -> DnsClient:
    """A DnsClient asking `resolver` (or the system's resolvers when None); with `shared`, a
    view over the process-wide answer cache (probes.net.answer_cache.shared_answers)."""
    servers = None if resolver is None else [resolver]
    backend = WireBackend(servers, timeout=timeout, source=source)
    return DnsClient(backend, shared=shared_answers() if shared else None)


__all__ = [
    "BADNAME",
    "BADRESPONSE",
    "CNAME_LOOP",
    "NETWORK",
    "NOERROR",
    "NXDOMAIN",
    "TIMEOUT",
    "DnsAnswer",
    "DnsClient",
    "DnsStats",
    "DnsTimeout",
    "RawAnswer",
    "Signed",
    "StaticBackend",
    "WireBackend",
    "client_for",
]

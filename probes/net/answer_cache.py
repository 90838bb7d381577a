"""Answers shared by every resolver door of a worker process (`check --domains`).

A fleet's domains share much of their DNS: a provider's `_spf` tree, its MX hosts and their
PTRs, a report collector's records, the blocklists' test entries. `AnswerCache` keeps the
backend's raw answers (before CNAME chasing, `probes.net.dns.RawAnswer`) for every door that
is a view over it, so such a question goes to the network once per worker, not once per
domain. Each door still keeps its own per-run cache and counts (`DnsClient.stats`): the
report's `queries` stays the questions that domain needed, `network_queries` says how many of
them this cache did not have.

- **TTL-bounded.** An answer lives for its TTL (the smallest of the answer's rrsets), at most
  `max_ttl`. A negative answer (NXDOMAIN, or no records) lives for its SOA's negative TTL
  (RFC 2308: the smaller of the SOA's TTL and its MINIMUM), at most `negative_ttl`, and for
  `negative_ttl` when it carries no SOA. A failure (SERVFAIL, REFUSED, a timeout, ...) lives
  for `failure_ttl` seconds only (RFC 9520: briefly), so one bad moment does not spoil a run.
  A TTL of 0 is not kept at all.
- **Memory-bounded.** A least-recently-used list within `max_entries` answers and about
  `max_bytes` (each answer's size estimated from its name and records).
- **Single-flight.** Concurrent askers of the same question (from different domains) wait
  for one network query. The query a waiter waits on is one backend call that never waits on
  anything else, so waiting cannot deadlock.
- **Thread-safe**, and keyed by the backend's scope (the resolver asked), so doors asking
  different resolvers never share answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probes.net.sized_lru import SizedLru

if TYPE_CHECKING:
    from probes.net.dns import RawAnswer

DEFAULT_MAX_ENTRIES = 20_000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_TTL = 3600.0  # a positive answer is kept at most an hour
DEFAULT_NEGATIVE_TTL = 300.0  # a negative answer at most 5 minutes (and without SOA: 5 min)
DEFAULT_FAILURE_TTL = 5.0  # a failure (SERVFAIL, timeout, ...) 5 seconds

_ENTRY_OVERHEAD = 360  # the entry, its key tuple, the RawAnswer and the LRU link, in bytes


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    hits: int  # answered from the cache
    network: int  # fetched (went to the network)
    shared_waits: int  # waited for another asker's in-flight fetch
    evictions: int  # dropped for the memory bound
    expirations: int  # found expired when asked


class _Entry:
    __slots__ = ("expires", "raw")

    def __init__(self, raw: RawAnswer, expires: float) -> None:
        self.raw = raw
        self.expires = expires


class AnswerCache:
    """Raw answers by (scope, name, type), shared by the doors of one process."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_ttl: float = DEFAULT_MAX_TTL,
        negative_ttl: float = DEFAULT_NEGATIVE_TTL,
        failure_ttl: float = DEFAULT_FAILURE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.failure_ttl = failure_ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: SizedLru[_Entry] = SizedLru(max_bytes=max_bytes, max_entries=max_entries)
        self._inflight: dict[Hashable, Future[RawAnswer]] = {}
        self._hits = self._network = self._waits = self._expirations = 0

    def resolve(self, key: Hashable, fetch: Callable[[], RawAnswer]) -> tuple[RawAnswer, bool]:
        """The answer for `key`: kept, being fetched by another asker (waited for), or
        fetched here with `fetch()`. Returns (answer, whether this call went to the network).
        An exception from `fetch` reaches this caller and every waiter, and is not kept."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry.expires > self.clock():
                    self._hits += 1
                    return entry.raw, False
                self._entries.pop(key)
                self._expirations += 1
            flight = self._inflight.get(key)
            if flight is None:
                flight = self._inflight[key] = Future()
                self._network += 1
                mine = True
            else:
                self._waits += 1
                mine = False
        if not mine:
            return flight.result(), False
        try:
            raw = fetch()
        except BaseException as exc:
            with self._lock:
                del self._inflight[key]
            flight.set_exception(exc)
            raise
        ttl = self.ttl_for(raw)
        with self._lock:
            del self._inflight[key]
            if ttl > 0:
                self._store(key, raw, self.clock() + ttl)
        flight.set_result(raw)
        return raw, True

    def peek(self, key: Hashable) -> RawAnswer | None:
        """The kept answer for `key` when fresh, else None (never fetches or waits)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= self.clock():
                return None
            self._hits += 1
            return entry.raw

    def ttl_for(self, raw: RawAnswer) -> float:
        """How long `raw` is kept (seconds; 0: not kept)."""
        from probes.net.dns import NOERROR, NXDOMAIN

        ttl = raw.ttl
        if raw.rcode not in (NOERROR, NXDOMAIN):
            return self.failure_ttl
        if raw.records or raw.cname is not None:
            return self.max_ttl if ttl is None else max(0.0, min(float(ttl), self.max_ttl))
        return self.negative_ttl if ttl is None else max(0.0, min(float(ttl), self.negative_ttl))

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                len(self._entries),
                self._entries.size,
                self._hits,
                self._network,
                self._waits,
                self._entries.evictions,
                self._expirations,
            )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _store(self, key: Hashable, raw: RawAnswer, expires: float) -> None:
        self._entries.put(key, _Entry(raw, expires), estimate_size(key, raw))


def estimate_size(key: Hashable, raw: RawAnswer) -> int:
    """About how many bytes an entry holds (Python objects included), for the memory bound."""
    size = _ENTRY_OVERHEAD + (len(key[-2]) if isinstance(key, tuple) and len(key) > 1 else 64)
    for record in raw.records:
        if isinstance(record, str):  # an address or a name
            size += 60 + len(record)
        elif isinstance(record, tuple):  # TXT strings, (preference, exchange), TLSA, SRV
            size += 56 + 8 * len(record)
            for part in record:
                size += 40 + len(part) if isinstance(part, str | bytes) else 32
        else:
            size += 64
    size += sum(60 + len(name) for name in raw.chain)
    if raw.detail:
        size += 60 + len(raw.detail)
    if raw.signed is not None:
        for rrset in (*raw.signed.answer, *raw.signed.authority):
            size += 400 + 300 * len(rrset)
    return size


_SHARED: AnswerCache | None = None
_SHARED_LOCK = threading.Lock()


def shared_answers() -> AnswerCache:
    """The process-wide cache (made on first use) that `check --domains` doors share."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = AnswerCache()
        return _SHARED


__all__ = ["AnswerCache", "CacheStats", "estimate_size", "shared_answers"]

"""A delaying DNS proxy for benchmarks: every query is answered `delay` seconds after it arrived.

    with DelayProxy(("127.1.2.99", 53), ("127.1.2.53", 53), delay=0.020) as proxy:
        ...                      # ask 127.1.2.99; proxy.counts() says how many queries came

It listens on UDP and TCP. Each query is forwarded at once to the upstream server (UDP over
UDP, TCP over TCP), and its answer is held back until `delay` has passed since the query
arrived (an answer slower than that is passed on as soon as it comes). Queries never wait on
one another: any number can be in flight, so the delay models a round trip, not a bottleneck.
An upstream failure (no answer within `upstream_timeout`, refused connection) gives SERVFAIL.

It runs its own asyncio loop in a background thread; `stop()` closes every socket it opened.
With `trace=True` it also records (arrival time, protocol, name, type) for each query.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

SOCKET_BUFFER = 4 * 1024 * 1024
DEFAULT_UPSTREAM_TIMEOUT = 5.0


@dataclass
class ProxyCounts:
    udp: int = 0
    tcp: int = 0
    servfail: int = 0  # answers the proxy made up because the upstream failed

    @property
    def total(self) -> int:
        return self.udp + self.tcp

    def __sub__(self, other: ProxyCounts) -> ProxyCounts:
        return ProxyCounts(
            self.udp - other.udp, self.tcp - other.tcp, self.servfail - other.servfail
        )


@dataclass(frozen=True)
class TraceEntry:
    at: float  # time.monotonic() when the query arrived
    proto: str  # "udp" | "tcp"
    name: str
    rdtype: str


def servfail_for(query: bytes) -> bytes | None:
    """A SERVFAIL answer to `query` (None when the query cannot be parsed)."""
    try:
        msg = dns.message.from_wire(query)
    except (dns.exception.DNSException, ValueError):
        return None
    response = dns.message.make_response(msg)
    response.set_rcode(dns.rcode.SERVFAIL)
    return response.to_wire()


def question_of(wire: bytes) -> tuple[str, str]:
    """(name, type) of a query's first question, for traces; ("?", "?") when unparsable."""
    try:
        msg = dns.message.from_wire(wire)
        q = msg.question[0]
        return q.name.to_text(omit_final_dot=True).lower(), dns.rdatatype.to_text(q.rdtype)
    except (dns.exception.DNSException, ValueError, IndexError):
        return "?", "?"


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, proxy: DelayProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        self.proxy._udp_query(data, addr)


class _UdpUpstream(asyncio.DatagramProtocol):
    def __init__(self, proxy: DelayProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        self.proxy._udp_answer(data)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        pass


class DelayProxy:
    """See the module docstring. Start/stop it from any thread; it is a context manager."""

    def __init__(
        self,
        listen: tuple[str, int],
        upstream: tuple[str, int],
        *,
        delay: float = 0.020,
        upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
        trace: bool = False,
    ) -> None:
        self.listen = listen
        self.upstream = upstream
        self.delay = delay
        self.upstream_timeout = upstream_timeout
        self.trace_enabled = trace
        self._counts = ProxyCounts()
        self._lock = threading.Lock()
        self._trace: list[TraceEntry] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        # UDP: one upstream socket, query IDs rewritten to keep concurrent queries apart.
        self._front: _UdpFront | None = None
        self._up: _UdpUpstream | None = None
        self._free_ids: deque[int] = deque()
        self._pending: dict[int, tuple[int, object, float, asyncio.TimerHandle]] = {}
        self._tcp_server: asyncio.base_events.Server | None = None
        self._tcp_tasks: set[asyncio.Task] = set()

    # ----- public ---------------------------------------------------------------------------
    def start(self) -> DelayProxy:
        self._thread = threading.Thread(target=self._run, name="dns-delay-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def counts(self) -> ProxyCounts:
        with self._lock:
            return ProxyCounts(self._counts.udp, self._counts.tcp, self._counts.servfail)

    def set_trace(self, on: bool) -> None:
        with self._lock:
            self.trace_enabled = on
            self._trace = []

    def trace(self) -> list[TraceEntry]:
        with self._lock:
            return list(self._trace)

    # ----- loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            if not self._ready.is_set():
                self._error = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        ids = list(range(65536))
        random.shuffle(ids)
        self._free_ids = deque(ids)
        front_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for s in (front_sock, up_sock):
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            front_sock.bind(self.listen)
            up_sock.connect(self.upstream)
            front_transport, front = await loop.create_datagram_endpoint(
                lambda: _UdpFront(self), sock=front_sock
            )
            up_transport, up = await loop.create_datagram_endpoint(
                lambda: _UdpUpstream(self), sock=up_sock
            )
            self._tcp_server = await asyncio.start_server(
                self._tcp_client, self.listen[0], self.listen[1], reuse_address=True, backlog=512
            )
        except BaseException:
            front_sock.close()
            up_sock.close()
            raise
        self._front, self._up = front, up
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            self._tcp_server.close()
            for task in list(self._tcp_tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp_server.wait_closed(), 2)
            for _, _, _, timer in self._pending.values():
                timer.cancel()
            self._pending.clear()
            front_transport.close()
            up_transport.close()

    def _record(self, proto: str, wire: bytes) -> float:
        now = time.monotonic()
        with self._lock:
            if proto == "udp":
                self._counts.udp += 1
            else:
                self._counts.tcp += 1
            if self.trace_enabled:
                self._trace.append(TraceEntry(now, proto, *question_of(wire)))
        return now

    # ----- UDP ------------------------------------------------------------------------------
    def _udp_query(self, data: bytes, addr) -> None:
        if len(data) < 12:
            return
        arrived = self._record("udp", data)
        assert self._loop is not None and self._up is not None and self._up.transport
        if not self._free_ids:  # 65,536 in flight: answer SERVFAIL rather than mix them up
            self._reply_udp(servfail_for(data), addr, arrived, failed=True)
            return
        new_id = self._free_ids.pop()
        (orig_id,) = struct.unpack("!H", data[:2])
        timer = self._loop.call_later(self.upstream_timeout, self._udp_expired, new_id, data)
        self._pending[new_id] = (orig_id, addr, arrived, timer)
        self._up.transport.sendto(struct.pack("!H", new_id) + data[2:])

    def _udp_answer(self, data: bytes) -> None:
        if len(data) < 12:
            return
        (new_id,) = struct.unpack("!H", data[:2])
        entry = self._pending.pop(new_id, None)
        if entry is None:
            return  # late answer to an expired query
        orig_id, addr, arrived, timer = entry
        timer.cancel()
        self._free_ids.appendleft(new_id)  # reuse IDs last: a late answer cannot hit a new query
        self._reply_udp(struct.pack("!H", orig_id) + data[2:], addr, arrived)

    def _udp_expired(self, new_id: int, query: bytes) -> None:
        entry = self._pending.pop(new_id, None)
        if entry is None:
            return
        _, addr, arrived, _ = entry
        self._free_ids.appendleft(new_id)
        self._reply_udp(servfail_for(query), addr, arrived, failed=True)

    def _reply_udp(self, wire: bytes | None, addr, arrived: float, failed: bool = False) -> None:
        if failed:
            with self._lock:
                self._counts.servfail += 1
        if wire is None or self._front is None or self._front.transport is None:
            return
        transport = self._front.transport
        wait = arrived + self.delay - time.monotonic()
        assert self._loop is not None
        if wait > 0:
            self._loop.call_later(wait, transport.sendto, wire, addr)
        else:
            transport.sendto(wire, addr)

    # ----- TCP ------------------------------------------------------------------------------
    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        write_lock = asyncio.Lock()
        tasks: set[asyncio.Task] = set()
        try:
            while True:
                try:
                    head = await reader.readexactly(2)
                    (length,) = struct.unpack("!H", head)
                    query = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                arrived = self._record("tcp", query)
                task = asyncio.create_task(self._tcp_one(query, arrived, writer, write_lock))
                tasks.add(task)
                self._tcp_tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(self._tcp_tasks.discard)
            if tasks:  # the client half-closed: finish its queries before closing
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _tcp_one(self, query: bytes, arrived: float, writer, write_lock) -> None:
        try:
            answer = await asyncio.wait_for(self._tcp_upstream(query), self.upstream_timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            answer = servfail_for(query)
            with self._lock:
                self._counts.servfail += 1
        if answer is None:
            return
        wait = arrived + self.delay - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        async with write_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()

    async def _tcp_upstream(self, query: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*self.upstream)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(length)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def waves(entries: list[TraceEntry], gap: float) -> Iterator[list[TraceEntry]]:
    """Group a trace into bursts: a query more than `gap` after the previous one starts a new
    burst (with a delaying proxy, each burst is one round of dependent questions)."""
    burst: list[TraceEntry] = []
    for entry in sorted(entries, key=lambda e: e.at):
        if burst and entry.at - burst[-1].at > gap:
            yield burst
            burst = []
        burst.append(entry)
    if burst:
        yield burst


__all__ = ["DelayProxy", "ProxyCounts", "TraceEntry", "servfail_for", "waves"]

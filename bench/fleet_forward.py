"""Counting TCP forwarders for many loopback addresses at once, on one asyncio loop.

bench/fleet.py puts a stand-in mail host on each of M addresses (127.30.x.y), each listening
on 7 ports: 1,400 listeners at M = 200. tests/counting_proxy.py does the same with a thread
per listener polling every 0.2 s (7,000 wake-ups a second here, on the same 2 cores as the
run it measures), so this one runs them all on one event loop in a thread: idle listeners
cost nothing.

Per listening address it counts the connections each port accepted and keeps each
connection's span (accepted, client closed its side), for the most connections open at once,
the figure mailprobe's `--max-per-host` bounds (a limit per address, over all ports).

The lab's one MTA stands in for all M hosts, and Exim accepts 20 SMTP sessions at once by
default (`smtp_accept_max`): more would be refused with a 421 that the real hosts, each its
own server, would never say. So the forwarders open at most `upstream_limit` connections to
each upstream address at a time; a client beyond that is accepted (and counted) at once and
waits for its banner. The wait is measured and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterable

Upstream = tuple[str, int]


def peak(spans: Iterable[tuple[float, float]], slack: float = 0.05) -> int:
    """The most spans open at once. A client's close reaches the forwarder a moment after the
    client let go of its slot: `slack` seconds of overlap are that, not two at once (as
    tests/counting_proxy.py)."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b - slack, -1) for _, b in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


class FleetForwarder:
    """`FleetForwarder({ip: {port: (up_ip, up_port)}}, upstream_limit=16)`; start(), stop()."""

    def __init__(self, routes: dict[str, dict[int, Upstream]], upstream_limit: int = 16) -> None:
        self.routes = routes
        self.upstream_limit = upstream_limit
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, int], int] = {}
        self.spans: dict[str, list[list[float]]] = {}
        self.waits: list[float] = []  # seconds each connection waited for an upstream slot
        self.upstream_open: dict[str, int] = {}  # upstream address -> connections open
        self.upstream_peak: dict[str, int] = {}
        self.failed_upstream = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.reset()

    # ----- figures --------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.counts = {(ip, port): 0 for ip, ports in self.routes.items() for port in ports}
            self.spans = {ip: [] for ip in self.routes}
            self.waits = []
            self.upstream_peak = dict(self.upstream_open)
            self.failed_upstream = 0

    def counts_of(self, ip: str) -> dict[int, int]:
        with self._lock:
            return {port: n for (i, port), n in self.counts.items() if i == ip}

    def peaks(self, slack: float = 0.05) -> dict[str, int]:
        now = time.monotonic()
        with self._lock:
            spans = {ip: [(a, min(b, now)) for a, b in s] for ip, s in self.spans.items()}
        return {ip: peak(s, slack) for ip, s in spans.items()}

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    # ----- running --------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> FleetForwarder:
        self._thread = threading.Thread(target=self._run, name="fleet-forwarder", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the forwarders did not start")
        if self._error is not None:
            self.stop()
            raise self._error
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
        if self._error is None:
            loop.run_forever()
        for server in self._servers:
            server.close()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    async def _listen(self) -> None:
        for ip, ports in self.routes.items():
            for port, upstream in ports.items():
                self._gates.setdefault(upstream[0], asyncio.Semaphore(self.upstream_limit))

                async def handle(reader, writer, ip=ip, port=port, upstream=upstream) -> None:
                    await self._handle(reader, writer, ip, port, upstream)

                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((ip, port))
                except OSError as exc:
                    sock.close()
                    raise OSError(exc.errno, f"{ip}:{port}: {exc.strerror}") from None
                server = await asyncio.start_server(handle, sock=sock, backlog=512)
                self._servers.append(server)

    async def _handle(self, reader, writer, ip: str, port: int, upstream: Upstream) -> None:
        span = [time.monotonic(), float("inf")]
        with self._lock:
            self.counts[(ip, port)] = self.counts.get((ip, port), 0) + 1
            self.spans.setdefault(ip, []).append(span)
        gate = self._gates[upstream[0]]
        asked = time.monotonic()
        try:
            async with gate:
                with self._lock:
                    self.waits.append(time.monotonic() - asked)
                    up = upstream[0]
                    self.upstream_open[up] = self.upstream_open.get(up, 0) + 1
                    self.upstream_peak[up] = max(
                        self.upstream_peak.get(up, 0), self.upstream_open[up]
                    )
                try:
                    await self._pipe(reader, writer, upstream, span)
                finally:
                    with self._lock:
                        self.upstream_open[upstream[0]] -= 1
        finally:
            span[1] = min(span[1], time.monotonic())
            with contextlib.suppress(Exception):
                writer.close()

    async def _pipe(self, reader, writer, upstream: Upstream, span: list[float]) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*upstream), 10)
        except (OSError, TimeoutError):
            with self._lock:
                self.failed_upstream += 1
            return

        async def one_way(src, dst, client_side: bool) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                if client_side:  # the client closed its side: its connection is over
                    span[1] = min(span[1], time.monotonic())
                with contextlib.suppress(OSError, RuntimeError):
                    if dst.can_write_eof():
                        dst.write_eof()

        back = asyncio.ensure_future(one_way(up_reader, writer, False))
        await one_way(reader, up_writer, True)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(back, 30)
        with contextlib.suppress(Exception):
            up_writer.close()

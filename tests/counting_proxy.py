"""A TCP forwarder on loopback that counts connections: a stand-in address for a real server.

`CountingProxy(listen_ip, {25: ("127.64.1.25", 25), ...})` accepts on listen_ip:PORT and
pipes each connection to its target, byte for byte (STARTTLS and implicit TLS pass through);
`counts[port]` is how many connections each port accepted. Used by the fleet tests and
bench/fleet.py to see how often an endpoint is really talked to."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class CountingProxy:
    def __init__(self, listen_ip: str, targets: dict[int, tuple[str, int]]) -> None:
        self.listen_ip = listen_ip
        self.targets = targets
        self.counts: dict[int, int] = dict.fromkeys(targets, 0)
        # (accepted, client closed) per connection, time.monotonic(): how many were open at once
        self.spans: list[list[float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> CountingProxy:
        for port in self.targets:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.listen_ip, port))
            sock.listen(256)
            sock.settimeout(0.2)
            self._listeners.append(sock)
            thread = threading.Thread(target=self._accept, args=(sock, port), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for sock in self._listeners:
            sock.close()

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            span = [time.monotonic(), float("inf")]
            with self._lock:
                self.counts[port] += 1
                self.spans.append(span)
            threading.Thread(target=self._pipe, args=(client, port, span), daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.counts = dict.fromkeys(self.targets, 0)
            self.spans = []

    def peak(self, slack: float = 0.05) -> int:
        """The most connections open at once. A client's close reaches this process a moment
        after the client let go of its slot (the FIN, then this thread's turn): `slack`
        seconds of overlap are that delay, not two connections at once."""
        with self._lock:
            spans = [(a, b - slack) for a, b in self.spans]
        edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
        most = now = 0
        for _, step in edges:
            now += step
            most = max(most, now)
        return most

    def _pipe(self, client: socket.socket, port: int, span: list[float]) -> None:
        def client_done() -> None:  # the client closed its side: its connection is over
            with self._lock:
                span[1] = min(span[1], time.monotonic())

        try:
            self._forward(client, port, client_done)
        finally:
            client_done()

    def _forward(self, client: socket.socket, port: int, client_done) -> None:
        try:
            upstream = socket.create_connection(self.targets[port], timeout=10)
        except OSError:
            client.close()
            return
        client.settimeout(None)
        upstream.settimeout(None)

        def one_way(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=one_way, args=(upstream, client), daemon=True)
        back.start()
        one_way(client, upstream)
        client_done()
        back.join(30)
        client.close()
        upstream.close()

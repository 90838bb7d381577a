"""A small misbehaving TCP server for tests: garbage, silence, drips, floods, broken TLS.

    with HostileServer(silent, ports=(25, 465)) as server:
        ...connect to server.host on 25 or 465...
    assert server.max_concurrent <= 2

- Binds 127.0.0.1 on an ephemeral port by default (`server.port`), or the given `ports` on a
  random free 127.x.y.z address (root may bind the real mail ports there without colliding
  with anything else on the machine). Nothing outside 127/8, ever.
- One thread per accepted connection runs `handler(peer)`; handlers are plain functions of a
  `Peer` (this module has the usual ones, and factories for the tunable ones).
- Leaving the `with` block stops accepting, shuts every live connection down (which wakes
  handlers blocked in recv/send or in `peer.wait`), joins every thread and raises if one is
  still running: nothing is left behind.
- `max_concurrent` is the largest number of connections that were open at the same time
  (counted from accept to the handler's end; handlers end as soon as the client closes).
- Handler exceptions other than the client going away are collected in `errors`, so a broken
  server cannot pass for a hostile one.
"""

from __future__ import annotations

import contextlib
import errno
import random
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from probes.lab.pki import certs_pem, make_ca, make_server_cert, private_pem

Handler = Callable[["Peer"], None]

_JOIN_S = 5.0
_HANGUP = select.POLLRDHUP | select.POLLHUP | select.POLLERR
_PEER_TIMEOUT_S = 30.0  # a hang guard for handlers; tests end long before


class PeerGone(Exception):
    """The client closed the connection or the server is stopping."""


class Peer:
    """The server side of one accepted connection, as handlers see it."""

    def __init__(self, server: HostileServer, sock: socket.socket, port: int) -> None:
        self.server = server
        # `raw` is the accepted socket for the whole connection (counting, shutdown); `sock`
        # is what handlers talk through: `raw`, or a TLS socket over a duplicate of it (so the
        # connection stays one open socket, whatever the TLS layer does, until close()).
        self.raw = sock
        self.sock: socket.socket = sock
        self.port = port  # the local (listening) port this connection came in on
        self._buf = bytearray()
        sock.settimeout(_PEER_TIMEOUT_S)

    # ----- timing ---------------------------------------------------------------------------
    def wait(self, seconds: float) -> None:
        """Sleep, but end at once (PeerGone) when the server stops."""
        if self.server.stopping.wait(seconds):
            raise PeerGone("server stopping")

    def hold(self) -> None:
        """Say nothing until the client closes or the server stops."""
        while True:
            data = self._recv()
            if not data:
                raise PeerGone("client closed")

    # ----- I/O ------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError) as exc:
            raise PeerGone(str(exc)) from None
        except OSError as exc:
            if exc.errno in (errno.EBADF, errno.ENOTCONN, errno.EPIPE):
                raise PeerGone(str(exc)) from None
            raise

    def _recv(self, size: int = 65536) -> bytes:
        if self.server.stopping.is_set():
            raise PeerGone("server stopping")
        try:
            return self.sock.recv(size)
        except (ConnectionResetError, ssl.SSLError, TimeoutError) as exc:
            raise PeerGone(str(exc)) from None
        except OSError as exc:
            if exc.errno in (errno.EBADF, errno.ENOTCONN):
                raise PeerGone(str(exc)) from None
            raise

    def recv_some(self) -> bytes:
        """Whatever arrives next (buffered bytes first); PeerGone at end of stream."""
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            return data
        data = self._recv()
        if not data:
            raise PeerGone("client closed")
        return data

    def recv_line(self) -> str:
        """One client line without its line end; PeerGone when the client closes first."""
        while b"\n" not in self._buf:
            data = self._recv()
            if not data:
                raise PeerGone("client closed")
            self._buf += data
            if len(self._buf) > 1 << 20:
                raise AssertionError("client line longer than 1 MiB")
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf[:] = rest
        line_text = line.rstrip(b"\r").decode("utf-8", "replace")
        self.server.received.append(line_text)
        return line_text

    def start_tls(self) -> None:
        """Server side of a TLS handshake with the server's certificate."""
        if self.server.tls is None:
            raise AssertionError("this HostileServer was built without a TLS context")
        if self._buf:
            raise AssertionError("client sent bytes before the TLS handshake")
        try:
            self.sock = self.server.tls.wrap_socket(self.raw.dup(), server_side=True)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, TimeoutError) as exc:
            raise PeerGone(f"handshake failed: {exc}") from None

    def close(self) -> None:
        for sock in (self.sock, self.raw):
            with contextlib.suppress(OSError):
                sock.close()


class HostileServer:
    """A threaded TCP server on 127/8 whose connections are served by `handler`."""

    def __init__(
        self,
        handler: Handler,
        *,
        ports: Iterable[int] = (0,),
        host: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        # The server context for Peer.start_tls(); may be set after start (the address is
        # known then, for a certificate naming it), before clients connect.
        self.tls = tls
        self.stopping = threading.Event()
        self.max_concurrent = 0  # most connections open at once (see _reap)
        self.accepted = 0
        self.errors: list[BaseException] = []
        self.received: list[str] = []  # every line handlers read with recv_line()
        self._lock = threading.Lock()
        self._active = 0
        self._live: dict[int, Peer] = {}  # id(peer) -> peer, while its handler runs
        self._counted: set[int] = set()  # ids of live peers counted in _active
        self._threads: list[threading.Thread] = []
        self._listeners: list[tuple[socket.socket, int]] = []
        wanted = tuple(ports)
        self.host = host or ("127.0.0.1" if wanted == (0,) else "")
        self._wanted = wanted

    # ----- lifecycle ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The (first) listening port."""
        return self._listeners[0][1]

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(port for _, port in self._listeners)

    def __enter__(self) -> HostileServer:
        self._bind()
        for listener, port in self._listeners:
            self._start(self._accept_loop, listener, port, name=f"hostile-accept-{port}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> None:
        hosts = [self.host] if self.host else _random_hosts()
        last: OSError | None = None
        for host in hosts:
            listeners = []
            try:
                for port in self._wanted:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    listeners.append(sock)
                    sock.bind((host, port))
                    sock.listen(64)
            except OSError as exc:
                for sock in listeners:
                    sock.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                last = exc
                continue
            self.host = host
            self._listeners = [(s, s.getsockname()[1]) for s in listeners]
            return
        raise RuntimeError(f"no free 127/8 address for ports {self._wanted}: {last}")

    def stop(self) -> None:
        self.stopping.set()
        for listener, _ in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            live = [peer.raw for peer in self._live.values()]
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(_JOIN_S)
        running = [t.name for t in self._threads if t.is_alive()]
        if running:
            raise RuntimeError(f"hostile server threads still running: {running}")

    def _start(self, target: Callable[..., None], *args: object, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    # ----- serving --------------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket, port: int) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # the listener was closed: stopping
            peer = Peer(self, sock, port)
            with self._lock:
                if self.stopping.is_set():
                    sock.close()
                    return
                self._reap()
                self.accepted += 1
                self._active += 1
                self.max_concurrent = max(self.max_concurrent, self._active)
                self._live[id(peer)] = peer
                self._counted.add(id(peer))
            self._start(self._serve, peer, name=f"hostile-peer-{port}-{self.accepted}")

    def _serve(self, peer: Peer) -> None:
        try:
            self.handler(peer)
        except PeerGone:
            pass
        except BaseException as exc:
            with self._lock:
                self.errors.append(exc)
        finally:
            with self._lock:
                self._live.pop(id(peer), None)
                if id(peer) in self._counted:
                    self._counted.discard(id(peer))
                    self._active -= 1
            peer.close()

    def _reap(self) -> None:
        """Stop counting live connections the client has already closed (caller holds the lock).

        A client may close a connection and open the next one before the handler of the first
        has woken up to see the end of stream; without this, such a handover would count as
        two connections at once. The client's FIN (or RST) reaches our socket before its next
        SYN, so a poll with no wait sees it."""
        poller = select.poll()
        fds = {}
        for key in self._counted:
            fd = self._live[key].raw.fileno()
            if fd >= 0:
                poller.register(fd, _HANGUP)
                fds[fd] = key
        for fd, events in poller.poll(0):
            if events & _HANGUP and fd in fds:
                self._counted.discard(fds[fd])
                self._active -= 1


class BlackHole:
    """Ports on a random 127.x.y.z address where connection attempts get no answer at all.

    Each port listens with a backlog of 0 whose one place is taken by a connection of our own
    that is never accepted: the kernel then drops further SYNs, so a client's connect times
    out as against a filtered port or a dead host."""

    def __init__(self, ports: Iterable[int]) -> None:
        self._wanted = tuple(ports)
        self.host = ""
        self._socks: list[socket.socket] = []

    def __enter__(self) -> BlackHole:
        last: OSError | None = None
        for host in _random_hosts():
            socks: list[socket.socket] = []
            try:
                for port in self._wanted:
                    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(listener)
                    listener.bind((host, port))
                    listener.listen(0)
                    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(filler)
                    filler.settimeout(_JOIN_S)
                    filler.connect((host, port))
            except OSError as exc:
                for sock in socks:
                    sock.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                last = exc
                continue
            self.host, self._socks = host, socks
            return self
        raise RuntimeError(f"no free 127/8 address for ports {self._wanted}: {last}")

    def __exit__(self, *exc: object) -> None:
        for sock in self._socks:
            sock.close()


def _random_hosts(count: int = 20) -> list[str]:
    """Random 127.x.y.z addresses (never .0 or .255 in the last byte, never 127.0.0.x)."""
    hosts = []
    while len(hosts) < count:
        x, y, z = random.randrange(1, 255), random.randrange(256), random.randrange(2, 255)
        hosts.append(f"127.{x}.{y}.{z}")
    return hosts


# ----- TLS material ----------------------------------------------------------------------------
def tls_material(directory: Path, host: str = "127.0.0.1") -> tuple[ssl.SSLContext, str]:
    """(server context, CA file) for a lab-CA certificate naming `host` and hostile.test.

    Cert, key and CA are written to `directory` (use pytest's tmp_path)."""
    ca = make_ca("hostile")
    chain, key = make_server_cert(ca, ["hostile.test"], [host])
    cert_file, key_file, ca_file = (directory / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert_file.write_bytes(certs_pem(chain))
    key_file.write_bytes(private_pem(key))
    ca_file.write_bytes(certs_pem([ca.cert]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, str(ca_file)


# ----- behaviours ------------------------------------------------------------------------------
GARBAGE = b"\x00\xff\xfe GARBAGE \x1b[2J \xc3\x28 not a greeting at all\r\n"


def garbage_banner(peer: Peer) -> None:
    """A greeting no mail protocol would accept, then silence."""
    peer.send(GARBAGE)
    peer.hold()


def silent(peer: Peer) -> None:
    """Accept and say nothing, ever."""
    peer.hold()


def close_at_once(peer: Peer) -> None:
    """Accept and close without a word."""


def hold_then_close(seconds: float) -> Handler:
    """Keep the connection open for `seconds` without a word, then close it."""

    def handler(peer: Peer) -> None:
        peer.wait(seconds)

    return handler


def drip(data: bytes, interval: float = 1.0) -> Handler:
    """Send `data` one byte every `interval` seconds, then stay silent."""

    def handler(peer: Peer) -> None:
        for i in range(len(data)):
            peer.send(data[i : i + 1])
            peer.wait(interval)
        peer.hold()

    return handler


_ENDLESS = b"x" * 65536


def endless_line(peer: Peer) -> None:
    """Bytes without a line end, until the client gives up."""
    while True:
        peer.send(_ENDLESS)


def flood(line: bytes, total: int, *, first: bytes = b"") -> Handler:
    """`first`, then `line` repeated until `total` bytes went out, then silence.

    The payload is sent from one pre-built chunk, so the server itself allocates (almost)
    nothing while it floods: memory measured around the client is the client's."""
    chunk = line * max(1, 65536 // len(line))

    def handler(peer: Peer) -> None:
        peer.send(first)
        sent = len(first)
        while sent < total:
            peer.send(chunk)
            sent += len(chunk)
        peer.hold()

    return handler


def delayed(seconds: float, handler: Handler) -> Handler:
    """Wait `seconds` in silence, then behave as `handler`."""

    def wrapper(peer: Peer) -> None:
        peer.wait(seconds)
        handler(peer)

    return wrapper


def smtp(
    *,
    ehlo: Iterable[str] = ("STARTTLS",),
    starttls: bytes | None = b"220 2.0.0 go ahead\r\n",
    after_go_ahead: Handler | None = None,
    on_ehlo: Handler | None = None,
    banner: bytes = b"220 hostile.test ESMTP\r\n",
) -> Handler:
    """A small SMTP server. STARTTLS gets `starttls`; after a 220 reply `after_go_ahead(peer)`
    runs in place of the TLS handshake when given (else a real handshake, then the same
    conversation over TLS). `on_ehlo`, when given, takes over the connection at EHLO."""
    keywords = tuple(ehlo)

    def handler(peer: Peer) -> None:
        peer.send(banner)
        tls_on = False
        while True:
            line = peer.recv_line()
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                if on_ehlo is not None:
                    on_ehlo(peer)
                    return
                shown = [k for k in keywords if not (tls_on and k == "STARTTLS")]
                lines = ["hostile.test greets you", *shown]
                out = "".join(
                    f"250{'-' if i < len(lines) - 1 else ' '}{text}\r\n"
                    for i, text in enumerate(lines)
                )
                peer.send(out.encode())
            elif verb == "STARTTLS" and starttls is not None:
                peer.send(starttls)
                if starttls.startswith(b"220"):
                    if after_go_ahead is not None:
                        after_go_ahead(peer)
                        return
                    peer.start_tls()
                    tls_on = True
            elif verb == "QUIT":
                peer.send(b"221 2.0.0 bye\r\n")
                return
            else:
                peer.send(b"502 5.5.1 not here\r\n")

    return handler


def imap(
    *,
    greeting: bytes = b"* OK hostile.test IMAP ready\r\n",
    capabilities: str = "IMAP4rev1 STARTTLS LOGINDISABLED",
    starttls: str = "OK begin TLS now",
) -> Handler:
    """A small IMAP server: CAPABILITY, STARTTLS (answered `starttls` after the tag), LOGOUT."""

    def handler(peer: Peer) -> None:
        peer.send(greeting)
        while True:
            tag, _, rest = peer.recv_line().partition(" ")
            command = rest.split(" ", 1)[0].upper()
            if command == "CAPABILITY":
                peer.send(f"* CAPABILITY {capabilities}\r\n{tag} OK done\r\n".encode())
            elif command == "STARTTLS":
                peer.send(f"{tag} {starttls}\r\n".encode())
                if starttls.startswith("OK"):
                    peer.start_tls()
            elif command == "LOGOUT":
                peer.send(f"* BYE\r\n{tag} OK bye\r\n".encode())
                return
            else:
                peer.send(f"{tag} BAD not here\r\n".encode())

    return handler


def pop3(
    *,
    greeting: bytes = b"+OK hostile.test POP3 ready\r\n",
    capa: Iterable[str] = ("STLS", "TOP"),
    stls: str = "+OK begin TLS",
) -> Handler:
    """A small POP3 server: CAPA, STLS (answered `stls`), QUIT."""
    capa_lines = tuple(capa)

    def handler(peer: Peer) -> None:
        peer.send(greeting)
        while True:
            command = peer.recv_line().split(" ", 1)[0].upper()
            if command == "CAPA":
                peer.send(("+OK\r\n" + "".join(f"{c}\r\n" for c in capa_lines) + ".\r\n").encode())
            elif command == "STLS":
                peer.send(f"{stls}\r\n".encode())
                if stls.startswith("+OK"):
                    peer.start_tls()
            elif command == "QUIT":
                peer.send(b"+OK bye\r\n")
                return
            else:
                peer.send(b"-ERR not here\r\n")

    return handler


def half_handshake(reply: bytes, *, then_close: bool = True) -> Handler:
    """Read the client's first TLS bytes (its ClientHello), answer `reply` (garbage or part of
    a ServerHello) and close the connection, or keep it open in silence."""

    def handler(peer: Peer) -> None:
        peer.recv_some()
        if reply:
            peer.send(reply)
        if not then_close:
            peer.hold()

    return handler


# The first bytes of a TLS 1.2 ServerHello record: handshake record header announcing 0x4a
# bytes, the ServerHello header and part of its version and random; the rest never comes.
HALF_SERVER_HELLO = bytes.fromhex("160303004a 02000046 0303") + b"\x11" * 12


def tls_then(after: Handler) -> Handler:
    """Complete a TLS handshake at once (implicit TLS), then behave as `after`."""

    def handler(peer: Peer) -> None:
        peer.start_tls()
        after(peer)

    return handler

"""mailprobe's own SMTP receiver (receiver mode, port25-style "check-auth"; part of the door).

    with Receiver("127.0.0.40", 25, hostname="receiver.example.test",
                  accept_domains=["receiver.test"]) as rx:
        ...                                   # make the target's MTA send to rx
        msg = rx.wait_for(token, time.monotonic() + 30)   # ReceivedMessage | None

An aiosmtpd SMTP server on exactly `listen_ip:port`, its asyncio loop in one thread of its own.
It keeps what a verifier needs, unaltered:
- `raw`: the message bytes exactly as sent after the SMTP dot-unstuffing (CRLF line ends kept,
  no decoding: `decode_data=False`), so DKIM body hashes survive;
- the peer IP, the HELO/EHLO name, MAIL FROM, the RCPT TOs and the arrival time.

What it refuses (the sender sees the reply):
- a recipient outside `accept_domains`: 550 5.7.1; more than MAX_RCPTS recipients: 452;
- a message over `max_bytes` (SIZE= too large, or too much DATA): 552 (aiosmtpd drops the data
  as soon as it is over, so memory stays bounded); a line over 1000 octets: 500;
- a message without an `X-Mailprobe-Token` header: 550 5.6.0 (it is not a test message);
- beyond `max_messages` kept messages: 452 4.3.1 (temporary);
- beyond `max_sessions` connections at once: 421 4.3.2 at connect, then closed.
Memory stays below about (max_sessions + max_messages) * max_bytes.
No STARTTLS, no AUTH: a receiving MX needs neither.

`wait_for(token, deadline)` is thread-safe (a condition variable); `deadline` is a
`time.monotonic()` value. The server stops on `stop()` / leaving the `with` block, also on
exceptions, and leaves no thread behind. A listen address already in use, not on this host or
not permitted raises ProbeConfigError naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session

from probes.errors import ProbeConfigError
from probes.parse.message_header import find_token

MAX_RCPTS = 100
DEFAULT_MAX_MESSAGES = 20
DEFAULT_MAX_SESSIONS = 20
DEFAULT_IDLE_TIMEOUT_S = 60.0
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the receiver accepted."""

    raw: bytes = field(repr=False)  # exactly as received (CRLF line ends, dot-unstuffed)
    token: str  # its X-Mailprobe-Token
    peer_ip: str  # the connecting client's address
    peer_port: int
    helo: str | None  # the HELO/EHLO name the client gave
    mail_from: str  # envelope sender ("" for the null sender <>)
    rcpt_to: tuple[str, ...]
    received_at: datetime.datetime  # UTC
    monotonic: float = field(repr=False, compare=False)  # time.monotonic() at arrival
    esmtp: bool = True  # EHLO (True) or HELO (False)


class _Handler:
    """aiosmtpd hooks (run in the receiver's loop thread)."""

    def __init__(self, receiver: Receiver) -> None:
        self.rx = receiver

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options
    ) -> str:
        domain = address.rpartition("@")[2].strip().rstrip(".").lower()
        if "@" not in address or domain not in self.rx.accept_domains:
            return "550 5.7.1 relay not permitted: recipient domain not handled here"
        if len(envelope.rcpt_tos) >= MAX_RCPTS:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        if len(raw) > self.rx.max_bytes:  # aiosmtpd refuses these first; kept as a guard
            return "552 5.3.4 message too big"
        token = find_token(raw)
        if token is None:
            return "550 5.6.0 no X-Mailprobe-Token header: not a mailprobe test message"
        peer = session.peer if isinstance(session.peer, tuple) else (str(session.peer), 0)
        message = ReceivedMessage(
            raw=raw,
            token=token,
            peer_ip=_plain_ip(str(peer[0])),
            peer_port=int(peer[1]),
            helo=session.host_name,
            mail_from="" if envelope.mail_from in (None, "<>") else envelope.mail_from,
            rcpt_to=tuple(envelope.rcpt_tos),
            received_at=datetime.datetime.now(datetime.UTC),
            monotonic=time.monotonic(),
            esmtp=bool(session.extended_smtp),
        )
        if not self.rx._keep(message):
            return "452 4.3.1 too many messages kept; try again later"
        return "250 2.0.0 OK: kept for mailprobe"


class _CountedSMTP(SMTP):
    """An aiosmtpd session that tells the receiver when its connection ends."""

    def __init__(self, handler: _Handler, *, on_close, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self._on_close = on_close

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


class _Busy(asyncio.Protocol):
    """What a connection beyond the session limit gets: 421, then the door."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"421 4.3.2 too many connections, try again later\r\n")
        transport.close()


def _plain_ip(text: str) -> str:
    """`::ffff:192.0.2.1` -> `192.0.2.1`; other addresses unchanged."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class Receiver:
    """An SMTP receiver on `listen_ip:port` that keeps raw test messages (see the module doc)."""

    def __init__(
        self,
        listen_ip: str,
        port: int,
        *,
        hostname: str,
        accept_domains: Collection[str],
        max_bytes: int = 10_000_000,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        try:
            self.ip = ipaddress.ip_address(listen_ip)
        except ValueError:
            raise ProbeConfigError(
                f"receiver listen address {listen_ip!r} is not an IP address"
            ) from None
        if not isinstance(port, int) or not 0 <= port < 65536:  # 0: any free port
            raise ProbeConfigError(f"receiver port {port!r} is not a TCP port number")
        if min(max_bytes, max_messages, max_sessions) < 1:
            raise ValueError("max_bytes, max_messages and max_sessions must be positive")
        self.listen_ip = str(self.ip)
        self.port = port
        self.hostname = hostname
        self.accept_domains = frozenset(d.strip().rstrip(".").lower() for d in accept_domains)
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self.max_sessions = max_sessions
        self._sessions = 0  # open connections (only touched in the loop thread)
        self.idle_timeout = idle_timeout
        self._cond = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread_error: BaseException | None = None

    # ----- lifecycle ------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """`IP:PORT` (`[IPv6]:PORT`) the receiver listens on."""
        host = f"[{self.listen_ip}]" if self.ip.version == 6 else self.listen_ip
        return f"{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind (at once, in the caller's thread: errors surface here) and start serving."""
        if self._thread is not None:
            raise RuntimeError("receiver already started")
        sock = self._bind()
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, sock, ready), name=f"mailprobe-receiver-{self.address}"
        )
        self._thread.daemon = True
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S) or self._thread_error is not None:
            error = self._thread_error
            self.stop()
            if error is not None:
                raise error
            raise TimeoutError(f"receiver {self.address} did not start")

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if self.ip.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.listen_ip, self.port))
            sock.listen(64)
            self.port = sock.getsockname()[1]
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            why = {
                errno.EADDRINUSE: "already in use (another server listens there)",
                errno.EADDRNOTAVAIL: "not an address of this host",
                errno.EACCES: "not permitted (ports below 1024 need root)",
            }.get(exc.errno or 0, exc.strerror or type(exc).__name__)
            raise ProbeConfigError(f"receiver listen address {self.address}: {why}") from None
        return sock

    def _factory(self) -> asyncio.Protocol:
        assert self._loop is not None
        if self._sessions >= self.max_sessions:
            return _Busy()
        self._sessions += 1
        return _CountedSMTP(
            _Handler(self),
            on_close=self._session_closed,
            hostname=self.hostname,
            data_size_limit=self.max_bytes,
            decode_data=False,
            enable_SMTPUTF8=True,
            timeout=self.idle_timeout,
            loop=self._loop,
        )

    def _session_closed(self) -> None:
        self._sessions -= 1

    def _run(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, ready: threading.Event):
        asyncio.set_event_loop(loop)
        try:
            try:
                self._server = loop.run_until_complete(loop.create_server(self._factory, sock=sock))
            except BaseException as exc:
                sock.close()
                self._thread_error = exc
                return
            loop.call_soon(ready.set)
            loop.run_forever()
            # stop(): close the listener, cancel the sessions still open, and wait for them.
            self._server.close()
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            with contextlib.suppress(Exception):
                loop.run_until_complete(
                    asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT_S)
                )
        except BaseException as exc:  # pragma: no cover - reported, never swallowed silently
            log.exception("receiver %s loop failed", self.address)
            self._thread_error = exc
        finally:
            ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the loop thread. Safe to call more than once."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT_S)
        self._thread = None
        self._loop = None
        self._server = None
        with self._cond:
            self._cond.notify_all()

    # ----- messages -------------------------------------------------------------------------
    def _keep(self, message: ReceivedMessage) -> bool:
        with self._cond:
            if len(self._messages) >= self.max_messages:
                return False
            self._messages.append(message)
            self._cond.notify_all()
        return True

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every message kept so far, in arrival order."""
        with self._cond:
            return list(self._messages)

    def wait_for(self, token: str, deadline: float) -> ReceivedMessage | None:
        """The first message carrying `token`, waiting until `deadline` (time.monotonic());
        None when none arrived in time (or the receiver stopped)."""
        with self._cond:
            while True:
                for message in self._messages:
                    if message.token == token:
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return None
                self._cond.wait(remaining)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Receiver({self.address}, {state}, {len(self.messages)} kept)"


def split_listen(value: str) -> tuple[str, int]:
    """`IP:PORT` or `[IPv6]:PORT` -> (ip, port); ProbeConfigError naming the value if not."""
    text = value.strip()
    host, port_text = "", ""
    if text.startswith("["):
        end = text.find("]")
        if end > 0 and text[end + 1 : end + 2] == ":":
            host, port_text = text[1:end], text[end + 2 :]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        ip = ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise ProbeConfigError(
            f"receiver_listen {value!r}: expected IP:PORT (e.g. 192.0.2.7:25, [2001:db8::7]:25)"
        ) from None
    if not 0 < port < 65536:
        raise ProbeConfigError(f"receiver_listen {value!r}: {port} is not a TCP port number")
    return str(ip), port

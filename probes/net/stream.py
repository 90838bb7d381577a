"""Line-oriented TCP connections for SMTP, IMAP and POP3 (part of the network door).

`Connection.open(net, ip, port)` takes one of the host's connection slots (at most
`net.max_per_host` connections to one address at a time, shared by every probe of the run),
connects within `timeouts.connect` and keeps the slot until `close()`.

Reading is bounded three ways, so a hostile or hung server cannot hold a probe or its memory:
- time: every reply must be complete within `timeouts.io` of asking for it, however slowly
  the bytes trickle in (TimeoutError);
- line length: MAX_LINE_BYTES without a line end is a ProtocolError;
- reply size: more than MAX_REPLY_LINES lines or MAX_REPLY_BYTES bytes is a ProtocolError.

A short transcript of the last lines (client lines marked secret are masked) is kept for
evidence and error messages.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from probes.errors import ProtocolError
from probes.net import tls as tlsmod
from probes.net.endpoints import FIRST, WAIT, ConnectTimeout, Silent
from probes.net.tapes import FleetStats, RecordedError, RecordingSocket, ReplaySocket, Tape
from probes.net.tls import TlsSession

if TYPE_CHECKING:
    from probes.net import Net

MAX_LINE_BYTES = 8192
MAX_REPLY_LINES = 1000
MAX_REPLY_BYTES = 256 * 1024
TRANSCRIPT_LINES = 40
_RECV = 16384


class HostSlots:
    """At most `per_host` connections to one address at a time (operators rate-limit).

    `admit`, when given, is asked (under the slots' lock) whenever a slot frees or `wake()` is
    called, with whether a slot is free: an exception to raise at once (the endpoint was
    found dead meanwhile, or the run's deadline passed), WAIT (keep waiting, even with a
    slot free: another attempt is the endpoint's first contact) or anything else (take the
    slot; probes.net.endpoints.EndpointMemory.admit)."""

    def __init__(self, per_host: int) -> None:
        if per_host < 1:
            raise ValueError(f"connections per host must be at least 1, not {per_host}")
        self.per_host = per_host
        self._cond = threading.Condition()
        self._busy: dict[str, int] = {}

    def acquire(
        self,
        host: str,
        timeout: float,
        *,
        admit: Callable[[bool], object] | None = None,
    ) -> Callable[[], None]:
        """Wait for a slot (TimeoutError after `timeout`); returns the release function."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                free = self._busy.get(host, 0) < self.per_host
                verdict = admit(free) if admit is not None else None
                if isinstance(verdict, BaseException):
                    raise verdict
                if free and verdict is not WAIT:
                    self._busy[host] = self._busy.get(host, 0) + 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{host}: no free connection slot within {timeout:g} s")
                self._cond.wait(remaining)
        released = threading.Event()

        def release() -> None:
            with self._cond:
                if released.is_set():
                    return
                released.set()
                self._busy[host] -= 1
                if not self._busy[host]:
                    del self._busy[host]
                self._cond.notify_all()

        return release

    def wake(self) -> None:
        """Let every waiter ask its `admit` again."""
        with self._cond:
            self._cond.notify_all()

    @contextmanager
    def hold(
        self,
        host: str,
        timeout: float,
        *,
        admit: Callable[[bool], object] | None = None,
    ) -> Iterator[None]:
        release = self.acquire(host, timeout, admit=admit)
        try:
            yield
        finally:
            release()


class Connection:
    """One client connection; plain first, TLS after `start_tls()` or from the start."""

    def __init__(
        self,
        sock: Any,
        *,
        label: str,
        io_timeout: float,
        ca_file: str | None,
        release: Callable[[], None],
    ) -> None:
        # a socket, or a fleet run's RecordingSocket / ReplaySocket (probes.net.tapes)
        self._sock: Any = sock
        self._finish_tape: Callable[[bool], None] | None = None
        self.label = label
        self.io_timeout = io_timeout
        self.ca_file = ca_file
        self._release = release
        self._buf = bytearray()
        self.tls: TlsSession | None = None
        self.transcript: collections.deque[str] = collections.deque(maxlen=TRANSCRIPT_LINES)
        self.discarded_before_tls = 0  # bytes a server sent after its STARTTLS go-ahead
        # Whether the server said anything / we did, yet: a timeout before either is the
        # server's silence when it must speak first (Silent, remembered by `_silence`).
        self._heard = False
        self._spoke = False
        self._silence: Callable[[str], None] | None = None
        self._settle: Callable[[], None] | None = None  # first contact: settle the memory
        self._untrack: Callable[[], None] = lambda: None
        # Ended by the run (its deadline), not by the server; why, from the endpoint memory.
        self._aborted = False
        self._stopped: Callable[[], str | None] | None = None

    # ----- opening and closing ----------------------------------------------------------------
    @classmethod
    def open(
        cls,
        net: Net,
        ip: str,
        port: int,
        *,
        label: str | None = None,
        implicit_tls: bool = False,
        server_name: str | None = None,
        verify: bool = True,
        tls_version: str | None = None,
        shared: bool = False,
    ) -> Connection:
        """Connect (and for implicit TLS, handshake). Raises ConnectionRefusedError,
        TimeoutError, OSError, ssl errors; nothing stays open or held when it raises.

        `shared`: what the caller will send does not depend on the target domain (an
        endpoint's own conversation: greeting, capabilities, STARTTLS, the relay test), so in
        a fleet run it is had once per endpoint and played back for the other domains
        (probes.net.tapes). Anything that sends the domain (an HTTP Host, a RCPT for it, a
        login) stays False: always its own connection."""
        timeouts = net.timeouts
        memory = net.endpoints
        where = label or f"{ip}:{port}"
        first: list[bool] = []
        wait = max(timeouts.probe, timeouts.connect)
        # A fleet run: this conversation may have been had with the endpoint already (for
        # another domain): then it is replayed, without a connection (probes.net.tapes).
        recorder = net.recorder
        key = None
        tape: Tape | None = None
        recording: Tape | None = None
        if recorder is not None and shared:
            key = recorder.key(
                ip, port, implicit_tls=implicit_tls, verify=verify, version=tls_version
            )
        if recorder is not None and key is not None:
            remembered = memory.recall(ip, port, where)
            if remembered is not None:
                raise remembered
            tape = recorder.tapes.claim(key, time.monotonic() + wait)
            if tape is None:
                recording = Tape()
        if tape is not None:
            assert recorder is not None
            return cls._replay(
                net,
                ip,
                port,
                where,
                tape,
                recorder.tapes.stats,
                implicit_tls=implicit_tls,
                server_name=server_name,
                verify=verify,
                tls_version=tls_version,
            )

        def admit(free: bool) -> object:
            verdict = memory.admit(ip, port, where, claim=free)
            if verdict is FIRST:
                first.append(True)
            return verdict

        # The slot wait ends as soon as the endpoint is found dead by another probe (or the
        # run's deadline passes): the memory's answer, at once, instead of a wait in vain.
        try:
            release = net.slots.acquire(ip, timeout=wait, admit=admit)
            if recording is not None and recorder is not None:
                # the run's limit per host, across processes and cluster workers
                local_release = release
                try:
                    run_slot = recorder.tapes.host_slot(ip, time.monotonic() + wait)
                    run_slot.__enter__()
                except BaseException:
                    local_release()
                    raise

                def release() -> None:
                    try:
                        run_slot.__exit__(None, None, None)
                    finally:
                        local_release()
        except BaseException:
            if recording is not None and recorder is not None and key is not None:
                recorder.tapes.abandon(key)
            raise
        settle = (lambda: memory.settle(ip, port)) if first else (lambda: None)

        def recorded(failure: BaseException | None) -> None:
            """The attempt's end, for the tape: a failure to replay, or no tape at all."""
            if recording is None or recorder is None or key is None:
                return
            if failure is None:
                recorder.tapes.abandon(key)
            else:
                recording.opened = RecordedError.of(failure)
                recorder.tapes.publish(key, recording)

        try:
            source = (net.source_address, 0) if net.source_address else None
            sock: Any = socket.create_connection(
                (ip, port), timeout=timeouts.connect, source_address=source
            )
        except TimeoutError as exc:
            release()
            recorded(exc)
            raise _connect_failed(net, ip, port, where, exc) from None
        except OSError as exc:
            release()
            recorded(exc if exc.errno is not None else None)
            if exc.errno is None:
                settle()
                raise
            raise _connect_failed(net, ip, port, where, exc) from None
        except BaseException:
            release()
            recorded(None)
            settle()
            raise
        if recording is not None:
            sock = RecordingSocket(sock, recording)
        conn = cls(
            sock,
            label=where,
            io_timeout=timeouts.io,
            ca_file=net.ca_file,
            release=release,
        )
        if recording is not None and recorder is not None and key is not None:
            tapes, tape_key = recorder.tapes, key

            def finish(complete: bool) -> None:
                if complete:
                    tapes.publish(tape_key, recording)
                else:
                    tapes.abandon(tape_key)

            conn._finish_tape = finish
        conn._silence = lambda reason: memory.remember(ip, port, Silent, reason)
        conn._settle = settle
        conn._untrack = lambda: memory.untrack(id(conn))
        conn._stopped = lambda: memory.stopped
        memory.track(id(conn), conn._abort)
        if implicit_tls:
            conn._implicit_handshake(server_name, verify, tls_version)
            conn._settled()  # it spoke TLS
        return conn

    @classmethod
    def _replay(
        cls,
        net: Net,
        ip: str,
        port: int,
        where: str,
        tape: Tape,
        stats: FleetStats,
        *,
        implicit_tls: bool,
        server_name: str | None,
        verify: bool,
        tls_version: str | None,
    ) -> Connection:
        """The recorded conversation `tape`, played as a connection: no slot, no socket."""
        memory = net.endpoints
        if tape.opened is not None:
            exc = tape.opened.rebuild()
            if isinstance(exc, TimeoutError) or (
                isinstance(exc, OSError) and exc.errno is not None
            ):
                raise _connect_failed(net, ip, port, where, exc) from None
            raise exc
        conn = cls(
            ReplaySocket(tape, stats),
            label=where,
            io_timeout=net.timeouts.io,
            ca_file=net.ca_file,
            release=lambda: None,
        )
        conn._silence = lambda reason: memory.remember(ip, port, Silent, reason)
        if implicit_tls:
            conn._implicit_handshake(server_name, verify, tls_version)
        return conn

    def _implicit_handshake(
        self, server_name: str | None, verify: bool, tls_version: str | None
    ) -> None:
        """The handshake an implicit-TLS port starts with; closes the connection if it fails."""
        try:
            try:
                self.start_tls(server_name=server_name, verify=verify, version=tls_version)
            except TimeoutError as exc:
                if tls_version is not None:
                    raise  # a pinned version's silence says nothing about the endpoint
                raise self._silent(exc, "the TLS handshake") from None
        except BaseException:
            self.close()
            raise

    def _settled(self) -> None:
        """The server is not dead (it spoke, or the connection ended some other way)."""
        settle, self._settle = self._settle, None
        if settle is not None:
            settle()

    def _silent(self, exc: TimeoutError, what: str) -> Silent:
        """`exc` (a timeout while the server had to speak first) as Silent, remembered."""
        self._settle = None  # remembered instead
        if self._silence is not None:
            self._silence(
                f"accepted the connection but did not answer {what} within {self.io_timeout:g} s"
            )
        return Silent(str(exc) if str(exc).startswith(self.label) else f"{self.label}: {exc}")

    def close(self) -> None:
        finish, self._finish_tape = self._finish_tape, None
        try:
            self._sock.close()
        finally:
            self._release()
            self._settled()
            self._untrack()
            if finish is not None:
                # a conversation the run cut short is nobody's recording
                finish(not self._aborted)

    def _abort(self) -> None:
        """End the connection from another thread (the run stopped): a read blocked on it
        returns at once, the owner's close() still releases everything."""
        self._aborted = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _closed(self, message: str) -> OSError:
        """The error for a read that found the connection ended: the server closed it, or, when
        the run stopped it (its deadline), a TimeoutError saying so: not the server's doing."""
        if self._aborted:
            reason = (self._stopped() if self._stopped is not None else None) or "the run stopped"
            return TimeoutError(f"{self.label}: {reason}")
        return ConnectionResetError(message)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- TLS --------------------------------------------------------------------------------
    def start_tls(
        self, *, server_name: str | None, verify: bool, version: str | None = None
    ) -> TlsSession:
        """Handshake on this connection, within the I/O timeout."""
        if self.tls is not None:
            raise ProtocolError(f"{self.label}: TLS is already on")
        # Bytes the server sent before the handshake must not be read as if they came over TLS
        # (the STARTTLS command-injection class of bugs): drop them.
        self.discarded_before_tls = len(self._buf)
        self._buf.clear()
        if isinstance(self._sock, ReplaySocket):
            session = self._sock.handshake()
        elif isinstance(self._sock, RecordingSocket):
            tape = self._sock.tape
            try:
                inner, session = tlsmod.handshake(
                    self._sock.sock,
                    server_name=server_name,
                    deadline=time.monotonic() + self.io_timeout,
                    verify=verify,
                    ca_file=self.ca_file,
                    version=version,
                )
            except BaseException as exc:
                tape.events.append(("raise", RecordedError.of(exc)))
                raise
            tape.events.append(("tls", session))
            self._sock = RecordingSocket(inner, tape)
        else:
            self._sock, session = tlsmod.handshake(
                self._sock,
                server_name=server_name,
                deadline=time.monotonic() + self.io_timeout,
                verify=verify,
                ca_file=self.ca_file,
                version=version,
            )
        self.tls = session
        self.transcript.append(f"-- TLS {session.version} {session.cipher}")
        return session

    # ----- writing and reading ----------------------------------------------------------------
    def send_line(self, line: str, *, secret: bool = False, shown: str | None = None) -> None:
        """Send `line` + CRLF. A secret line shows in the transcript as `shown` (or masked)."""
        if not secret:
            shown = line
        self.send_bytes(line.encode("utf-8") + b"\r\n", shown=shown if shown is not None else "***")

    def read_reply(self, done: Callable[[str], bool]) -> list[str]:
        """Lines (decoded, line ends stripped) up to and including the one `done` accepts."""
        deadline = time.monotonic() + self.io_timeout
        lines: list[str] = []
        size = 0
        while True:
            line = self._first_read(deadline)
            size += len(line)
            lines.append(line)
            self.transcript.append("S: " + _shorten(line))
            if done(line):
                return lines
            if len(lines) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                raise ProtocolError(
                    f"{self.label}: reply longer than {MAX_REPLY_LINES} lines or "
                    f"{MAX_REPLY_BYTES // 1024} KiB; gave up reading it"
                )

    def read_line(self) -> str:
        """One line, within the I/O timeout."""
        line = self._first_read(time.monotonic() + self.io_timeout)
        self.transcript.append("S: " + _shorten(line))
        return line

    # ----- additions for the message round trip (raw bytes, waits, literals) -----------------
    @property
    def local_address(self) -> str:
        """Our address on this connection, as the server sees it (getsockname()[0])."""
        return str(self._sock.getsockname()[0])

    def send_bytes(self, data: bytes, *, shown: str) -> None:
        """Send `data` exactly as given (no line end added), within the I/O timeout.

        The transcript shows `shown` instead of the bytes (a message body is no evidence)."""
        self.transcript.append("C: " + shown)
        self._spoke = True
        deadline = time.monotonic() + self.io_timeout
        view = memoryview(data)
        while view:
            self._sock.settimeout(self._remaining(deadline, "send"))
            try:
                sent = self._sock.send(view)
            except (TimeoutError, ssl.SSLWantWriteError):
                raise TimeoutError(f"{self.label}: could not send within the I/O timeout") from None
            view = view[sent:]

    def read_line_by(self, deadline: float) -> str:
        """One line, complete before `deadline` (time.monotonic()) or TimeoutError."""
        line = self._read_line(deadline)
        self.transcript.append("S: " + _shorten(line))
        return line

    def poll_line(self, timeout: float) -> str | None:
        """One line if it is complete within `timeout` seconds, else None.

        Bytes of a line still incomplete stay buffered for the next read, so a wait can be cut
        into slices (IMAP IDLE) without losing anything."""
        try:
            return self.read_line_by(time.monotonic() + max(0.0, timeout))
        except TimeoutError:
            return None

    def read_exact(self, n: int, *, cap: int, deadline: float | None = None) -> bytes:
        """Exactly `n` bytes (an IMAP literal), within the I/O timeout (or before `deadline`).

        ProtocolError at once, before reading anything, when `n` exceeds `cap`."""
        if n < 0 or n > cap:
            raise ProtocolError(
                f"{self.label}: the server announced {n} bytes, more than the {cap}-byte limit"
            )
        if deadline is None:
            deadline = time.monotonic() + self.io_timeout
        while len(self._buf) < n:
            self._sock.settimeout(self._remaining(deadline, f"{n}-byte literal"))
            try:
                chunk = self._sock.recv(max(_RECV, min(n - len(self._buf), 1 << 20)))
            except TimeoutError:
                raise TimeoutError(
                    f"{self.label}: {n} bytes announced, {len(self._buf)} arrived in time"
                ) from None
            if not chunk:
                raise self._closed(
                    f"{self.label}: the server closed the connection after {len(self._buf)} "
                    f"of {n} announced bytes"
                )
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self.transcript.append(f"S: <{n} bytes>")
        return data

    def read_dotted(self, *, cap: int, deadline: float | None = None) -> bytes:
        """The body of a POP3 multi-line response up to the lone "." line, dot-unstuffed.

        Lines keep their own line ends (the bytes are as the server stored them, so a DKIM body
        hash survives). Complete within the I/O timeout (or before `deadline`); ProtocolError
        as soon as the body passes `cap` bytes."""
        if deadline is None:
            deadline = time.monotonic() + self.io_timeout
        out = bytearray()
        start = 0  # where the search for the next line end resumes
        while True:
            end = self._buf.find(b"\n", start)
            if end < 0:
                start = len(self._buf)
                if len(out) + len(self._buf) > cap + 3:
                    raise self._over_cap(cap)
                self._sock.settimeout(self._remaining(deadline, "multi-line reply"))
                try:
                    chunk = self._sock.recv(_RECV * 4)
                except TimeoutError:
                    raise TimeoutError(
                        f"{self.label}: no complete multi-line reply within the time limit"
                    ) from None
                if not chunk:
                    raise self._closed(
                        f"{self.label}: the server closed the connection inside a multi-line "
                        f"reply after {len(out)} bytes"
                    )
                self._buf += chunk
                continue
            line = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            start = 0
            if line in (b".\r\n", b".\n"):
                self.transcript.append(f"S: <{len(out)} bytes> .")
                return bytes(out)
            if line.startswith(b"."):
                line = line[1:]
            out += line
            if len(out) > cap:
                raise self._over_cap(cap)

    def read_to_end(self, *, cap: int, deadline: float | None = None) -> tuple[bytes, bool]:
        """What the server sends until it closes the connection (an HTTP body without a
        length), within the I/O timeout (or before `deadline`): (bytes, over_cap). Stops
        reading as soon as more than `cap` bytes arrived (over_cap True, bytes cut to `cap`)."""
        if deadline is None:
            deadline = time.monotonic() + self.io_timeout
        while len(self._buf) <= cap:
            self._sock.settimeout(self._remaining(deadline, "body"))
            try:
                chunk = self._sock.recv(_RECV)
            except TimeoutError:
                raise TimeoutError(
                    f"{self.label}: the body did not end within the time limit"
                ) from None
            if not chunk:
                break
            self._buf += chunk
        over = len(self._buf) > cap
        data = bytes(self._buf[:cap])
        self._buf.clear()
        self.transcript.append(f"S: <{len(data)} bytes{' or more' if over else ''}>")
        return data, over

    def _over_cap(self, cap: int) -> ProtocolError:
        return ProtocolError(f"{self.label}: multi-line reply longer than {cap} bytes; gave up")

    def _first_read(self, deadline: float) -> str:
        """`_read_line`; a timeout before the server said anything, on a plaintext connection
        we have not spoken on, is its silence (the greeting never came): Silent, remembered."""
        if self._heard or self._spoke or self.tls is not None:
            return self._read_line(deadline)
        try:
            return self._read_line(deadline)
        except TimeoutError as exc:
            if self._heard:
                raise
            raise self._silent(exc, "with a greeting") from None

    def _read_line(self, deadline: float) -> str:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                if end > MAX_LINE_BYTES:
                    raise self._too_long()
                raw = bytes(self._buf[:end])
                del self._buf[: end + 1]
                return raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if len(self._buf) > MAX_LINE_BYTES:
                raise self._too_long()
            self._sock.settimeout(self._remaining(deadline, "reply"))
            try:
                chunk = self._sock.recv(_RECV)
            except TimeoutError:
                raise TimeoutError(
                    f"{self.label}: no complete reply within {self.io_timeout:g} s"
                ) from None
            if not chunk:
                raise self._closed(
                    f"{self.label}: the server closed the connection"
                    + (
                        f" after {_shorten(self._buf.decode('utf-8', 'replace'))!r}"
                        if self._buf
                        else ""
                    )
                )
            if not self._heard:
                self._heard = True
                self._settled()
            self._buf += chunk

    def _remaining(self, deadline: float, what: str) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{self.label}: no complete {what} within {self.io_timeout:g} s")
        return remaining

    def _too_long(self) -> ProtocolError:
        return ProtocolError(
            f"{self.label}: a line longer than {MAX_LINE_BYTES} bytes; gave up reading it"
        )


def _connect_failed(net: Net, ip: str, port: int, where: str, exc: OSError) -> OSError:
    """A connection attempt that failed (or its recording), remembered in the run's memory of
    dead endpoints: the exception to raise, naming the endpoint. `exc` is a TimeoutError or an
    OSError with an errno (ConnectionRefusedError, ...), raised again as the same type."""
    if isinstance(exc, TimeoutError):
        reason = f"no answer to the connection within {net.timeouts.connect:g} s"
        net.endpoints.remember(ip, port, ConnectTimeout, reason)
        return ConnectTimeout(f"{where}: {reason}")
    net.endpoints.remember(ip, port, type(exc), str(exc.strerror), exc.errno)
    return type(exc)(exc.errno, f"{where}: {exc.strerror}")


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

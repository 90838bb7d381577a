"""Each endpoint once per fleet run: conversations recorded once, replayed for other domains.

In a fleet run (`check --domains`), thousands of domains share a few hundred MX hosts. What a
transport probe sends to an endpoint does not depend on the domain (the same EHLO, STARTTLS,
the same foreign sender in the relay test); what it concludes does (the certificate must name
*that domain's* MX host; DANE asks that host's TLSA records). So the door records the first
conversation of each kind with an endpoint, what the server said, byte for byte, and the TLS
sessions it gave, and every other domain's probe gets that recording back instead of a new
connection. The probe code runs unchanged on the replay, with its own names: one connection set
per endpoint, every domain judged by its own rules.

A conversation is keyed by the probe that opens it (`current_probe`, set by the runner and
carried into the probes' own threads by `carry_probe`), the address, the port and how it is
opened (implicit TLS, chain verification, pinned TLS version), plus its rank among the
connections with that key in the domain's run (`Recorder.key`). The recording never holds
what the client sent (only its sizes: a password never lands on a tape), and the server's
name sent in SNI is the first domain's: a server choosing its certificate by SNI shows every
domain that one (the name checks still use each domain's own host name).

Who records what is decided by a `Board`: `LocalBoard` in one process (threads; shared with
worker processes through a multiprocessing manager) or a Dask board on a cluster
(probes.fleet_dask), with the run-wide connection limit per host (`--max-per-host`) next to
it. Only connections that go to the network take a run-wide slot; a replay takes none.
"""

from __future__ import annotations

import contextvars
import importlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.managers import BaseManager
from typing import Any, Protocol, TypeVar

from probes.net.sized_lru import SizedLru
from probes.net.tls import TlsSession

current_probe: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mailprobe_current_probe", default=None
)

T = TypeVar("T")

# How often a process waiting for another one's recording looks again, and how long a
# recording may take before its claim is given to someone else (its recorder died).
POLL_S = 0.02
CLAIM_LEASE_S = 600.0
# The recordings one process (or the local board) keeps: beyond this, the least recently
# used go (a conversation needed again after that is had again).
TAPE_BUDGET_BYTES = 64 * 1024 * 1024

# Exceptions a tape may hold, rebuilt by class path; anything else replays as an OSError.
_MODULES = ("builtins", "ssl", "socket", "probes.")
_ATTRS = ("verify_code", "verify_message", "reason", "library")


@contextmanager
def probe_scope(probe_id: str) -> Iterator[None]:
    """Connections opened inside belong to `probe_id` (the runner, around each probe)."""
    token = current_probe.set(probe_id)
    try:
        yield
    finally:
        current_probe.reset(token)


def carry_probe(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` for another thread (a pool's), still belonging to the calling probe."""
    probe_id = current_probe.get()

    def run(*args: Any, **kwargs: Any) -> T:
        token = current_probe.set(probe_id)
        try:
            return fn(*args, **kwargs)
        finally:
            current_probe.reset(token)

    return run


# ----- what a tape holds --------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedError:
    """An exception as recorded: rebuilt on replay (same class, arguments and ssl details)."""

    path: str  # "module:QualName"
    args: tuple[Any, ...]
    attrs: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, exc: BaseException) -> RecordedError:
        kind = type(exc)
        args = tuple(a if isinstance(a, str | int | float | None) else str(a) for a in exc.args)
        attrs = tuple(
            (name, getattr(exc, name))
            for name in _ATTRS
            if isinstance(getattr(exc, name, None), str | int)
        )
        return cls(f"{kind.__module__}:{kind.__qualname__}", args, attrs)

    def rebuild(self) -> BaseException:
        module, _, name = self.path.partition(":")
        kind: Any = OSError
        if module.startswith(_MODULES) or module in _MODULES:
            try:
                kind = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                kind = OSError
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            kind = OSError
        try:
            exc = kind(*self.args)
        except Exception:
            exc = OSError(*self.args)
        for attr, value in self.attrs:
            with suppress(AttributeError):
                setattr(exc, attr, value)
        return exc


@dataclass
class Tape:
    """One connection as the server played it: how it opened, then every event in order.

    Events: ("recv", bytes), ("raise", RecordedError) for a read that failed, ("tls",
    TlsSession) / ("raise", ...) for a handshake, ("sent", n) for n bytes the client sent,
    ("name", address) for the local address."""

    opened: RecordedError | None = None  # the connection attempt failed this way
    events: list[tuple[str, Any]] = field(default_factory=list)


def tape_size(tape: Tape) -> int:
    """About how many bytes a tape holds (what the server said, certificates included)."""
    size = 200
    for kind, value in tape.events:
        if kind == "recv":
            size += len(value) + 40
        elif kind == "tls":
            size += sum(len(der) for der in value.chain_der) + len(value.leaf_der or b"") + 200
        else:
            size += 60
    return size


class TapeStore(SizedLru[Tape]):
    """Tapes by key within `budget` bytes, least recently used first out: a fleet whose
    endpoints are mostly its own (one domain each) does not keep every recording."""

    def __init__(self, budget: int = TAPE_BUDGET_BYTES) -> None:
        super().__init__(max_bytes=budget)

    @property
    def evicted(self) -> int:
        return self.evictions

    def put(self, key: Key, tape: Tape, size: int | None = None) -> None:  # type: ignore[override]
        super().put(key, tape, tape_size(tape) if size is None else size)


class TapeEnded(ConnectionResetError):
    """A replay asked for more than the recording holds (the conversation went another way)."""


class RecordingSocket:
    """A real socket (plain or TLS) that writes down everything the server said."""

    def __init__(self, sock: Any, tape: Tape) -> None:
        self.sock = sock
        self.tape = tape

    def recv(self, size: int) -> bytes:
        try:
            data: bytes = self.sock.recv(size)
        except BaseException as exc:
            self.tape.events.append(("raise", RecordedError.of(exc)))
            raise
        self.tape.events.append(("recv", bytes(data)))
        return data

    def send(self, data: Any) -> int:
        sent: int = self.sock.send(data)
        self.tape.events.append(("sent", sent))
        return sent

    def getsockname(self) -> Any:
        name = self.sock.getsockname()
        self.tape.events.append(("name", tuple(name)))
        return name

    def settimeout(self, value: float | None) -> None:
        self.sock.settimeout(value)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


class ReplaySocket:
    """Plays a tape back: what the server said, in order; nothing goes to the network."""

    def __init__(self, tape: Tape, stats: FleetStats | None = None) -> None:
        self.tape = tape
        self.at = 0
        self.stats = stats

    def _next(self, *kinds: str) -> tuple[str, Any]:
        while self.at < len(self.tape.events):
            kind, value = self.tape.events[self.at]
            self.at += 1
            if kind == "raise" or kind in kinds:
                return kind, value
            if kind == "name":
                continue  # the recorder asked its local address there
            self._diverged(kind)
        raise TapeEnded("the server closed the connection (end of the recording)")

    def _diverged(self, kind: str) -> None:
        """The client does something else than the recorder did at this point: its replies
        would not be for it. It ends as a connection the server reset (counted)."""
        if self.stats is not None:
            self.stats.count("diverged")
        self.at = len(self.tape.events)
        raise TapeEnded(f"the recorded conversation went another way (it had {kind} here)")

    def recv(self, size: int) -> bytes:
        kind, value = self._next("recv")
        if kind == "raise":
            raise value.rebuild()
        return bytes(value)

    def send(self, data: Any) -> int:
        """As many bytes as the recorder's socket took at this point (the same partial
        sends); a client sending more or at another point has diverged."""
        while self.at < len(self.tape.events) and self.tape.events[self.at][0] == "name":
            self.at += 1
        if self.at >= len(self.tape.events):
            raise TapeEnded("the server closed the connection (end of the recording)")
        kind, value = self.tape.events[self.at]
        if kind != "sent" or value > len(data):
            self._diverged(kind if kind != "sent" else f"a send of {value} bytes")
        self.at += 1
        return int(value)

    def getsockname(self) -> Any:
        for kind, value in self.tape.events:
            if kind == "name":
                return value
        return ("127.0.0.1", 0)

    def settimeout(self, value: float | None) -> None:
        pass

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass

    def handshake(self) -> TlsSession:
        kind, value = self._next("tls")
        if kind == "raise":
            raise value.rebuild()
        session: TlsSession = value
        return session


# ----- who records: the board ---------------------------------------------------------------
Key = tuple[Any, ...]


class Board(Protocol):
    """Run-wide: the tapes, who is recording which, and the connection slots per host."""

    def claim(self, key: Key, owner: str) -> Tape | bool:
        """The tape when it is recorded; True: `owner` records it now; False: someone is."""
        ...

    def publish(self, key: Key, tape: Tape, owner: str) -> None: ...

    def abandon(self, key: Key, owner: str) -> None: ...

    def take_slot(self, host: str, limit: int, owner: str) -> bool: ...

    def give_slot(self, host: str, owner: str) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class LocalBoard:
    """The board of one process (and, served by a multiprocessing manager, of several)."""

    def __init__(self, lease_s: float = CLAIM_LEASE_S) -> None:
        self._lock = threading.Lock()
        self._tapes = TapeStore()
        self._claims: dict[Key, tuple[str, float]] = {}
        self._slots: dict[str, list[str]] = {}
        self._live: dict[str, int] = {}  # "ip:port" -> connections that went to the network
        self._lease_s = lease_s

    def claim(self, key: Key, owner: str) -> Tape | bool:
        now = time.monotonic()
        with self._lock:
            tape = self._tapes.get(key)
            if tape is not None:
                return tape
            holder = self._claims.get(key)
            if holder is not None and holder[0] != owner and now - holder[1] < self._lease_s:
                return False
            self._claims[key] = (owner, now)
            return True

    def publish(self, key: Key, tape: Tape, owner: str) -> None:
        with self._lock:
            self._tapes.put(key, tape)
            self._claims.pop(key, None)
            endpoint = f"{key[1]}:{key[2]}"
            self._live[endpoint] = self._live.get(endpoint, 0) + 1

    def abandon(self, key: Key, owner: str) -> None:
        with self._lock:
            if self._claims.get(key, ("",))[0] == owner:
                del self._claims[key]

    def take_slot(self, host: str, limit: int, owner: str) -> bool:
        with self._lock:
            holders = self._slots.setdefault(host, [])
            if len(holders) >= limit:
                return False
            holders.append(owner)
            return True

    def give_slot(self, host: str, owner: str) -> None:
        with self._lock:
            holders = self._slots.get(host, [])
            if owner in holders:
                holders.remove(owner)
            if not holders:
                self._slots.pop(host, None)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "tapes": len(self._tapes),
                "bytes": self._tapes.size,
                "evicted": self._tapes.evicted,
                "live_connections": dict(self._live),
            }


class FleetStats:
    """Counts of one process: conversations recorded, replayed, diverged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] = self.counts.get(what, 0) + n


class Tapes:
    """A process's side of the board: its copy of the tapes, and the waiting for recordings.

    `owner` names this process on the board (its claims and its slots)."""

    def __init__(self, board: Board, owner: str, *, max_per_host: int) -> None:
        self.board = board
        self.owner = owner
        self.max_per_host = max_per_host
        self.stats = FleetStats()
        self._lock = threading.Lock()
        self._local = TapeStore()
        self._recording: dict[Key, threading.Event] = {}

    def recorder(self) -> Recorder:
        """The door of one domain's run (it ranks that run's connections per key)."""
        return Recorder(self)

    def claim(self, key: Key, deadline: float) -> Tape | None:
        """The tape to replay, or None: the caller records it (then `publish` or `abandon`).

        Waits (at most until `deadline`, then records it itself) while another thread or
        process records the same conversation."""
        while True:
            with self._lock:
                tape = self._local.get(key)
                if tape is not None:
                    self.stats.count("replayed")
                    return tape
                busy = self._recording.get(key)
                if busy is None:
                    mine = threading.Event()
                    self._recording[key] = mine
            if busy is not None:  # another thread of this process records it
                busy.wait(max(0.0, deadline - time.monotonic()))
                if time.monotonic() >= deadline:
                    return None
                continue
            got = self._claim_on_board(key, deadline)
            if isinstance(got, Tape):
                with self._lock:
                    self._local.put(key, got)
                    self._recording.pop(key, None)
                mine.set()
                self.stats.count("replayed")
                return got
            return None  # recorded by this thread: publish() or abandon() settles `mine`

    def _claim_on_board(self, key: Key, deadline: float) -> Tape | bool:
        while True:
            got = self.board.claim(key, self.owner)
            if got is not False:
                return got
            if time.monotonic() >= deadline:
                return True  # waited long enough: record it again rather than give up
            time.sleep(POLL_S)

    def publish(self, key: Key, tape: Tape) -> None:
        self.board.publish(key, tape, self.owner)
        self.stats.count("recorded")
        with self._lock:
            self._local.put(key, tape)
            done = self._recording.pop(key, None)
        if done is not None:
            done.set()

    def abandon(self, key: Key) -> None:
        self.board.abandon(key, self.owner)
        with self._lock:
            done = self._recording.pop(key, None)
        if done is not None:
            done.set()

    @contextmanager
    def host_slot(self, host: str, deadline: float) -> Iterator[None]:
        """One of the run's `max_per_host` connections to `host` (across processes)."""
        while not self.board.take_slot(host, self.max_per_host, self.owner):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{host}: no free connection slot in the run")
            time.sleep(POLL_S)
        try:
            yield
        finally:
            self.board.give_slot(host, self.owner)


class Recorder:
    """One domain's run: ranks its connections per key, so the n-th matches the n-th."""

    def __init__(self, tapes: Tapes) -> None:
        self.tapes = tapes
        self._lock = threading.Lock()
        self._seen: dict[Key, int] = {}

    def key(self, ip: str, port: int, *, implicit_tls: bool, verify: bool, version: str | None):
        probe_id = current_probe.get()
        if probe_id is None:
            return None  # not inside a probe's run: never recorded, never replayed
        base = (probe_id, ip, port, implicit_tls, verify, version)
        with self._lock:
            rank = self._seen.get(base, 0)
            self._seen[base] = rank + 1
        return (*base, rank)


# ----- one board for several processes of this machine: a multiprocessing manager ------------
class _BoardManager(BaseManager):
    pass


_SERVED_BOARD: LocalBoard | None = None


def _the_board() -> LocalBoard:
    global _SERVED_BOARD
    if _SERVED_BOARD is None:
        _SERVED_BOARD = LocalBoard()
    return _SERVED_BOARD


_BoardManager.register("board", callable=_the_board)


def serve_board(context: Any) -> Any:
    """A manager process serving one LocalBoard on 127.0.0.1 (a random port and key); the
    caller shuts it down. Its `address` and `_authkey` are what `connect_board` needs."""
    manager = _BoardManager(address=("127.0.0.1", 0), authkey=os.urandom(16), ctx=context)
    manager.start()
    return manager


def connect_board(address: Any, authkey: bytes) -> Board:
    """The board `serve_board` serves, from another process."""
    manager = _BoardManager(address=address, authkey=authkey)
    manager.connect()
    board: Board = manager.board()  # type: ignore[attr-defined]
    return board

"""The run's memory of dead endpoints (part of the network door).

An endpoint (ip, port) that failed once in a run is not waited on again by the other probes of
that run: they get the same failure at once, from this memory. Remembered, per (ip, port):
- the connection was refused (ConnectionRefusedError and the other OSErrors of a connect with
  an errno: host or network unreachable, ...);
- nothing answered the connection attempt within `timeouts.connect` (ConnectTimeout);
- the connection was accepted but the server sent nothing within `timeouts.io` of connecting,
  when it had to speak first: no greeting on a plaintext port, no ServerHello on an
  implicit-TLS port (`Silent`, a TimeoutError).
The failure is given back as a new exception of the same type (the runner's classification
and the probes' own handling stay what they were), its message the first attempt's followed
by REMEMBERED. Once the run's deadline is reached (`stop`), every endpoint fails at once with
TimeoutError "run deadline reached". One memory per run (Net.endpoints); thread-safe.

First contact: until an endpoint has shown it is not dead, one attempt at a time goes to it
(`admit` -> FIRST for that one, WAIT for the others, without taking a connection slot); the
attempt `settle`s it (the server spoke, or failed in another way: later attempts go ahead at
once, as many at a time as the slots allow) or `remember`s its failure (the waiters get it
at once). So two probes never both wait out the timeout of one dead endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

REMEMBERED = "(remembered from an earlier attempt in this run)"


class Admission:
    """What `admit` says besides an exception: go, go as the first contact, or wait."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


GO = Admission("GO")  # the endpoint is known not dead: connect
FIRST = Admission("FIRST")  # connect as its first contact, then settle() or remember()
WAIT = Admission("WAIT")  # another attempt is its first contact: wait for its outcome


class ConnectTimeout(TimeoutError):
    """Nothing answered the TCP connection attempt in time (a filtered port, or a dead host)."""


class Silent(TimeoutError):
    """The server accepted the connection and then said nothing when it had to speak first."""


@dataclass(frozen=True)
class _Failure:
    kind: type[OSError]
    errno: int | None
    reason: str  # what happened, without the endpoint's name

    def again(self, where: str) -> OSError:
        text = f"{where}: {self.reason} {REMEMBERED}"
        if self.errno is not None:
            return self.kind(self.errno, text)
        return self.kind(text)


class EndpointMemory:
    """Failed endpoints of one run; `recall` gives their failure back at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed: dict[tuple[str, int], _Failure] = {}
        self._stopped: str | None = None
        self._first: set[tuple[str, int]] = set()  # first contact in progress
        self._settled: set[tuple[str, int]] = set()  # known not dead
        self._listeners: list[Callable[[], None]] = []
        self._open: dict[int, Callable[[], None]] = {}  # id -> abort, of connections open now
        self.recalled = 0  # attempts answered from the memory

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener()` whenever an endpoint is remembered or the run stops (the slot
        queue wakes its waiters with it, so they do not wait for a slot in vain)."""
        with self._lock:
            self._listeners.append(listener)

    def remember(
        self, ip: str, port: int, kind: type[OSError], reason: str, errno: int | None = None
    ) -> None:
        """Remember how (ip, port) failed: the exception type, the reason (without the
        endpoint's name) and for an OSError of the connect its errno. The first failure stays."""
        with self._lock:
            self._first.discard((ip, port))
            if (ip, port) in self._failed:
                return
            self._failed[(ip, port)] = _Failure(kind, errno, reason)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def admit(
        self, ip: str, port: int, where: str | None = None, *, claim: bool = True
    ) -> OSError | Admission:
        """May an attempt on (ip, port) go ahead now? Its remembered failure (to raise), or
        GO, FIRST (it is the first contact: the caller must settle() or remember() it) or
        WAIT. `claim=False` (no connection slot free yet): FIRST is never given, WAIT instead."""
        key = (ip, port)
        with self._lock:
            if self._stopped is None and key not in self._failed:
                if key in self._settled:
                    return GO if claim else WAIT
                if key in self._first or not claim:
                    return WAIT
                self._first.add(key)
                return FIRST
        failure = self.recall(ip, port, where)
        assert failure is not None
        return failure

    def unclaim(self, ip: str, port: int) -> None:
        """The first contact with (ip, port) ended without saying whether it is dead: the next
        attempt becomes its first contact."""
        with self._lock:
            self._first.discard((ip, port))
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def settle(self, ip: str, port: int) -> None:
        """The first contact with (ip, port) did not find it dead: no more waiting for it."""
        with self._lock:
            self._first.discard((ip, port))
            if (ip, port) in self._failed:
                return
            self._settled.add((ip, port))
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def recall(self, ip: str, port: int, where: str | None = None) -> OSError | None:
        """The exception to raise for (ip, port) now (its message naming `where`, default
        "ip:port"), or None when nothing is remembered."""
        with self._lock:
            if self._stopped is not None:
                return TimeoutError(f"{where or _name(ip, port)}: {self._stopped}")
            failure = self._failed.get((ip, port))
            if failure is None:
                return None
            self.recalled += 1
        return failure.again(where or _name(ip, port))

    def failed(self) -> dict[tuple[str, int], str]:
        """(ip, port) -> the exception type name of every remembered endpoint."""
        with self._lock:
            return {key: f.kind.__name__ for key, f in self._failed.items()}

    def track(self, key: int, abort: Callable[[], None]) -> None:
        """A connection is open: `abort()` ends it (from another thread) if the run stops."""
        with self._lock:
            stopped = self._stopped is not None
            if not stopped:
                self._open[key] = abort
        if stopped:
            abort()

    def untrack(self, key: int) -> None:
        with self._lock:
            self._open.pop(key, None)

    def stop(self, reason: str) -> None:
        """From now on every endpoint fails at once with TimeoutError(reason), and the
        connections still open are ended (their reads return at once: the probes that were
        abandoned at the run's deadline end now, not after their I/O timeouts)."""
        with self._lock:
            if self._stopped is None:
                self._stopped = reason
            listeners = list(self._listeners)
            aborts = list(self._open.values())
            self._open.clear()
        for listener in listeners:
            listener()
        for abort in aborts:
            abort()

    @property
    def stopped(self) -> str | None:
        return self._stopped


def _name(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"

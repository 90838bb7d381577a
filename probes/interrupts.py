"""SIGINT and SIGTERM: how a command is interrupted, and sections an interrupt cannot cut short.

Python runs signal handlers in the main thread only, between two bytecodes, whichever thread
the kernel handed the signal to. So a signal never raises in a worker thread; it raises in the
main thread wherever that thread happens to be, also half-way through a teardown. Two tools:

- `handled()` (the CLI's `main`): SIGINT and SIGTERM raise `Interrupted(signum)`, a
  KeyboardInterrupt, so every `finally` and `except BaseException` unwinds. A second signal
  raises again (Python drops an exception raised in a weakref callback or `__del__`, so the
  first one may have been lost); what must not be cut short (the lab's teardown) runs in
  deferred sections. `received()` keeps the first signal, so a lost raise is still noticed
  when the command returns. After `unwind()` (the command's own cleanup after an interrupt)
  or `finish()` (the command's outcome is settled) signals are only noted.
- `deferred()`: a section that runs to its end (lab teardown, container creation). A signal
  arriving meanwhile is held, and handed to the handler that was in place before the section
  when the section ends: the CLI's raises `Interrupted`, Python's default raises
  KeyboardInterrupt (pytest), SIG_DFL terminates the process as it would have. In any thread
  but the main one it does nothing: no signal raises there.

Exit statuses follow the shell: 128 + the signal number (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (raised in the main thread by `handled()`'s handler)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def exit_status_of(exc: BaseException) -> int:
    """130 for Ctrl-C (a plain KeyboardInterrupt too), 143 for SIGTERM."""
    if isinstance(exc, Interrupted):
        return exc.exit_status
    return 128 + signal.SIGINT


# ----- handled(): the command line's handler ----------------------------------------------------
class _Command:
    """What the CLI's handler knows: the first signal, and whether the outcome is settled."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.finished = False
        self.unwinding = False
        self.later: list[int] = []

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.finished or self.unwinding:
            self.later.append(signum)  # nothing left to cut short
            return
        if self.first is None:
            self.first = signum
        raise Interrupted(signum)


_command: _Command | None = None


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` once (main thread only; restored on leaving)."""
    global _command
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_command = _command
    command = _Command()
    saved: dict[int, Handler] = {}
    previous_hook = sys.unraisablehook

    def unraisable(info: Any) -> None:
        if not isinstance(info.exc_value, Interrupted):  # a dropped one is noticed: received()
            previous_hook(info)

    try:
        for signum in SIGNALS:
            saved[signum] = signal.signal(signum, command.handler)
        _command = command
        sys.unraisablehook = unraisable
        yield
    finally:
        sys.unraisablehook = previous_hook
        _command = previous_command
        for number, handler in saved.items():
            signal.signal(number, handler)


def finish() -> None:
    """The running command's outcome is settled: from now on a signal changes nothing."""
    if _command is not None:
        _command.finished = True


def unwind() -> None:
    """The command is cleaning up after an interrupt: later signals are only noted."""
    if _command is not None:
        _command.unwinding = True


def received() -> int | None:
    """The first signal the running command got (None: none, or no command running)."""
    return _command.first if _command is not None else None


# ----- deferred(): sections that run to their end -----------------------------------------------
_depth = 0
_held: list[int] = []
_saved: dict[int, Handler] = {}


def _hold(signum: int, frame: FrameType | None) -> None:
    _held.append(signum)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the section ends, then deliver the first one held.

    Nests (only the outermost section delivers). In threads other than the main one it only
    runs the section."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        try:
            for signum in SIGNALS:
                _saved[signum] = signal.signal(signum, _hold)
        except BaseException:  # a signal landed before the section started: it did not start
            _restore()
            raise
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _restore()
            held = _held[:]
            _held.clear()
            if held:
                _deliver(held[0])


def holding() -> bool:
    """Whether the main thread is inside a deferred() section."""
    return _depth > 0


def _restore() -> None:
    for signum, handler in list(_saved.items()):
        signal.signal(signum, handler)
        del _saved[signum]


def _deliver(signum: int) -> None:
    """Hand a held signal to the handler now in place, as if it arrived just now."""
    handler = signal.getsignal(signum)
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)  # terminates the process, as it would have at once


# ----- SIGTERM for library users (the pytest fixtures) ------------------------------------------
_sigterm_before: list[Handler] = []


def sigterm_unwinds() -> None:
    """SIGTERM raises KeyboardInterrupt, so the labs are torn down as for Ctrl-C, when nothing
    else handles it (its action is the default: end the process at once, leaving the labs).
    Main thread only; `sigterm_restore()` puts the default back."""
    if _sigterm_before or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt("SIGTERM")

    _sigterm_before.append(signal.signal(signal.SIGTERM, terminated))


def sigterm_restore() -> None:
    if _sigterm_before and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_before.pop())

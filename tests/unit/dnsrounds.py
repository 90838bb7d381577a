"""Count the rounds of DNS questions a probe needs: its dependency depth, without a clock.

A probe should ask every question it can before it waits for answers (the benchmark requires a
domain's wall time to follow the longest chain of dependent questions). `RoundsBackend`
measures that chain deterministically: every question blocks in `resolve()` until its round is
released, and a round is released only when nothing can happen without it:

- every door task started (counted by the client's pool, see `client()`) is parked in
  `resolve()` — none is still on its way there, or busy with an answer; and
- the asker (the probe's thread) is blocked waiting on an unanswered door Future.

The questions parked at that moment are one round: they were all in flight at once, and the
probe could ask nothing more before getting an answer. `batches` lists them, round by round
(each sorted); `rounds` is how many. A CNAME target asked by the door is a round of its own,
as on the wire.

Why not a quiet period ("release when no question came for 50 ms")? On a slow or loaded
machine the probe thread can be descheduled between two questions of one level longer than any
quiet period, which would split one round into two. The condition above involves no time: it
is reached only when every thread that could ask something is stuck, so however slow the
machine, a round holds exactly the questions asked before the asker had to wait.

How the two facts are known, without touching `probes/`:
- `client()` builds a `DnsClient` whose pool runs each door task on a thread of its own and
  counts started/finished tasks (a thread per task, so a round of any size can all park at
  once; the shared pool's 128 workers would cap it).
- Inside `with RoundsBackend(...)`, `probes.net.dns.Future` is replaced by a subclass whose
  `result()` counts the asker as blocked while the Future is unanswered; `set_result()` un-counts
  its waiters in the same locked step, so an asker is never counted blocked after its answer
  came (which would release the next round before the asker has asked its part of it).

Limits: one asking thread by default (`askers=`); a probe that asks from several threads at
once (dns.spf evaluating several sending IPs) needs `askers=N` and only works when all N block
on door Futures. Waiting on door Futures other than with `.result()` (concurrent.futures.wait)
is not seen and ends in the hang guard: after `hang_guard` seconds a parked question fails
(its answer becomes BADRESPONSE), so such a test fails instead of hanging. Leaving the `with`
block releases whatever is still parked (`unawaited` lists questions never waited for).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import probes.net.dns as door
from probes.net.dns import DnsClient, RawAnswer, StaticBackend

Question = tuple[str, str]


class RoundsBackend(StaticBackend):
    """A StaticBackend that answers in rounds; use as a context manager, ask via `client()`."""

    def __init__(
        self, records: Mapping[tuple[str, str], Any], *, askers: int = 1, hang_guard: float = 30
    ) -> None:
        super().__init__(records)
        self.askers = askers
        self.hang_guard = hang_guard
        self.batches: list[list[Question]] = []
        self.unawaited: list[Question] = []
        self._cond = threading.Condition(threading.RLock())
        self._outstanding = 0  # door tasks started and not finished
        self._parked: list[Question] = []  # questions waiting for their round
        self._blocked = 0  # askers waiting on an unanswered door Future
        self._released = 0  # rounds released so far
        self._active = False
        self._closed = False
        self._task = threading.local()
        self._saved_future: type | None = None

    @property
    def rounds(self) -> int:
        return len(self.batches)

    # --- setup ----------------------------------------------------------------------------

    def __enter__(self) -> RoundsBackend:
        self._saved_future = door.Future
        door.Future = _tracked_future(self)  # type: ignore[misc]
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        door.Future = self._saved_future  # type: ignore[misc]
        with self._cond:
            self._active = False
            self._closed = True
            self.unawaited = sorted(self._parked)
            self._cond.notify_all()

    def client(self) -> DnsClient:
        if not self._active:
            raise RuntimeError("RoundsBackend.client() is for use inside `with RoundsBackend()`")
        return DnsClient(self, pool=_ThreadPerTask(self))  # type: ignore[arg-type]

    # --- the backend ----------------------------------------------------------------------

    def resolve(self, name: str, rdtype: str) -> RawAnswer:
        if not getattr(self._task, "inside", False):
            raise RuntimeError("ask through RoundsBackend.client(): its pool counts the tasks")
        with self._cond:
            if not self._closed:
                self._parked.append((name, rdtype))
                waiting_for = self._released + 1
                self._maybe_release()
                released = self._cond.wait_for(
                    lambda: self._released >= waiting_for or self._closed, self.hang_guard
                )
                if not released:
                    raise RuntimeError(
                        f"round never released for {rdtype} {name}: {len(self._parked)} parked, "
                        f"{self._outstanding} tasks, {self._blocked} askers blocked"
                    )
        return super().resolve(name, rdtype)

    # --- bookkeeping (called with self._cond held) ----------------------------------------

    def _maybe_release(self) -> None:
        if self._closed or not self._parked:
            return
        if len(self._parked) == self._outstanding and self._blocked >= self.askers:
            self.batches.append(sorted(self._parked))
            self._parked = []
            self._released += 1
            self._cond.notify_all()

    def _task_started(self) -> None:
        with self._cond:
            self._outstanding += 1

    def _task_finished(self) -> None:
        with self._cond:
            self._outstanding -= 1
            self._maybe_release()


class _ThreadPerTask:
    """The pool for `DnsClient(pool=...)`: a daemon thread per door task, counted."""

    def __init__(self, backend: RoundsBackend) -> None:
        self.backend = backend

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        backend = self.backend
        backend._task_started()  # before the thread exists: the task is outstanding from now

        def task() -> None:
            backend._task.inside = True
            try:
                fn(*args)
            finally:
                backend._task_finished()

        threading.Thread(target=task, name="dnsrounds-task", daemon=True).start()


def _tracked_future(backend: RoundsBackend) -> type[Future]:
    cond = backend._cond

    class TrackedFuture(Future):
        """A door Future that tells `backend` when an asker waits on it unanswered."""

        def __init__(self) -> None:
            super().__init__()
            self.waiting_askers = 0

        def result(self, timeout: float | None = None) -> Any:
            with cond:
                if not self.done():
                    self.waiting_askers += 1
                    backend._blocked += 1
                    backend._maybe_release()
            return super().result(timeout)

        def set_result(self, result: Any) -> None:
            with cond:
                backend._blocked -= self.waiting_askers
                self.waiting_askers = 0
                super().set_result(result)

    return TrackedFuture


__all__ = ["RoundsBackend"]

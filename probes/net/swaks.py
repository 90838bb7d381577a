"""The swaks door: find the binary, run it bounded, hand back its transcript and exit code.

- **Bounded.** One run has a hard deadline (`timeout`): when it passes, the whole process
  group swaks runs in is killed (SIGKILL) and TimeoutError names the `host:port`. Output
  (stdout and stderr, interleaved as swaks wrote them) is kept up to `output_cap` bytes; the
  rest is read and dropped, and `SwaksRun.truncated` says so. Nothing is left running: the
  group is killed also when the caller is interrupted.
- **Secrets.** The password never appears on swaks' command line (which `ps` shows to every
  user): it travels in the child's environment as `SWAKS_OPT_auth_password`, swaks' documented
  way to take options from the environment (man swaks, "CONFIGURATION ENVIRONMENT
  VARIABLES"). The environment is readable only by the same user. The output is scrubbed of
  the password and its base64 forms before it is returned.
- **Stoppable.** With the run's endpoint memory (`memory`), swaks is killed at once when the
  run stops (its deadline, probes.net.endpoints), so an abandoned probe does not hold on.
- **Isolation.** swaks runs with `--config` without argument (no ~/.swaksrc, no built-in
  config), an environment of PATH and LC_ALL only (no stray SWAKS_OPT_* from the caller's
  environment), stdin from /dev/null (swaks never waits on a prompt).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probes.redact import Redactor, secret_forms

if TYPE_CHECKING:
    from probes.net.endpoints import EndpointMemory

BINARY = "swaks"
OUTPUT_CAP = 256 * 1024
PASSWORD_ENV = "SWAKS_OPT_auth_password"
VERSION_TIMEOUT = 10.0
_READ_CHUNK = 65536


class SwaksTimedOut(TimeoutError):
    """swaks did not finish within its deadline; `output` is what it printed until then
    (capped, secrets scrubbed)."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


class SwaksUnusable(Exception):
    """swaks cannot be run for this test (the message says why; never contains a secret)."""


@dataclass(frozen=True)
class SwaksRun:
    """One finished swaks run. `argv` is exactly what ran (it holds no secret)."""

    argv: tuple[str, ...]
    exit_code: int  # negative: killed by that signal
    output: str  # stdout and stderr interleaved, capped, secrets scrubbed
    truncated: bool
    duration_s: float


def find_swaks(path: str | None = None) -> str | None:
    """The swaks executable on `path` (default: $PATH), or None when it is not installed."""
    return shutil.which(BINARY, path=path)


_version_lock = threading.Lock()
_versions: dict[str, str | None] = {}


def swaks_version(binary: str) -> str | None:
    """swaks' version ("20201014.0"), asked once per binary; None when it does not say."""
    with _version_lock:
        if binary in _versions:
            return _versions[binary]
    try:
        run = run_swaks(binary, ["--version"], timeout=VERSION_TIMEOUT, what="swaks --version")
    except (OSError, TimeoutError):
        version = None
    else:
        version = None
        for word_line in run.output.splitlines():
            words = word_line.split()
            if len(words) >= 3 and words[0] == "swaks" and words[1] == "version":
                version = words[2]
                break
    with _version_lock:
        _versions[binary] = version
    return version


def password_usable(password: str) -> bool:
    """Whether swaks can take `password` as an option value: it reads one that begins with
    "-" as an option, "<>" as the empty password, and an option value cannot hold a newline
    or NUL."""
    return (
        bool(password)
        and not password.startswith("-")
        and password != "<>"
        and not any(c in password for c in "\n\r\0")
    )


def scrub(text: str, secrets: Sequence[str]) -> str:
    return Redactor(secrets)(text)


def run_swaks(
    binary: str,
    args: Sequence[str],
    *,
    timeout: float,
    what: str,
    password: str | None = None,
    user: str | None = None,
    output_cap: int = OUTPUT_CAP,
    memory: EndpointMemory | None = None,
) -> SwaksRun:
    """Run `binary args...` within `timeout` seconds; TimeoutError naming `what` when it
    does not finish in time (the process group is killed first).

    `password` goes to swaks through its environment, never `args`; SwaksUnusable when swaks
    could not take it (see `password_usable`). OSError when the binary cannot be started.
    """
    if password is not None and not password_usable(password):
        raise SwaksUnusable(
            "swaks cannot take this password as an option value (it begins with '-', is '<>' "
            "or holds a line break)"
        )
    argv = (binary, *args)
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
    if password is not None:
        env[PASSWORD_ENV] = password
    secrets = secret_forms(user, password)
    start = time.monotonic()
    deadline = start + timeout
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group, killed as a whole
        close_fds=True,
    )
    kept = bytearray()
    lock = threading.Lock()  # the group is killed by the run's stop or by us, never once reaped
    reaped = False

    def abort() -> None:  # the run stopped (its deadline): swaks ends now
        with lock:
            if not reaped:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

    if memory is not None:
        memory.track(id(proc), abort)
    truncated = False
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"swaks against {what}: no result within {timeout:g} s")
                if not sel.select(remaining):
                    continue
                try:
                    chunk = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                room = output_cap - len(kept)
                if len(chunk) > room:
                    truncated = True
                    chunk = chunk[: max(room, 0)]
                kept += chunk
        _await_exit(proc, deadline, timeout, what)
    except TimeoutError as exc:
        output = scrub(kept.decode("utf-8", errors="replace"), secrets)
        raise SwaksTimedOut(str(exc), output) from None
    finally:
        if memory is not None:
            memory.untrack(id(proc))
        with lock:
            reaped = True
            _kill_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()
    exit_code = proc.returncode
    text = scrub(kept.decode("utf-8", errors="replace"), secrets)
    return SwaksRun(
        argv=argv,
        exit_code=exit_code,
        output=text,
        truncated=truncated,
        duration_s=time.monotonic() - start,
    )


def _await_exit(proc: subprocess.Popen[bytes], deadline: float, timeout: float, what: str) -> None:
    """Wait until swaks has exited WITHOUT reaping it: while it is an unreaped zombie its
    process group id cannot be reused, so `_kill_group` can never hit a stranger's group."""
    delay = 0.001
    while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"swaks against {what}: no result within {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of swaks' process group, then reap swaks.

    Called while swaks is not yet reaped (alive, or a zombie after `_await_exit`), so its
    group id is still its own."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored
        proc.wait(timeout=5)

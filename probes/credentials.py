"""Login credentials, referenced, never carried: `env:NAME` or `file:PATH`.

The reference is what a Target, a report or a log may show; the secret is read only when a
probe logs in (`login_for`). A lab's throwaway login is the one exception: it is held in
memory by the lab's Target (`Target.login`, built by probes.lab.target), never put in the
process environment, so two labs in one process each log in as their own user.

The value (the variable's content, or the file's first line) is `USER:PASSWORD`, split
at the first colon, as in `curl -u`. Errors name the reference and never the value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from probes.errors import ProbeConfigError
from probes.model import Credentials

if TYPE_CHECKING:
    from probes.model import Target

__all__ = ["Credentials", "check_ref", "has_login", "load_credentials", "login_for", "login_source"]


def check_ref(ref: str) -> None:
    """Raise ProbeConfigError unless `ref` has the form env:NAME or file:PATH."""
    kind, sep, rest = ref.partition(":")
    if not sep or kind not in ("env", "file") or not rest:
        raise ProbeConfigError(f"credentials {ref!r}: expected env:NAME or file:PATH")


def load_credentials(ref: str) -> Credentials:
    """Read the credentials `ref` points at (ProbeConfigError naming `ref` when unusable)."""
    check_ref(ref)
    kind, _, rest = ref.partition(":")
    if kind == "env":
        value = os.environ.get(rest)
        if value is None:
            raise ProbeConfigError(f"credentials {ref!r}: environment variable {rest} is not set")
    else:
        try:
            text = Path(rest).read_text(encoding="utf-8")
        except OSError as exc:
            raise ProbeConfigError(
                f"credentials {ref!r}: cannot read the file: {exc.strerror or type(exc).__name__}"
            ) from None
        except UnicodeDecodeError:
            raise ProbeConfigError(f"credentials {ref!r}: the file is not UTF-8 text") from None
        value = text.splitlines()[0] if text else ""
    user, sep, password = value.strip("\r\n").partition(":")
    if not sep or not user or not password:
        raise ProbeConfigError(f"credentials {ref!r}: expected USER:PASSWORD")
    return Credentials(user=user, password=password)


def has_login(target: Target) -> bool:
    """Whether the target has a login to try (in memory or referenced)."""
    return target.login is not None or bool(target.credentials_ref)


def login_for(target: Target) -> Credentials | None:
    """The login a probe uses: the Target's in-memory one, else the one its reference points
    at (read now; ProbeConfigError naming the reference when unusable), else None."""
    if target.login is not None:
        return target.login
    if target.credentials_ref:
        return load_credentials(target.credentials_ref)
    return None


def login_source(target: Target) -> str:
    """What to call the login in messages: the reference, or `the lab's login`."""
    return target.credentials_ref or ("the lab's login" if target.login else "no login")

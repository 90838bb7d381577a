"""Lab flavours: which MTA runs the mx and outbound roles, and what answers IMAP/POP3.

Each flavour is a module with the same three names:

- `PACKAGES`: the Debian packages its servers need (the image that holds them is built and
  cached by `probes.lab.image`);
- `unsupported(spec) -> list[(field, reason)]`: the spec fields this flavour cannot express
  (the spec is refused naming them; the flavour test matrix skips those cells with the reason);
- `render(spec, root, role, password)`: writes `<root>/<role>/` (configs and `start.sh`) for a
  container of that role. Shared inputs are already in `root`: `tls/<role>.crt|key`,
  `dkim/<domain>.<selector>.key`, `ca.pem`, `files/`.

MTA flavours render the roles `mx` and `outbound`; mailbox fronts render `mailbox` (and, for
Perdition, the Dovecot `store` behind it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import ModuleType

from probes.lab import (
    dovecot_conf,
    exim_conf,
    perdition_conf,
    postfix_conf,
    sendmail_conf,
)
from probes.lab.spec import MAILBOX_FRONTS, MTAS, LabSpec

MTA_MODULES: dict[str, ModuleType] = {
    "exim": exim_conf,
    "postfix": postfix_conf,
    "sendmail": sendmail_conf,
}
FRONT_MODULES: dict[str, ModuleType] = {
    "dovecot": dovecot_conf,
    "perdition": perdition_conf,
}
# The flavour matrix the scenario suite runs on (scenario `lab_flavours: all`, the lab tests):
# every MTA, and every mailbox front. The front is independent of the MTA (it only receives
# LMTP), so Perdition is paired with the default MTA.
MATRIX: tuple[str, ...] = ("exim+dovecot", "postfix+dovecot", "sendmail+dovecot", "exim+perdition")
DEFAULT_FLAVOUR = "exim+dovecot"
FLAVOURS_ENV = "MAILPROBE_LAB_FLAVOURS"
# The image that holds each MTA; "base" holds Knot, Dovecot, Perdition and Exim.
MTA_IMAGE = {"exim": "base", "postfix": "postfix", "sendmail": "sendmail"}


def mta_module(spec: LabSpec) -> ModuleType:
    return MTA_MODULES[spec.mta]


def front_module(spec: LabSpec) -> ModuleType:
    return FRONT_MODULES[spec.mailbox_front]


def unsupported(spec: LabSpec) -> list[tuple[str, str]]:
    """(spec field, reason) for everything this spec asks that its flavour cannot express."""
    found: list[tuple[str, str]] = []
    if spec.mta in MTA_MODULES:
        found += MTA_MODULES[spec.mta].unsupported(spec)
    if spec.mailbox_front in FRONT_MODULES:
        found += FRONT_MODULES[spec.mailbox_front].unsupported(spec)
    return found


def unsupported_reason(spec: LabSpec) -> str | None:
    """One line naming what the flavour cannot express (None: the spec is expressible)."""
    found = unsupported(spec)
    if not found:
        return None
    return "; ".join(f"{fld}: {reason}" for fld, reason in found)


def parse_flavour(text: str) -> tuple[str, str]:
    """`mta+front` (or just `mta`, with Dovecot) -> (mta, front); ValueError naming the part."""
    mta, _, front = text.strip().partition("+")
    front = front or "dovecot"
    if mta not in MTAS:
        raise ValueError(f"lab flavour {text!r}: MTA {mta!r} is not one of {', '.join(MTAS)}")
    if front not in MAILBOX_FRONTS:
        raise ValueError(
            f"lab flavour {text!r}: mailbox front {front!r} is not one of "
            f"{', '.join(MAILBOX_FRONTS)}"
        )
    return mta, front


def with_flavour(spec: LabSpec, flavour: str) -> LabSpec:
    """The spec with the flavour's MTA and mailbox front (not validated: see unsupported)."""
    mta, front = parse_flavour(flavour)
    return dataclasses.replace(spec, mta=mta, mailbox_front=front)


def flavours_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The matrix, or the comma-separated flavours in $MAILPROBE_LAB_FLAVOURS (ValueError)."""
    raw = environ.get(FLAVOURS_ENV, "").strip()
    if not raw:
        return MATRIX
    chosen = []
    for item in raw.split(","):
        if item.strip():
            mta, front = parse_flavour(item)
            chosen.append(f"{mta}+{front}")
    if not chosen:
        raise ValueError(f"${FLAVOURS_ENV} names no flavour")
    return tuple(dict.fromkeys(chosen))

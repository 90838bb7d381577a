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

from types import ModuleType

from probes.lab import (
    dovecot_conf,
    exim_conf,
    perdition_conf,
    postfix_conf,
    sendmail_conf,
)
from probes.lab.spec import LabSpec

MTA_MODULES: dict[str, ModuleType] = {
    "exim": exim_conf,
    "postfix": postfix_conf,
    "sendmail": sendmail_conf,
}
FRONT_MODULES: dict[str, ModuleType] = {
    "dovecot": dovecot_conf,
    "perdition": perdition_conf,
}
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

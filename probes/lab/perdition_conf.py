"""Perdition on the lab's mailbox role (IMAP/POP3 with SSL and STARTTLS), proxying in clear
to a Dovecot store on the `store` role. (Being written: issue 7.)"""

from __future__ import annotations

from pathlib import Path

from probes.lab.spec import LabSpec

PACKAGES: tuple[str, ...] = ("perdition",)


def unsupported(spec: LabSpec) -> list[tuple[str, str]]:
    return []


def render(spec: LabSpec, root: Path, role: str, password: str) -> None:
    raise NotImplementedError("the perdition lab flavour is being written")

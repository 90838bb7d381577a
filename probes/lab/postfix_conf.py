"""Postfix for the lab's mx and outbound roles, with the OpenDKIM milter (signing on outbound,
verifying on mx) and OpenDMARC adding `dmarc=` results on the mx. (Being written: issue 7.)"""

from __future__ import annotations

from pathlib import Path

from probes.lab.spec import LabSpec

PACKAGES: tuple[str, ...] = ("postfix", "opendkim", "opendmarc", "postfix-policyd-spf-python")


def unsupported(spec: LabSpec) -> list[tuple[str, str]]:
    return []


def render(spec: LabSpec, root: Path, role: str, password: str) -> None:
    raise NotImplementedError("the postfix lab flavour is being written")

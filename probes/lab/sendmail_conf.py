"""sendmail for the lab's mx and outbound roles, with the OpenDKIM milter
(`INPUT_MAIL_FILTER`). (Being written: issue 7.)"""

from __future__ import annotations

from pathlib import Path

from probes.lab.spec import LabSpec

PACKAGES: tuple[str, ...] = ("sendmail-bin", "sendmail-cf", "m4", "opendkim")


def unsupported(spec: LabSpec) -> list[tuple[str, str]]:
    return []


def render(spec: LabSpec, root: Path, role: str, password: str) -> None:
    raise NotImplementedError("the sendmail lab flavour is being written")

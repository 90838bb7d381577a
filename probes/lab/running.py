"""A lab that `mailprobe lab up --name NAME` left running, found by its name.

    info = running_lab("mine")   # its LabInfo (throwaway password included, in memory only)

`check --lab-name NAME` and scenarios with `lab: {name: NAME}` probe it through the same
Target builder as `check --lab` (probes.lab.target.lab_target). A lab that is not up, whose
files are gone, or whose services do not answer (the health check of `lab status`) is refused
with LabNotRunning (a UsageError: exit 2), before anything is probed; the caller puts its
option or field in front of the message. The password is read from the lab's info.json (mode
0600), never printed and never put in the environment.
"""

from __future__ import annotations

from pathlib import Path

from probes.errors import UsageError
from probes.lab.lab import LabInfo
from probes.lab.state import LabState, check_name, service_health


class LabNotRunning(UsageError):
    """No lab of that name is up, or it no longer answers; the message says what to do."""


def running_lab(name: str) -> LabInfo:
    """The information of the running lab `name`, after checking that it answers."""
    try:
        check_name(name)
    except ValueError as exc:
        raise LabNotRunning(str(exc)) from None
    state = LabState(name)
    again = f"`mailprobe lab down --name {name}`, then `mailprobe lab up --name {name}`"
    if not state.exists():
        raise LabNotRunning(
            f"no lab {name!r} is up (start it with `mailprobe lab up --name {name}`)"
        )
    try:
        info = state.load()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabNotRunning(
            f"the state of lab {name!r} ({state.info_file}) is unreadable "
            f"({type(exc).__name__}); {again}"
        ) from None
    gone = [path for path in (info.ca_file, *info.dkim.values()) if not Path(path).exists()]
    if gone:
        raise LabNotRunning(f"the files of lab {name!r} are gone ({gone[0]}); {again}")
    health = service_health(info)
    down = [service for service, up in health.items() if not up]
    if down:
        raise LabNotRunning(
            f"lab {name!r} does not answer ({', '.join(down)} down: its containers are gone "
            f"or stopped); {again}"
        )
    return info

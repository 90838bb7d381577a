"""pytest-xdist workers and the lab (pure: no xdist import, no container engine).

Under `pytest -n N` each worker is its own process and its own pytest session: session fixtures
(`mailprobe_lab`, the scenarios' shared lab per flavour) are per worker, and each lab picks its
own free 127.X.Y.0/24 block under a cross-process lock (probes.lab.lab), so workers never share
a lab. What this module adds:

- `worker_id()`: the worker this process is ("gw0", ...), None outside xdist;
- `worker_labels(worker)`: the container labels that name it on every lab the worker starts
  (`podman ps --filter label=mailprobe.worker=gw1`);
- `scenario_properties(...)`: the JUnit properties of a scenario test (lab id, flavour, worker),
  which xdist carries to the controller's `--junitxml`;
- `serial_group(scenario)`: the `xdist_group` of scenarios that must not run at the same time
  on two workers (a lab spec that fixes its `block`; a running lab named by `lab: {name: N}`),
  which `--dist loadgroup` keeps on one worker.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probes.scenario import Scenario

WORKER_ENV = "PYTEST_XDIST_WORKER"  # set by pytest-xdist in each worker process
_WORKER = re.compile(r"^gw\d+$")

# JUnit property names (`<property name=… value=…/>` of each scenario testcase).
PROPERTY_LAB = "mailprobe.lab"
PROPERTY_FLAVOUR = "mailprobe.flavour"
PROPERTY_WORKER = "mailprobe.worker"


def worker_id(environ: Mapping[str, str] = os.environ) -> str | None:
    """ "gw0", "gw1", ... in a pytest-xdist worker; None in a plain session or the controller.
    A value that is not xdist's (gw + digits) is ignored rather than put into labels."""
    value = environ.get(WORKER_ENV, "").strip()
    return value if _WORKER.match(value) else None


def worker_labels(worker: str | None) -> dict[str, str]:
    """The extra container labels of the labs a worker starts ({} outside xdist)."""
    from probes.lab.containers import LABEL_WORKER  # testcontainers: only when asked

    return {LABEL_WORKER: worker} if worker else {}


def scenario_properties(
    lab_id: str | None, flavour: str | None, worker: str | None
) -> list[tuple[str, str]]:
    """The (name, value) JUnit properties of one scenario test: the lab it ran on, its
    flavour, the xdist worker that ran it; each only when there is one."""
    found = [(PROPERTY_LAB, lab_id), (PROPERTY_FLAVOUR, flavour), (PROPERTY_WORKER, worker)]
    return [(name, value) for name, value in found if value]


def serial_group(scenario: Scenario) -> str | None:
    """The xdist group of a scenario that would collide with another one running at the same
    time on another worker, or None (the usual case: its lab is its worker's own)."""
    if scenario.lab_name is not None:
        return f"mailprobe-lab-{scenario.lab_name}"
    if scenario.lab_spec is not None and scenario.lab_spec.block is not None:
        from probes.lab.lab import lab_id_for

        return f"mailprobe-block-{lab_id_for(scenario.lab_spec.block)}"
    return None

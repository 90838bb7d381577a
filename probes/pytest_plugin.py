"""pytest plugin (entry point `pytest11`): fixtures for tests that need the embedded lab.

- `mailprobe_lab`: one lab with the default (correct) spec, shared by the session.
- `mailprobe_lab_factory`: call it with a LabSpec to get a running Lab; every lab it started is
  removed when the test ends, also when it fails or is interrupted (Ctrl-C, or SIGTERM: once a
  lab has started, SIGTERM unwinds the session like Ctrl-C when nothing else handles it).
- `mailprobe_lab_factory_session`: the same, with labs kept until the session ends.
- `mailprobe_target`: the Target `check --lab` builds for the session lab.
- `mailprobe_run_probes(*globs, target=None, **changes)`: run installed probes as the CLI does.

Session scope is per process: under pytest-xdist (`-n N`) each worker has its own session
labs, each on its own block, their containers labelled `mailprobe.worker=gwN`.

Tests that use them should carry `@pytest.mark.lab`. Scenario files (`scenarios/**/*.yaml`, one
item per YAML document) are collected by the hook from probes.pytest_scenarios.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from probes.pytest_scenarios import pytest_collect_file  # noqa: F401  (scenario YAML items)

if TYPE_CHECKING:
    from probes.lab.lab import Lab
    from probes.lab.spec import LabSpec


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lab: needs the embedded lab (containers through a Docker-compatible API)"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    from probes.interrupts import sigterm_restore

    sigterm_restore()


@pytest.fixture(scope="session")
def mailprobe_lab() -> Iterator[Lab]:
    with _lab_starter() as start:
        yield start()


@contextmanager
def _lab_starter() -> Iterator[Callable[..., Lab]]:
    """A function that starts labs; every lab it started is stopped on leaving, all of them
    even when a signal arrives meanwhile (it is delivered when they are all stopped)."""
    from probes.interrupts import sigterm_unwinds
    from probes.lab.lab import Lab, stop_labs
    from probes.pytest_workers import worker_id, worker_labels

    started: list[Lab] = []

    def start(spec: LabSpec | None = None, **kwargs) -> Lab:
        sigterm_unwinds()
        kwargs.setdefault("labels", worker_labels(worker_id()))  # pytest -n: which worker's
        lab = Lab(spec, **kwargs)
        started.append(lab)
        lab.start()
        return lab

    try:
        yield start
    finally:
        stop_labs(started)


@pytest.fixture
def mailprobe_lab_factory() -> Iterator[Callable[..., Lab]]:
    with _lab_starter() as start:
        yield start


@pytest.fixture(scope="session")
def mailprobe_lab_factory_session() -> Iterator[Callable[..., Lab]]:
    """Like mailprobe_lab_factory, but the labs live until the end of the session."""
    with _lab_starter() as start:
        yield start


@pytest.fixture(scope="session")
def mailprobe_target(mailprobe_lab: Lab):
    """The Target `mailprobe check --lab` probes, for the session lab (its login in memory)."""
    from probes.lab.target import lab_target

    assert mailprobe_lab.info is not None
    return lab_target(mailprobe_lab.info)


@pytest.fixture
def mailprobe_run_probes(mailprobe_target):
    """`run(*globs, target=None, **target_changes) -> list[ProbeResult]`: the installed probes
    matching the globs, run as the CLI runs them (fresh DNS cache each call), against the
    session lab's Target or the one given, optionally changed (dataclasses.replace)."""
    import dataclasses

    from probes import registry
    from probes.net import Net
    from probes.runner import run_probes

    def run(*globs: str, target=None, **changes):
        chosen = dataclasses.replace(target or mailprobe_target, **changes)
        classes = registry.select_probes(registry.load_probes(), list(globs))
        return run_probes([cls() for cls in classes], chosen, Net.for_target(chosen))

    return run

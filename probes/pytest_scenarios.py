"""pytest collection of scenario files: `scenarios/**/*.yaml`, one test per YAML document.

A file is collected when one of its directories is named `scenarios` (except under
`scenarios/labs/`, which holds lab specs); a document with `collect: false` is left out (the
examples for real targets). Each test carries the marks of the scenario's `marks:` list, and
`lab` when it uses the embedded lab: `pytest -m "not lab"` skips those. Scenarios with
`lab: true` share one lab (default spec) for the session; each `lab_spec` scenario gets a lab
of its own, removed when the test ends. Under pytest-xdist (`-n N`) the session is the
worker's: each worker has its own shared labs; each test records the lab, flavour and worker
as JUnit properties; a spec that fixes its block waits for another worker's lab there
(probes.pytest_workers). A scenario that does not pass fails with its unmet
expectations, probe errors and a table of findings (code, severity, subject, message); a bad
scenario file is a collection error naming file, line and field.

probes.pytest_plugin imports the hooks from here (pytest11 entry point `mailprobe`); the module
also works on its own: `pytest -p probes.pytest_scenarios`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from probes.lab.lab import Lab, LabInfo
    from probes.lab.spec import LabSpec
    from probes.scenario import Scenario
    from probes.scenario_run import ScenarioOutcome

SCENARIO_DIR = "scenarios"
LAB_SPEC_DIR = "labs"  # scenarios/labs/: lab specs, not scenarios
SUFFIXES = (".yaml", ".yml")
# Under pytest-xdist, how long a scenario whose lab spec fixes its `block` waits for the block
# while another worker's lab holds it.
BLOCK_WAIT_S = 120.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lab: needs the embedded lab (containers through a Docker-compatible API)"
    )


def is_scenario_file(file_path: Path, rootpath: Path | None = None) -> bool:
    """True for `*.yaml`/`*.yml` below a `scenarios` directory (not below `scenarios/labs`)."""
    if file_path.suffix not in SUFFIXES:
        return False
    try:
        parts = file_path.relative_to(rootpath).parts if rootpath else file_path.parts
    except ValueError:
        parts = file_path.parts
    dirs = list(parts[:-1])
    if SCENARIO_DIR not in dirs:
        return False
    below = dirs[len(dirs) - dirs[::-1].index(SCENARIO_DIR) :]
    return LAB_SPEC_DIR not in below


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_scenario_file(file_path, parent.config.rootpath):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailed(Exception):
    """A scenario ran and did not pass; str() is the (redacted) explanation."""

    def __init__(self, outcome: ScenarioOutcome) -> None:
        from probes.scenario_run import describe

        self.outcome = outcome
        super().__init__(describe(outcome))


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        import os

        from probes.lab.flavours import FLAVOURS_ENV, flavours_from_env
        from probes.pytest_workers import serial_group
        from probes.scenario import flavour_cells, load_file

        xdist = self.config.pluginmanager.hasplugin("xdist")  # which declares xdist_group

        chosen = None
        if os.environ.get(FLAVOURS_ENV, "").strip():
            try:
                chosen = flavours_from_env(os.environ)
            except ValueError as exc:
                raise pytest.UsageError(str(exc)) from None
        for original in load_file(self.path):
            if not original.collect:
                continue
            for scenario, skip in flavour_cells(original):
                if chosen is not None and scenario.flavour not in (None, *chosen):
                    continue  # $MAILPROBE_LAB_FLAVOURS leaves this flavour out
                item = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
                for mark in scenario.marks:
                    item.add_marker(mark)
                if scenario.uses_lab:
                    item.add_marker("lab")
                if skip:
                    item.add_marker(pytest.mark.skip(reason=skip))
                group = serial_group(scenario) if xdist else None
                if group is not None:  # `--dist loadgroup` runs the group on one worker
                    item.add_marker(pytest.mark.xdist_group(group))
                yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> Any:
        from probes.errors import UsageError

        if isinstance(excinfo.value, UsageError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.outcome: ScenarioOutcome | None = None

    def runtest(self) -> None:
        from probes import scenario_run
        from probes.pytest_workers import worker_id, worker_labels

        scenario = self.scenario
        if scenario.lab_spec is not None:
            from probes.interrupts import sigterm_unwinds

            sigterm_unwinds()
            worker = worker_id()
            # Under xdist a scenario that fixes its block waits for another worker's lab there.
            wait_s = BLOCK_WAIT_S if worker else 0.0
            lab = start_lab(scenario.lab_spec_to_start(), worker_labels(worker), wait_s)
            try:
                assert lab.info is not None
                self._record_lab(lab.info)
                self.outcome = scenario_run.run_scenario(scenario, lab.info)
            finally:
                lab.stop()
        elif scenario.lab_name is not None:  # a running lab (`lab: {name: NAME}`)
            running = scenario_run.running_lab_of(scenario)
            self._record_lab(running)
            self.outcome = scenario_run.run_scenario(scenario, running)
        elif scenario.uses_lab:
            shared = _labs(self.config).shared(scenario.flavour)
            self._record_lab(shared)
            self.outcome = scenario_run.run_scenario(scenario, shared)
        else:
            self._record_lab(None)
            self.outcome = scenario_run.run_scenario(scenario)
        if self.outcome.status != 0:
            raise ScenarioFailed(self.outcome)

    def _record_lab(self, info: LabInfo | None) -> None:
        """The lab this test runs on, its flavour and the xdist worker, as JUnit properties
        (`--junitxml`; xdist carries them to the controller's report)."""
        from probes.pytest_workers import scenario_properties, worker_id

        lab_id = flavour = None
        if info is not None:
            lab_id, flavour = info.lab_id, f"{info.mta}+{info.mailbox_front}"
        self.user_properties.extend(scenario_properties(lab_id, flavour, worker_id()))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> Any:
        from probes.errors import UsageError

        if isinstance(excinfo.value, ScenarioFailed | UsageError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.line - 1, f"scenario {self.scenario.name}"


def start_lab(
    spec: LabSpec | None,
    labels: dict[str, str],
    wait_s: float = 0.0,
    *,
    poll_s: float = 0.5,
    sleep: Callable[[float], object] = time.sleep,
) -> Lab:
    """A started Lab of `spec`; when the spec fixes a block that is busy (BlockBusy: another
    lab there, say another xdist worker's), try again every `poll_s` for up to `wait_s`.
    A start that fails or is interrupted leaves nothing (Lab.start, and stop() here)."""
    from probes.lab.lab import BlockBusy, Lab

    deadline = time.monotonic() + wait_s
    while True:
        lab = Lab(spec, labels=labels)
        try:
            lab.start()
            return lab
        except BlockBusy as exc:
            lab.stop()
            if time.monotonic() + poll_s > deadline:
                if wait_s > 0:
                    exc.add_note(f"(waited {wait_s:g} s for the block to be free)")
                raise
        except BaseException:  # stopped whatever step of the start it cut
            lab.stop()
            raise
        sleep(poll_s)


class _Labs:
    """Labs for scenario tests: one shared default lab per flavour, and labs of their own for
    specs."""

    def __init__(self) -> None:
        self._shared: dict[str | None, Lab] = {}

    def shared(self, flavour: str | None = None) -> LabInfo:
        from probes.lab.flavours import DEFAULT_FLAVOUR, with_flavour
        from probes.lab.lab import Lab
        from probes.lab.spec import LabSpec

        key = None if flavour == DEFAULT_FLAVOUR else flavour
        if key not in self._shared:
            from probes.interrupts import sigterm_unwinds

            sigterm_unwinds()  # a SIGTERM tears the labs down as Ctrl-C does
            from probes.pytest_workers import worker_id, worker_labels

            labels = worker_labels(worker_id())
            lab = Lab(with_flavour(LabSpec(), key) if key else None, labels=labels)
            try:
                lab.start()
            except BaseException:
                lab.stop()
                raise
            self._shared[key] = lab
        info = self._shared[key].info
        assert info is not None
        return info

    def stop(self) -> None:
        from probes.lab.lab import stop_labs

        labs = list(self._shared.values())
        self._shared.clear()
        stop_labs(labs)  # all of them, even when a signal arrives meanwhile


_LABS_KEY = pytest.StashKey[_Labs]()


def _labs(config: pytest.Config) -> _Labs:
    labs = config.stash.get(_LABS_KEY, None)
    if labs is None:
        labs = _Labs()
        config.stash[_LABS_KEY] = labs
        config.add_cleanup(labs.stop)
    return labs

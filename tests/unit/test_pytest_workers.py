"""pytest-xdist workers (probes.pytest_workers): the worker id, the labels and JUnit properties
that name it, the groups of scenarios that must not run on two workers at once; and a real
offline `pytest -n 2 --junitxml` over scenarios (no lab: tests/tiny_dns.py on loopback)."""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from tiny_dns import TinyDns

import probes
from probes.lab.containers import LABEL_INSTANCE, LABEL_LAB, LABEL_WORKER, KnotContainer
from probes.lab.spec import LabSpec
from probes.pytest_workers import (
    PROPERTY_FLAVOUR,
    PROPERTY_LAB,
    PROPERTY_WORKER,
    scenario_properties,
    serial_group,
    worker_id,
    worker_labels,
)
from probes.scenario import load_text

pytest_plugins = ["pytester"]

SOURCE_ROOT = Path(probes.__file__).resolve().parents[1]


def scenarios(text: str):
    return load_text(textwrap.dedent(text), "s.yaml", ["dns.mx", "dns.spf", "smtp.relay"])


def test_worker_id_is_xdists_worker_or_none():
    assert worker_id({"PYTEST_XDIST_WORKER": "gw3"}) == "gw3"
    assert worker_id({"PYTEST_XDIST_WORKER": "gw12"}) == "gw12"
    assert worker_id({}) is None
    assert worker_id({"PYTEST_XDIST_WORKER": ""}) is None
    assert worker_id({"PYTEST_XDIST_WORKER": "master"}) is None
    assert worker_id({"PYTEST_XDIST_WORKER": "gw1,mailprobe.lab=x"}) is None


def test_worker_labels_name_the_worker_only_under_xdist():
    assert worker_labels("gw1") == {LABEL_WORKER: "gw1"} == {"mailprobe.worker": "gw1"}
    assert worker_labels(None) == {}


def test_extra_labels_reach_the_container_and_never_replace_the_labs_own(tmp_path):
    spec = LabSpec().with_block("127.9.9.0/24")
    container = KnotContainer("img", spec, tmp_path, "127-9-9", instance="1-0a0b0c0d")
    container.with_labels({LABEL_WORKER: "gw1", LABEL_LAB: "127-1-1", LABEL_INSTANCE: "2-x"})
    # what testcontainers passes to the engine when it creates the container
    assert container._kwargs["labels"] == {
        "mailprobe.lab": "127-9-9",
        "mailprobe.role": "dns",
        "mailprobe.instance": "1-0a0b0c0d",
        "mailprobe.worker": "gw1",
    }


def test_scenario_properties_leave_out_what_there_is_not():
    assert scenario_properties("127-64-1", "exim+dovecot", "gw0") == [
        (PROPERTY_LAB, "127-64-1"),
        (PROPERTY_FLAVOUR, "exim+dovecot"),
        (PROPERTY_WORKER, "gw0"),
    ]
    assert scenario_properties(None, None, "gw1") == [("mailprobe.worker", "gw1")]
    assert scenario_properties("127-64-1", "postfix+dovecot", None) == [
        ("mailprobe.lab", "127-64-1"),
        ("mailprobe.flavour", "postfix+dovecot"),
    ]
    assert scenario_properties(None, None, None) == []


def test_only_a_fixed_block_or_a_running_lab_is_a_serial_group():
    found = scenarios(
        """\
        name: own-block
        lab_spec: {block: 127.100.1.0/24}
        probes: [dns.mx]
        ---
        name: running
        lab: {name: mine}
        probes: [dns.mx]
        ---
        name: shared
        lab: true
        probes: [dns.mx]
        ---
        name: random-block
        lab_spec: {domain: other.test}
        probes: [dns.mx]
        ---
        name: no-lab
        target: {domain: example.com}
        probes: [dns.mx]
        """
    )
    groups = {s.name: serial_group(s) for s in found}
    assert groups == {
        "own-block": "mailprobe-block-127-100-1",
        "running": "mailprobe-lab-mine",
        "shared": None,
        "random-block": None,
        "no-lab": None,
    }


@pytest.fixture
def offline_tree(pytester: pytest.Pytester, monkeypatch) -> Iterator[pytest.Pytester]:
    """Four scenarios that need no lab: dns.spf of a domain that tests/tiny_dns.py serves on
    loopback."""
    # The subprocess imports this checkout's probes (a worktree's, not only the installed one).
    path = os.pathsep.join(p for p in (str(SOURCE_ROOT), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    (pytester.path / "scenarios").mkdir()
    with TinyDns({("example.test", "TXT"): ['"v=spf1 ip4:192.0.2.1 -all"']}) as dns:
        docs = [
            f"name: spf-{n}\ntarget:\n  domain: example.test\n  resolver: {dns.address}\n"
            "probes: [dns.spf]\nexpect: {max_severity: fail, outcomes: COMPLETED}\n"
            for n in range(4)
        ]
        (pytester.path / "scenarios" / "spf.yaml").write_text("---\n".join(docs))
        yield pytester


def test_offline_scenarios_under_two_workers_merge_into_one_junit_report(offline_tree):
    pytest.importorskip("xdist")
    junit = offline_tree.path / "junit.xml"
    result = offline_tree.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--junitxml", str(junit), "scenarios"
    )
    assert result.ret == 0, result.outlines
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert Counter(c.get("name") for c in cases) == Counter(f"spf-{n}" for n in range(4))
    workers = {
        p.get("value")
        for c in cases
        for p in c.iter("property")
        if p.get("name") == PROPERTY_WORKER
    }
    assert workers == {"gw0", "gw1"}
    assert not [p for c in cases for p in c.iter("property") if p.get("name") == PROPERTY_LAB]


def test_scenarios_sharing_a_block_or_a_running_lab_get_an_xdist_group(offline_tree):
    pytest.importorskip("xdist")
    (offline_tree.path / "scenarios" / "serial.yaml").write_text(
        "name: block-a\nlab_spec: {block: 127.100.1.0/24}\nprobes: [dns.mx]\n---\n"
        "name: block-b\nlab_spec: {block: 127.100.1.0/24}\nprobes: [dns.mx]\n---\n"
        "name: on-mine\nlab: {name: mine}\nprobes: [dns.mx]\n"
    )
    result = offline_tree.runpytest_subprocess(
        "-p", "no:cacheprovider", "--collect-only", "-q", "-m", "xdist_group", "scenarios"
    )
    assert [line for line in result.outlines if "::" in line] == [
        "scenarios/serial.yaml::block-a",
        "scenarios/serial.yaml::block-b",
        "scenarios/serial.yaml::on-mine",
    ]
    # Without xdist there is no such mark (--strict-markers would refuse an unknown one).
    result = offline_tree.runpytest_subprocess(
        "-p",
        "no:xdist",
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        "--collect-only",
        "-q",
        "scenarios",
    )
    assert result.ret == 0, result.outlines
    assert len([line for line in result.outlines if "::" in line]) == 7  # 4 + 3


class FakeLab:
    """Stands in for probes.lab.lab.Lab: start() raises the next of `plan` (None: starts)."""

    plan: ClassVar[list[BaseException | None]] = []
    made: ClassVar[list[FakeLab]] = []

    def __init__(self, spec, *, labels):
        self.spec, self.labels, self.stops, self.started = spec, labels, 0, False
        FakeLab.made.append(self)

    def start(self):
        failure = FakeLab.plan.pop(0)
        if failure is not None:
            raise failure
        self.started = True

    def stop(self):
        self.stops += 1


@pytest.fixture
def fake_lab(monkeypatch):
    import probes.lab.lab as lab_module

    FakeLab.plan, FakeLab.made = [], []
    monkeypatch.setattr(lab_module, "Lab", FakeLab)
    return FakeLab


def test_start_lab_waits_for_a_busy_fixed_block_and_stops_each_try(fake_lab):
    from probes.lab.lab import BlockBusy
    from probes.pytest_scenarios import start_lab

    fake_lab.plan = [BlockBusy("busy"), BlockBusy("busy"), None]
    slept = []
    spec = LabSpec(block="127.100.1.0/24")
    lab = start_lab(spec, {"mailprobe.worker": "gw1"}, wait_s=60, poll_s=0.5, sleep=slept.append)
    assert lab is fake_lab.made[2] and lab.started and lab.stops == 0
    assert [made.stops for made in fake_lab.made[:2]] == [1, 1]
    assert slept == [0.5, 0.5]
    assert all(made.labels == {"mailprobe.worker": "gw1"} for made in fake_lab.made)


def test_start_lab_gives_up_after_the_wait_and_never_retries_other_failures(fake_lab):
    from probes.lab.lab import BlockBusy, LabStartError
    from probes.pytest_scenarios import start_lab

    fake_lab.plan = [BlockBusy("busy")]
    with pytest.raises(BlockBusy):  # no wait outside xdist
        start_lab(None, {}, wait_s=0, sleep=pytest.fail)
    fake_lab.plan = [BlockBusy("busy")] * 50
    with pytest.raises(BlockBusy) as excinfo:
        start_lab(None, {}, wait_s=0.3, poll_s=0.1)
    assert excinfo.value.__notes__ == ["(waited 0.3 s for the block to be free)"]
    assert 2 <= len(fake_lab.made) - 1 <= 4  # about wait_s / poll_s tries
    fake_lab.plan, fake_lab.made = [LabStartError("dovecot died")], []
    with pytest.raises(LabStartError, match="dovecot died"):
        start_lab(None, {}, wait_s=60, sleep=pytest.fail)
    fake_lab.plan, fake_lab.made = [KeyboardInterrupt()], []
    with pytest.raises(KeyboardInterrupt):
        start_lab(None, {}, wait_s=60, sleep=pytest.fail)
    assert [made.stops for made in fake_lab.made] == [1]

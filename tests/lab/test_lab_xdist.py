"""Scenario suites under pytest-xdist: a real `pytest -n 2 --junitxml` subprocess over four
small scenarios on one lab flavour (the first of $MAILPROBE_LAB_FLAVOURS, else exim+dovecot).

Each worker runs its own session, so its own shared lab: the scenarios with `lab: true` on one
worker share one lab, the other worker's lab is another block, and the scenario with a lab spec
has a lab of its own. The controller writes the one JUnit report (every test case once, each
with the lab, flavour and worker it ran on as properties); nothing of any lab is left after.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

import probes
from probes.lab.containers import list_lab_containers
from probes.lab.flavours import DEFAULT_FLAVOUR, FLAVOURS_ENV, flavours_from_env
from probes.lab.lab import LAB_DIR_PREFIX, LOCK_DIR
from probes.pytest_workers import PROPERTY_FLAVOUR, PROPERTY_LAB, PROPERTY_WORKER

pytestmark = pytest.mark.lab

pytest.importorskip("xdist")

# The package under test (a worktree's own, not only the installed one) for the subprocess.
SOURCE_ROOT = Path(probes.__file__).resolve().parents[1]

SHARED = ("xdist-spf-refuses-unauthorized", "xdist-spf-authorizes-client-a", "xdist-no-relay")
OWN = "xdist-own-lab-open-relay"

SCENARIOS = """\
name: xdist-spf-refuses-unauthorized
lab: true
lab_flavours: [{flavour}]
probes: [dns.spf]
target:
  sending_ips: ["{{lab.unauthorized}}"]
expect:
  codes: [SPF_IP_NOT_AUTHORIZED]
  max_severity: fail
---
name: xdist-spf-authorizes-client-a
lab: true
lab_flavours: [{flavour}]
probes: [dns.spf]
target:
  sending_ips: ["{{lab.authorized}}"]
expect:
  absent: [SPF_IP_NOT_AUTHORIZED]
  outcomes: COMPLETED
---
name: xdist-no-relay
lab: true
lab_flavours: [{flavour}]
probes: [smtp.relay]
expect:
  absent: [SMTP_OPEN_RELAY]
  outcomes: COMPLETED
---
name: xdist-own-lab-open-relay
lab_flavours: [{flavour}]
lab_spec:
  exim:
    open_relay: true
probes: [smtp.relay]
expect:
  codes: [SMTP_OPEN_RELAY]
  max_severity: fail
  outcomes: COMPLETED
"""


FIXED_BLOCK = """\
name: xdist-fixed-{name}
lab_flavours: [{flavour}]
lab_spec:
  block: {block}
probes: [smtp.relay]
expect:
  absent: [SMTP_OPEN_RELAY]
  outcomes: COMPLETED
"""


def chosen_flavour() -> str:
    if os.environ.get(FLAVOURS_ENV, "").strip():
        return flavours_from_env(os.environ)[0]
    return DEFAULT_FLAVOUR


def run_pytest_n2(tmp_path: Path, scenarios: str, flavour: str) -> tuple[ET.Element, float]:
    """`pytest -n 2 --junitxml` over `scenarios` (one YAML file) in a subprocess: all must
    pass; the JUnit root and the wall time. The subprocess gets its own state directory."""
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "parallel.yaml").write_text(scenarios)
    junit = tmp_path / "junit.xml"
    env = {
        **os.environ,
        FLAVOURS_ENV: flavour,
        "MAILPROBE_STATE_DIR": str(tmp_path / "state"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(SOURCE_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    env.pop("PYTEST_XDIST_WORKER", None)  # should this test itself run under xdist
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "--timeout",
            "150",
            "--junitxml",
            str(junit),
            "-q",
            "scenarios",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return ET.parse(junit).getroot(), elapsed


def properties(root: ET.Element) -> dict[str, dict[str, str]]:
    """{scenario name: {property: value}} of every test case (its name without [flavour])."""
    return {
        (case.get("name") or "").split("[")[0]: {
            p.get("name") or "": p.get("value") or "" for p in case.iter("property")
        }
        for case in root.iter("testcase")
    }


def assert_nothing_left(lab_ids: set[str], state: Path) -> None:
    """No container of those labs, no lab directory, no lock file, nothing in the state dir."""
    tmp = Path(tempfile.gettempdir())
    for lab_id in lab_ids:
        assert list_lab_containers(lab_id) == [], lab_id
        assert list(tmp.glob(f"{LAB_DIR_PREFIX}{lab_id}-*")) == [], lab_id
        assert not (LOCK_DIR / f"{lab_id}.lock").exists(), lab_id
    assert not state.exists() or not any(state.rglob("*")), sorted(state.rglob("*"))


def test_scenarios_run_on_two_workers_each_with_its_own_lab(tmp_path):
    flavour = chosen_flavour()
    root, elapsed = run_pytest_n2(tmp_path, SCENARIOS.format(flavour=flavour), flavour)

    # One report, from the controller: every scenario test case exactly once, all passed.
    cases = list(root.iter("testcase"))
    names = Counter(case.get("name") for case in cases)
    assert names == Counter(f"{name}[{flavour}]" for name in (*SHARED, OWN)), names
    suite = next(root.iter("testsuite"))
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "0", "0")
    assert all(case.find("properties") is not None for case in cases)
    props = properties(root)
    assert {p[PROPERTY_FLAVOUR] for p in props.values()} == {flavour}

    # Both workers ran scenarios; each has one shared lab (its session's), on its own block;
    # the lab-spec scenario had a lab of its own.
    workers = {p[PROPERTY_WORKER] for p in props.values()}
    assert workers == {"gw0", "gw1"}, props
    shared_by_worker: dict[str, set[str]] = {}
    for name in SHARED:
        shared_by_worker.setdefault(props[name][PROPERTY_WORKER], set()).add(
            props[name][PROPERTY_LAB]
        )
    assert all(len(labs) == 1 for labs in shared_by_worker.values()), shared_by_worker
    shared_labs = {lab for labs in shared_by_worker.values() for lab in labs}
    assert len(shared_labs) == len(shared_by_worker), shared_by_worker  # one per worker
    own_lab = props[OWN][PROPERTY_LAB]
    assert own_lab not in shared_labs, props
    assert_nothing_left(shared_labs | {own_lab}, tmp_path / "state")
    print(f"pytest -n 2, 4 scenarios on {flavour}: {elapsed:.1f} s, labs {sorted(shared_labs)}")


def test_two_workers_share_a_fixed_block_one_after_the_other(tmp_path):
    # Both scenarios fix the same block, and each worker starts one at once: the second waits
    # for the first one's lab to go (BlockBusy) instead of failing.
    flavour = chosen_flavour()
    rng = random.Random()
    block = f"127.{rng.randint(64, 254)}.{rng.randint(0, 255)}.0/24"
    text = "---\n".join(
        FIXED_BLOCK.format(name=name, flavour=flavour, block=block) for name in ("one", "two")
    )
    root, elapsed = run_pytest_n2(tmp_path, text, flavour)
    props = properties(root)
    assert set(props) == {"xdist-fixed-one", "xdist-fixed-two"}
    assert {p[PROPERTY_WORKER] for p in props.values()} == {"gw0", "gw1"}, props
    (lab_id,) = {p[PROPERTY_LAB] for p in props.values()}
    assert lab_id == block.removesuffix(".0/24").replace(".", "-")
    assert_nothing_left({lab_id}, tmp_path / "state")
    print(f"pytest -n 2, 2 scenarios on block {block}: {elapsed:.1f} s")

"""Scenario suites under pytest-xdist: a real `pytest -n 2 --junitxml` subprocess over small
scenarios (and tests of the `mailprobe_lab` fixture) on one lab flavour (the first of
$MAILPROBE_LAB_FLAVOURS, else exim+dovecot).

Each worker runs its own session, so its own session labs: the scenarios with `lab: true` on
one worker share one lab, as do its `mailprobe_lab` tests; the other worker's are on other
blocks; a scenario with a lab spec has a lab of its own. The controller writes the one JUnit
report (every test case once, with the lab, flavour and worker it ran on as properties);
nothing of any lab is left after. Two scenarios that fix the same block, started at once on
two workers, run one after the other.

xdist hands out the first 2 x 2 items in order (two consecutive ones to each worker) and the
rest as workers ask, so the files are ordered to put one fixture test and one shared-lab
scenario on each worker for sure.
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
FIXTURE_TESTS = ("test_fixture_a", "test_fixture_b", "test_fixture_c")

# Records the session lab of its worker (the plugin's fixture) as the scenarios do.
FIXTURE_TEST = """\
import os


def test_session_lab(mailprobe_lab, record_property):
    record_property("mailprobe.lab", mailprobe_lab.lab_id)
    record_property("mailprobe.worker", os.environ["PYTEST_XDIST_WORKER"])
"""

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


def run_pytest_n2(tmp_path: Path, files: dict[str, str], flavour: str) -> tuple[ET.Element, float]:
    """`pytest -n 2 --junitxml` in a subprocess over `files` ({relative path: text}), in that
    order: all must pass; the JUnit root and the wall time. Its own state directory."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
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
            *(sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider"),
            *("--rootdir", str(tmp_path), "--timeout", "150", "--junitxml", str(junit), "-q"),
            *files,
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


def case_name(case: ET.Element) -> str:
    """A scenario's name without [flavour]; a Python test's module."""
    classname, name = case.get("classname") or "", case.get("name") or ""
    return name.split("[")[0] if classname.startswith("scenarios.") else classname


def properties(root: ET.Element) -> dict[str, dict[str, str]]:
    """{test name: {property: value}} of every test case."""
    return {
        case_name(case): {p.get("name") or "": p.get("value") or "" for p in case.iter("property")}
        for case in root.iter("testcase")
    }


def labs_by_worker(props: dict[str, dict[str, str]], names) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name in names:
        found.setdefault(props[name][PROPERTY_WORKER], set()).add(props[name][PROPERTY_LAB])
    return found


def assert_nothing_left(lab_ids: set[str], state: Path) -> None:
    """No container of those labs, no lab directory, no lock file, nothing in the state dir,
    no report or history (reports/ under the run's directory, which holds `state`)."""
    tmp = Path(tempfile.gettempdir())
    for lab_id in lab_ids:
        assert list_lab_containers(lab_id) == [], lab_id
        assert list(tmp.glob(f"{LAB_DIR_PREFIX}{lab_id}-*")) == [], lab_id
        assert not (LOCK_DIR / f"{lab_id}.lock").exists(), lab_id
    assert not state.exists() or not any(state.rglob("*")), sorted(state.rglob("*"))
    assert not (state.parent / "reports").exists()


def test_scenarios_and_session_fixtures_are_per_worker_and_the_report_is_one(tmp_path):
    flavour = chosen_flavour()
    docs = SCENARIOS.format(flavour=flavour).split("---\n")
    files = {  # items 0-1 go to gw0, 2-3 to gw1 (see the module's docstring)
        "tests/test_fixture_a.py": FIXTURE_TEST,
        "scenarios/first.yaml": docs[0],
        "tests/test_fixture_b.py": FIXTURE_TEST,
        "scenarios/second.yaml": docs[1],
        "tests/test_fixture_c.py": FIXTURE_TEST,
        "scenarios/rest.yaml": "---\n".join(docs[2:]),
    }
    root, elapsed = run_pytest_n2(tmp_path, files, flavour)

    # One report, from the controller: every test case exactly once, all passed.
    cases = list(root.iter("testcase"))
    assert Counter(case_name(case) for case in cases) == Counter(
        [*SHARED, OWN, *(f"tests.{name}" for name in FIXTURE_TESTS)]
    )
    suite = next(root.iter("testsuite"))
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "0", "0")
    assert all(case.find("properties") is not None for case in cases)
    props = properties(root)
    scenarios = [*SHARED, OWN]
    assert {props[name][PROPERTY_FLAVOUR] for name in scenarios} == {flavour}

    # Each worker has one shared lab for its `lab: true` scenarios and one `mailprobe_lab`,
    # on blocks of their own; the lab-spec scenario had a lab of its own.
    shared = labs_by_worker(props, SHARED)
    fixture = labs_by_worker(props, [f"tests.{name}" for name in FIXTURE_TESTS])
    assert set(shared) == set(fixture) == {"gw0", "gw1"}, props
    for per_worker in (shared, fixture):
        assert all(len(labs) == 1 for labs in per_worker.values()), per_worker
    lab_ids = [
        lab for per_worker in (shared, fixture) for labs in per_worker.values() for lab in labs
    ]
    lab_ids.append(props[OWN][PROPERTY_LAB])
    assert len(set(lab_ids)) == len(lab_ids) == 5, props  # 2 shared, 2 session, 1 own
    assert_nothing_left(set(lab_ids), tmp_path / "state")
    print(f"pytest -n 2, 4 scenarios + 3 fixture tests on {flavour}: {elapsed:.1f} s")


def test_two_workers_share_a_fixed_block_one_after_the_other(tmp_path):
    # Both scenarios fix the same block, and each worker starts one at once: the second waits
    # for the first one's lab to go (BlockBusy) instead of failing.
    flavour = chosen_flavour()
    rng = random.Random()
    block = f"127.{rng.randint(64, 254)}.{rng.randint(0, 255)}.0/24"
    text = "---\n".join(
        FIXED_BLOCK.format(name=name, flavour=flavour, block=block) for name in ("one", "two")
    )
    root, elapsed = run_pytest_n2(tmp_path, {"scenarios/fixed.yaml": text}, flavour)
    props = properties(root)
    assert set(props) == {"xdist-fixed-one", "xdist-fixed-two"}
    assert {p[PROPERTY_WORKER] for p in props.values()} == {"gw0", "gw1"}, props
    (lab_id,) = {p[PROPERTY_LAB] for p in props.values()}
    assert lab_id == block.removesuffix(".0/24").replace(".", "-")
    assert_nothing_left({lab_id}, tmp_path / "state")
    print(f"pytest -n 2, 2 scenarios on block {block}: {elapsed:.1f} s")

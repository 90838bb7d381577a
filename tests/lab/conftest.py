"""Fixtures for the DNS probe lab tests: one lab whose records tests change live.

- `dns_lab`: a lab of its own (the session's `mailprobe_lab` stays untouched), serving the
  lab domain, its reverse zones and two extra zones, REPORTS_ZONE and OTHER_ZONE, for
  report receivers and foreign domains.
- `zone`: a ZoneEditor on that lab; every record a test changes is put back afterwards.
- `lab_target(**overrides)`: the Target `mailprobe check --lab` builds for that lab
  (probes.lab.target), without its login or message options: the DNS tests log in nowhere.
- `run_probe(probe, target=None)`: one probe run with a fresh Net (fresh DNS cache), as the
  CLI runs it: returns the ProbeResult.

The flavour matrix: a module that sets `FLAVOURED = True` runs every test once per lab flavour
(probes.lab.flavours.MATRIX, or the comma-separated list in $MAILPROBE_LAB_FLAVOURS), with
- `flavour`: "mta+front" of the current cell (elsewhere: the default, exim+dovecot);
- `flavoured(spec)`: the spec in the current flavour; a spec the flavour cannot express skips
  the test, naming what (probes.lab.flavours.unsupported);
- `flavour_lab`: the correct lab of the current flavour (the session lab for exim+dovecot);
- `flavour_labs(spec)`: start a lab of that spec in the current flavour; every lab it started is
  removed when the module is done with the flavour.
"""

from __future__ import annotations

import os

import pytest

from probes.lab.flavours import (
    DEFAULT_FLAVOUR,
    flavours_from_env,
    unsupported_reason,
    with_flavour,
)
from probes.lab.lab import stop_labs
from probes.lab.spec import LabSpec, MtaStsSpec
from probes.lab.target import lab_target as build_lab_target
from probes.lab.zone_edit import ZoneEditor
from probes.model import MessageOptions, Target, Timeouts
from probes.net import Net
from probes.runner import Redactor, run_one

REPORTS_ZONE = "reports.test"
OTHER_ZONE = "other.test"

# Without the lab's own MTA-STS record: the tests here publish their own `_mta-sts` records.
DNS_LAB_SPEC = LabSpec(
    extra_zones={REPORTS_ZONE: (), OTHER_ZONE: ()}, mta_sts=MtaStsSpec(publish=False)
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.module, "FLAVOURED", False) and "flavour" in metafunc.fixturenames:
        try:
            chosen = flavours_from_env(os.environ)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        metafunc.parametrize("flavour", chosen, scope="module")


@pytest.fixture(scope="module")
def flavour() -> str:
    """The lab flavour of a module outside the matrix (FLAVOURED modules are parametrized)."""
    return DEFAULT_FLAVOUR


@pytest.fixture(scope="module")
def flavoured(flavour):
    def apply(spec: LabSpec | None = None) -> LabSpec:
        spec = with_flavour(spec or LabSpec(), flavour)
        reason = unsupported_reason(spec)
        if reason:
            pytest.skip(f"{flavour} cannot express this lab: {reason}")
        return spec

    return apply


@pytest.fixture(scope="module")
def flavour_lab(flavour, flavoured, request):
    """The correct lab of the current flavour (the session lab for the default flavour)."""
    if flavour == DEFAULT_FLAVOUR:
        yield request.getfixturevalue("mailprobe_lab")
        return
    factory = request.getfixturevalue("mailprobe_lab_factory_session")
    lab = factory(flavoured())
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def flavour_labs(flavoured, mailprobe_lab_factory_session):
    started = []

    def start(spec: LabSpec | None = None):
        lab = mailprobe_lab_factory_session(flavoured(spec))
        started.append(lab)
        return lab

    yield start
    stop_labs(started)  # in parallel, all of them even on Ctrl-C (Lab.stop is safe to repeat)


@pytest.fixture(scope="session")
def dns_lab(mailprobe_lab_factory_session):
    return mailprobe_lab_factory_session(DNS_LAB_SPEC)


@pytest.fixture
def zone(dns_lab):
    info = dns_lab.info
    with ZoneEditor(info.resolver, [info.domain, REPORTS_ZONE, OTHER_ZONE]) as editor:
        yield editor


@pytest.fixture
def lab_target(dns_lab):
    info = dns_lab.info

    def build(**overrides) -> Target:
        changes = {"login": None, "message": MessageOptions(), **overrides}
        return build_lab_target(info, timeouts=Timeouts(dns=2.0, probe=30.0), **changes)

    return build


@pytest.fixture
def run_probe(lab_target):
    def run(probe, target: Target | None = None):
        target = target or lab_target()
        return run_one(probe, target, Net.for_target(target), Redactor())

    return run

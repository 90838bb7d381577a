"""Fixtures for the DNS probe lab tests: one lab whose records tests change live.

- `dns_lab`: a lab of its own (the session's `mailprobe_lab` stays untouched), serving the
  lab domain, its reverse zones and two extra zones, REPORTS_ZONE and OTHER_ZONE, for
  report receivers and foreign domains.
- `zone`: a ZoneEditor on that lab; every record a test changes is put back afterwards.
- `lab_target(**overrides)`: the Target `mailprobe check --lab` would build for that lab.
- `run_probe(probe, target=None)`: one probe run with a fresh Net (fresh DNS cache), as the
  CLI runs it: returns the ProbeResult.
"""

from __future__ import annotations

import dataclasses

import pytest

from probes.lab.spec import LabSpec
from probes.lab.zone_edit import ZoneEditor
from probes.model import Target, Timeouts
from probes.net import Net
from probes.runner import Redactor, run_one

REPORTS_ZONE = "reports.test"
OTHER_ZONE = "other.test"

DNS_LAB_SPEC = LabSpec(extra_zones={REPORTS_ZONE: (), OTHER_ZONE: ()})


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
        target = Target(
            domain=info.domain,
            mx_hosts=(f"mx.{info.domain}",),
            submission_hosts=(f"mx.{info.domain}", f"outbound.{info.domain}"),
            mailbox_hosts=(f"mailbox.{info.domain}",),
            selectors=tuple(info.dkim),
            sending_ips=(info.client_ips["authorized"], info.hosts["outbound"]),
            resolver=info.resolver,
            ca_file=info.ca_file,
            dkim_keys=tuple(info.dkim.items()),
            timeouts=Timeouts(dns=2.0, probe=30.0),
        )
        return dataclasses.replace(target, **overrides)

    return build


@pytest.fixture
def run_probe(lab_target):
    def run(probe, target: Target | None = None):
        target = target or lab_target()
        return run_one(probe, target, Net.for_target(target), Redactor())

    return run

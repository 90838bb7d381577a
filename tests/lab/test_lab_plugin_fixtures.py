"""The pytest plugin's fixtures for users' own tests: the lab's Target and a probe runner."""

from __future__ import annotations

import os

import pytest

from probes.model import Outcome, Severity

pytestmark = pytest.mark.lab


def test_target_fixture_points_at_the_session_lab(mailprobe_lab, mailprobe_target):
    info = mailprobe_lab.info
    assert mailprobe_target.domain == info.domain
    assert mailprobe_target.resolver == info.resolver
    # The lab's login travels in memory, in the Target; never in the process environment.
    assert mailprobe_target.credentials_ref is None
    assert mailprobe_target.login.user == info.user
    assert "MAILPROBE_LAB_CREDENTIALS" not in os.environ
    assert not any(info.password in v for v in os.environ.values())
    assert info.password not in repr(mailprobe_target)
    assert info.password not in str(mailprobe_target.to_json())


def test_run_probes_fixture_runs_the_matching_probes_against_the_lab(mailprobe_run_probes):
    results = mailprobe_run_probes("dns.mx", "smtp.relay")
    assert [r.probe_id for r in results] == ["dns.mx", "smtp.relay"]
    assert all(r.outcome is Outcome.COMPLETED for r in results)
    assert not [f for r in results for f in r.findings if f.severity is Severity.FAIL]


def test_run_probes_fixture_takes_target_changes(mailprobe_run_probes):
    (result,) = mailprobe_run_probes("smtp.mx", mx_hosts=("mailbox.example.test",))
    assert {f.code for f in result.findings} == {"PORT_CLOSED"}

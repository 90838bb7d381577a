"""smtp.swaks against the embedded lab, with the real swaks (skipped when it is not installed)."""

from __future__ import annotations

import base64

import pytest

from probes.checks.smtp_swaks import SmtpSwaks
from probes.lab.spec import LabSpec, TlsSpec
from probes.lab.target import lab_target as build_lab_target
from probes.model import Outcome, Severity, Target, Timeouts
from probes.net import Net
from probes.net.swaks import find_swaks
from probes.runner import Redactor, run_one

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(find_swaks() is None, reason="swaks is not installed"),
]

FLAVOURED = True  # every test runs on every lab flavour (tests/lab/conftest.py)
CRED_ENV = "MAILPROBE_LAB_SWAKS_CRED"


@pytest.fixture(scope="module")
def good_lab(flavour_labs):
    return flavour_labs(LabSpec())


@pytest.fixture(scope="module")
def unreadable_key_lab(flavour_labs):
    return flavour_labs(LabSpec(tls=TlsSpec(key_readable=False)))


def lab_target(lab, **overrides) -> Target:
    """The lab's Target (probes.lab.target) on its mx, without a login unless given."""
    changes = {
        "submission_hosts": (f"mx.{lab.info.domain}",),
        "mailbox_hosts": (),
        "login": None,
        **overrides,
    }
    timeouts = Timeouts(connect=5.0, io=10.0, dns=2.0, probe=30.0)
    return build_lab_target(lab.info, timeouts=timeouts, **changes)


def run(lab, target: Target):
    return run_one(SmtpSwaks(), target, Net.for_target(target), Redactor([lab.info.password]))


def with_credentials(monkeypatch, lab, password: str) -> str:
    monkeypatch.setenv(CRED_ENV, f"{lab.info.user}:{password}")
    return f"env:{CRED_ENV}"


def by_subject(result) -> dict[str, list[tuple[str, Severity]]]:
    out: dict[str, list[tuple[str, Severity]]] = {}
    for f in result.findings:
        out.setdefault(f.subject, []).append((f.code, f.severity))
    return out


def assert_password_hidden(result, lab) -> None:
    info = lab.info
    forms = [
        info.password,
        base64.b64encode(info.password.encode()).decode(),
        base64.b64encode(f"\0{info.user}\0{info.password}".encode()).decode(),
    ]
    for f in result.findings:
        text = " ".join([f.message, f.reproduce or "", *f.evidence.keys(), *f.evidence.values()])
        for form in forms:
            assert form not in text
    assert info.password not in (result.error_detail or "")


def test_correct_lab_gives_only_info_findings_on_587_and_25(good_lab):
    result = run(good_lab, lab_target(good_lab))
    assert result.outcome is Outcome.COMPLETED
    assert by_subject(result) == {
        "mx.example.test:587": [("SWAKS_TRANSACTION_OK", Severity.INFO)],
        "mx.example.test:25": [("SWAKS_TRANSACTION_OK", Severity.INFO)],
    }
    mx = next(f for f in result.findings if f.subject == "mx.example.test:25")
    assert mx.evidence["stages_passed"].split(",") == [
        "CONNECT",
        "BANNER",
        "EHLO",
        "STARTTLS",
        "TLS",
        "EHLO_TLS",
        "MAIL",
        "RCPT",
    ]
    assert mx.evidence["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert mx.evidence["address"] == good_lab.info.hosts["mx"]


def test_configured_credentials_pass_auth(good_lab, monkeypatch):
    ref = with_credentials(monkeypatch, good_lab, good_lab.info.password)
    result = run(good_lab, lab_target(good_lab, credentials_ref=ref))
    assert result.outcome is Outcome.COMPLETED
    [submission] = [f for f in result.findings if f.subject == "mx.example.test:587"]
    assert (submission.code, submission.severity) == ("SWAKS_TRANSACTION_OK", Severity.INFO)
    assert submission.evidence["stages_passed"].split(",")[-1] == "AUTH"
    assert '--auth-password "$MAILPROBE_PASSWORD"' in (submission.reproduce or "")
    assert_password_hidden(result, good_lab)


def test_wrong_password_is_auth_failed(good_lab, monkeypatch):
    ref = with_credentials(monkeypatch, good_lab, "not-the-password")
    result = run(good_lab, lab_target(good_lab, credentials_ref=ref))
    assert by_subject(result)["mx.example.test:587"] == [("AUTH_FAILED", Severity.FAIL)]
    assert by_subject(result)["mx.example.test:25"] == [("SWAKS_TRANSACTION_OK", Severity.INFO)]
    assert_password_hidden(result, good_lab)
    for f in result.findings:
        assert "not-the-password" not in " ".join([*f.evidence.values(), f.reproduce or ""])


def test_unreadable_key_is_starttls_failed_on_both_ports(unreadable_key_lab, monkeypatch):
    ref = with_credentials(monkeypatch, unreadable_key_lab, unreadable_key_lab.info.password)
    result = run(unreadable_key_lab, lab_target(unreadable_key_lab, credentials_ref=ref))
    assert by_subject(result) == {
        "mx.example.test:587": [("STARTTLS_FAILED", Severity.FAIL)],
        "mx.example.test:25": [("STARTTLS_FAILED", Severity.FAIL)],
    }
    for f in result.findings:
        assert f.evidence["reply_code"] == "454"
    assert_password_hidden(result, unreadable_key_lab)


def test_without_the_lab_ca_the_chain_does_not_verify(good_lab):
    result = run(good_lab, lab_target(good_lab, ca_file=None))
    for f in result.findings:
        assert (f.code, f.evidence["stage"]) == ("SWAKS_STAGE_FAILED", "TLS")
    assert len(result.findings) == 2


def test_closed_port_is_port_closed(good_lab):
    # the lab's "mailbox" address serves IMAP/POP3 only: 25 and 587 there refuse connections
    mailbox = good_lab.info.hosts["mailbox"]
    result = run(good_lab, lab_target(good_lab, mx_hosts=(mailbox,), submission_hosts=()))
    assert by_subject(result) == {
        f"{mailbox}:587": [("PORT_CLOSED", Severity.INFO)],
        f"{mailbox}:25": [("PORT_CLOSED", Severity.FAIL)],
    }

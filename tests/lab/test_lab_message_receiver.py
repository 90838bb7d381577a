"""message.receiver against the embedded lab: the outbound Exim relays to mailprobe's receiver.

The lab's `receiver` role (127.x.y.40) has A and PTR records, and the lab DNS serves
`receiver.test` with its MX pointing there (LabSpec.receiver_domain). The probe submits an
unsigned message as the lab user to outbound:587 (STARTTLS + AUTH); the outbound Exim signs it
(selector `mail`, d=example.test) and delivers it by MX lookup from its own address (.26,
authorized by `a:outbound` in SPF) to the receiver on port 25.
"""

from __future__ import annotations

import dataclasses

import pytest

from probes.checks.message_receiver import MessageReceiver
from probes.lab import pki
from probes.lab.spec import LabSpec, SelectorSpec
from probes.lab.target import lab_target as build_lab_target
from probes.model import MessageOptions, Outcome, Severity, Target, Timeouts
from probes.net import Net
from probes.parse.authres import parse
from probes.runner import Redactor, run_one

pytestmark = pytest.mark.lab
FLAVOURED = True  # every test runs on every lab flavour (tests/lab/conftest.py)

OTHER_KEY = pki.dkim_public_value(pki.generate_dkim_key("rsa", 2048))


@pytest.fixture(scope="module")
def good_lab(flavour_labs):
    return flavour_labs(LabSpec())


@pytest.fixture(scope="module")
def undeliverable_lab(flavour_labs):
    # A lab of its own: after a failed delivery to the receiver address, the outbound Exim's
    # retry hints defer every later message to that host for a while (retry rule F,10m,15s).
    return flavour_labs(LabSpec())


@pytest.fixture(scope="module")
def wrong_key_lab(flavour_labs):
    # The outbound Exim still signs with the lab's own key for `mail`; DNS publishes another.
    record = f"v=DKIM1; k=rsa; p={OTHER_KEY}"
    return flavour_labs(LabSpec(selectors=(SelectorSpec(name="mail", record=record),)))


@pytest.fixture(scope="module")
def spf_without_outbound_lab(flavour_labs):
    return flavour_labs(LabSpec(spf="v=spf1 ip4:{authorized} -all"))


def target_for(lab, monkeypatch, **message) -> Target:
    info = lab.info
    options = MessageOptions(
        receiver_listen=info.receiver_listen,
        receiver_domain=info.receiver_domain,
        deadline_s=20.0,
    )
    return build_lab_target(  # the lab's login travels in memory, in the Target
        info,
        mx_hosts=(),
        submission_hosts=(f"outbound.{info.domain}",),
        mailbox_hosts=(),
        selectors=(),
        sending_ips=(),
        dkim_keys=(),
        timeouts=Timeouts(connect=5.0, io=10.0, dns=2.0, probe=60.0),
        message=dataclasses.replace(options, **message),
    )


def run(lab, target: Target):
    return run_one(MessageReceiver(), target, Net.for_target(target), Redactor([lab.info.password]))


def severe(result) -> set[str]:
    return {f.code for f in result.findings if f.severity >= Severity.WARN}


def report(result):
    (found,) = [f for f in result.findings if f.code == "RECEIVER_REPORT"]
    return found


def test_lab_publishes_the_receiver_address_and_domain(good_lab):
    info = good_lab.info
    assert info.receiver.endswith(".40")
    assert info.receiver_domain == "receiver.test"
    assert info.receiver_listen == f"{info.receiver}:{info.ports['smtp']}"
    assert info.to_json()["receiver"] == info.receiver


def test_signed_relay_from_outbound_passes_everything(good_lab, monkeypatch):
    info = good_lab.info
    result = run(good_lab, target_for(good_lab, monkeypatch))
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    assert severe(result) == set()
    rep = report(result)
    assert rep.subject == info.hosts["outbound"]
    assert rep.evidence["peer_ip"] == info.hosts["outbound"]
    assert rep.evidence["mail_from"] == info.user
    assert rep.evidence["rcpt_to"] == "check-auth@receiver.test"
    assert rep.evidence["spf"] == "pass"
    assert rep.evidence["dkim"] == f"pass(d={info.domain} s=mail)"
    assert rep.evidence["dmarc"] == "pass"
    assert rep.evidence["iprev"] == "pass"
    # The RFC 8601 value mailprobe would add, read back with the contract's parser.
    ar = parse(rep.evidence["authentication_results"])
    assert ar.authserv_id == f"receiver.{info.domain}"
    results = {r.method: r for r in ar.results}
    assert {m: r.result for m, r in results.items()} == {
        "iprev": "pass",
        "spf": "pass",
        "dkim": "pass",
        "dmarc": "pass",
    }
    assert results["dkim"].properties["header.d"] == info.domain
    assert results["dkim"].properties["header.s"] == "mail"
    assert results["spf"].properties["smtp.mailfrom"] == info.user
    assert results["iprev"].properties["policy.iprev"] == info.hosts["outbound"]
    assert results["dmarc"].properties["header.from"] == info.domain
    # The password never shows.
    assert all(info.password not in str(f.to_json()) for f in result.findings)


def test_published_key_differs_from_signing_key(wrong_key_lab, monkeypatch):
    info = wrong_key_lab.info
    result = run(wrong_key_lab, target_for(wrong_key_lab, monkeypatch))
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    # DKIM fails; SPF passes for example.test (aligned with From), so DMARC still passes
    # (RFC 9989 §4.4: one aligned pass, DKIM or SPF, is enough).
    assert severe(result) == {"DKIM_SIGNATURE_INVALID", "AUTHRES_DKIM_NOT_PASS"}
    (invalid,) = [f for f in result.findings if f.code == "DKIM_SIGNATURE_INVALID"]
    assert invalid.evidence["result"] == "fail"
    assert invalid.evidence["d"] == info.domain
    assert invalid.evidence["s"] == "mail"
    (not_pass,) = [f for f in result.findings if f.code == "AUTHRES_DKIM_NOT_PASS"]
    assert not_pass.evidence["result"] == "fail"
    assert not_pass.subject == info.hosts["outbound"]
    rep = report(result)
    assert (rep.evidence["spf"], rep.evidence["dmarc"], rep.evidence["iprev"]) == (
        "pass",
        "pass",
        "pass",
    )
    results = {r.method: r.result for r in parse(rep.evidence["authentication_results"]).results}
    assert results["dkim"] == "fail"
    assert results["dmarc"] == "pass"


def test_outbound_not_in_spf(spf_without_outbound_lab, monkeypatch):
    lab = spf_without_outbound_lab
    info = lab.info
    result = run(lab, target_for(lab, monkeypatch))
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    # SPF fails for the outbound address; the aligned DKIM pass keeps DMARC passing.
    assert severe(result) == {"AUTHRES_SPF_NOT_PASS"}
    (spf,) = [f for f in result.findings if f.code == "AUTHRES_SPF_NOT_PASS"]
    assert spf.evidence["result"] == "fail"
    assert spf.evidence["client_ip"] == info.hosts["outbound"]
    assert spf.evidence["domain"] == info.domain
    rep = report(result)
    assert (rep.evidence["dkim"], rep.evidence["dmarc"]) == (
        f"pass(d={info.domain} s=mail)",
        "pass",
    )


def test_message_that_never_reaches_the_receiver_is_not_delivered(undeliverable_lab, monkeypatch):
    lab = undeliverable_lab
    info = lab.info
    # Listen where the receiver domain's MX does not point: nothing can arrive there.
    elsewhere = f"{info.client_ips['unauthorized']}:{info.ports['smtp']}"
    target = target_for(lab, monkeypatch, receiver_listen=elsewhere, deadline_s=2.0)
    result = run(lab, target)
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    assert severe(result) == {"MESSAGE_NOT_DELIVERED"}
    (finding,) = result.findings
    assert finding.subject == elsewhere
    assert finding.evidence["receiver"] == elsewhere


def test_listen_address_taken_by_a_lab_server_is_a_config_error(good_lab, monkeypatch):
    info = good_lab.info
    taken = f"{info.hosts['mx']}:{info.ports['smtp']}"  # the lab MX's Exim listens there
    result = run(good_lab, target_for(good_lab, monkeypatch, receiver_listen=taken))
    assert result.outcome is Outcome.ERROR
    assert result.error.value == "CONFIG"
    assert taken in (result.error_detail or "")


def test_without_credentials_the_authorized_client_relays(good_lab, monkeypatch):
    info = good_lab.info
    target = target_for(
        good_lab,
        monkeypatch,
        source_address=info.client_ips["authorized"],
        mail_from=info.user,
    )
    target = dataclasses.replace(target, login=None)
    result = run(good_lab, target)
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    assert severe(result) == set(), result.findings
    assert report(result).evidence["peer_ip"] == info.hosts["outbound"]


def test_relay_refused_for_an_unauthorized_client_is_not_delivered(good_lab, monkeypatch):
    info = good_lab.info
    target = target_for(
        good_lab,
        monkeypatch,
        source_address=info.client_ips["unauthorized"],
        mail_from=info.user,
    )
    target = dataclasses.replace(target, login=None)
    result = run(good_lab, target)
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    (finding,) = result.findings
    assert (finding.code, finding.severity) == ("MESSAGE_NOT_DELIVERED", Severity.FAIL)
    assert finding.evidence["stage"] == "RCPT"
    assert finding.evidence["reply"][:3] in {"550", "554"}  # 554 5.7.1: Postfix

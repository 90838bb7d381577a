"""State findings (issue 14): every DNS probe reports what it saw as info findings whose stable
evidence (evidence minus `volatile`) is the same for the same configuration and changes when
the configuration changes. Offline, through the resolver door's StaticBackend."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from probes.checks.dns_dkim import DnsDkim
from probes.checks.dns_dmarc import DnsDmarc
from probes.checks.dns_mx import DnsMx
from probes.checks.dns_ptr import DnsPtr
from probes.checks.dns_spf import DnsSpf
from probes.checks.message_roundtrip import per_message
from probes.lab import pki
from probes.model import Finding, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.parse.certificate import CertInfo
from probes.probe import BaseProbe
from probes.probekit.tls_findings import TLS_CODES, VerifyResult, certificate_findings
from probes.runner import Redactor, run_one

D = "example.com"
DMARC = "_dmarc.example.com"


def run(probe, records, **target):
    result = run_one(
        probe,
        Target(domain=D, **target),
        Net(dns_client=DnsClient(StaticBackend(records))),
        Redactor(),
    )
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    return result


def state(result, code) -> list[tuple[tuple, dict[str, str]]]:
    """(identity, stable evidence) of every `code` finding, as a diff compares them."""
    found = [f for f in result.findings if f.code == code]
    assert found, [f.code for f in result.findings]
    assert all(f.severity is Severity.INFO for f in found)
    return [(f.identity, f.stable_evidence) for f in found]


def one(result, code) -> Finding:
    (finding,) = [f for f in result.findings if f.code == code]
    return finding


# --- dns.dmarc: DMARC_POLICY --------------------------------------------------------------------

REJECT = "v=DMARC1; p=reject; rua=mailto:b@example.com,mailto:a@example.com; adkim=s"


def test_a_correct_dmarc_record_gives_the_effective_policy():
    finding = one(run(DnsDmarc(), {(DMARC, "TXT"): [REJECT]}), "DMARC_POLICY")
    assert finding.subject == D
    assert finding.volatile == frozenset()
    ev = finding.evidence
    assert ev["name"] == DMARC
    assert ev["record"] == REJECT
    assert (ev["p"], ev["sp"], ev["np"]) == ("reject", "reject (from p)", "reject (from p)")
    assert (ev["adkim"], ev["aspf"], ev["t"]) == ("s", "r (default)", "n (default)")
    assert ev["rua"] == "mailto:a@example.com, mailto:b@example.com"  # sorted
    assert ev["ruf"] == "none"
    assert ev["applies"] == "p=reject"


def test_sp_np_and_t_as_published_and_the_inherited_tag_applies():
    records = {
        ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject; sp=quarantine; np=none; t=y"],
        ("sub.example.com", "A"): ["192.0.2.1"],
    }
    result = run_one(
        DnsDmarc(),
        Target(domain="sub.example.com"),
        Net(dns_client=DnsClient(StaticBackend(records))),
        Redactor(),
    )
    ev = one(result, "DMARC_POLICY").evidence
    assert (ev["p"], ev["sp"], ev["np"], ev["t"]) == ("reject", "quarantine", "none", "y")
    assert ev["applies"] == "sp=quarantine"
    assert ev["name"] == "_dmarc.example.com"


def test_an_invalid_p_is_shown_as_invalid_not_dropped():
    ev = one(run(DnsDmarc(), {(DMARC, "TXT"): ["v=DMARC1; p=bogus"]}), "DMARC_POLICY").evidence
    assert ev["p"] == "invalid ('bogus')"
    assert ev["applies"] == "p=none"


@pytest.mark.parametrize(
    "changed",
    [
        REJECT.replace("p=reject", "p=quarantine"),
        REJECT.replace("adkim=s", "adkim=r"),
        REJECT + "; sp=none",
        REJECT.replace("mailto:b@example.com", "mailto:c@example.com"),
    ],
)
def test_a_changed_dmarc_policy_changes_the_stable_evidence(changed):
    before = state(run(DnsDmarc(), {(DMARC, "TXT"): [REJECT]}), "DMARC_POLICY")
    again = state(run(DnsDmarc(), {(DMARC, "TXT"): [REJECT]}), "DMARC_POLICY")
    after = state(run(DnsDmarc(), {(DMARC, "TXT"): [changed]}), "DMARC_POLICY")
    assert before == again
    assert [i for i, _ in before] == [i for i, _ in after]  # the same finding ...
    assert before != after  # ... that changed


def test_reject_to_quarantine_shows_in_p_and_applies():
    after = one(
        run(DnsDmarc(), {(DMARC, "TXT"): [REJECT.replace("p=reject", "p=quarantine")]}),
        "DMARC_POLICY",
    )
    assert (after.evidence["p"], after.evidence["applies"]) == ("quarantine", "p=quarantine")


# --- dns.spf: SPF_RECORD ------------------------------------------------------------------------

SPF = {
    (D, "TXT"): ["v=spf1 a mx ip4:192.0.2.0/24 include:_spf.provider.net -all"],
    (D, "A"): ["192.0.2.1", "192.0.2.2"],
    (D, "AAAA"): ["2001:db8::1"],
    (D, "MX"): [(10, "mx.example.com")],
    ("mx.example.com", "A"): ["192.0.2.25"],
    ("mx.example.com", "AAAA"): [],
    ("_spf.provider.net", "TXT"): ["v=spf1 ip4:198.51.100.0/24 ~all"],
}


def test_spf_record_gives_the_record_all_includes_and_resolved_mechanisms():
    finding = one(run(DnsSpf(), SPF), "SPF_RECORD")
    assert finding.subject == D
    ev = finding.evidence
    assert ev["record"] == SPF[(D, "TXT")][0]
    assert ev["all"] == "-all"
    assert ev["includes"] == "include:_spf.provider.net"
    assert ev["mechanisms"] == (
        "a:example.com (192.0.2.1 192.0.2.2 2001:db8::1), ip4:192.0.2.0/24, "
        "ip4:198.51.100.0/24, mx:example.com (192.0.2.25)"
    )


def test_spf_evidence_does_not_depend_on_the_order_of_answers():
    rotated = {**SPF, (D, "A"): ["192.0.2.2", "192.0.2.1"]}
    assert state(run(DnsSpf(), SPF), "SPF_RECORD") == state(run(DnsSpf(), rotated), "SPF_RECORD")


@pytest.mark.parametrize(
    ("key", "value", "what"),
    [
        ((D, "TXT"), ["v=spf1 a mx ip4:192.0.2.0/24 include:_spf.provider.net ~all"], "all"),
        (("_spf.provider.net", "TXT"), ["v=spf1 ip4:203.0.113.0/24 ~all"], "mechanisms"),
        (("mx.example.com", "A"), ["192.0.2.26"], "mechanisms"),
    ],
)
def test_a_changed_spf_policy_changes_the_stable_evidence(key, value, what):
    before = state(run(DnsSpf(), SPF), "SPF_RECORD")
    assert before == state(run(DnsSpf(), SPF), "SPF_RECORD")
    after = state(run(DnsSpf(), {**SPF, key: value}), "SPF_RECORD")
    assert before[0][0] == after[0][0]
    assert before[0][1][what] != after[0][1][what]


def test_minus_all_to_tilde_all_reads_in_all():
    changed = {**SPF, (D, "TXT"): [SPF[(D, "TXT")][0].replace("-all", "~all")]}
    assert one(run(DnsSpf(), changed), "SPF_RECORD").evidence["all"] == "~all"


def test_the_all_reached_by_redirect_names_where():
    records = {
        (D, "TXT"): ["v=spf1 ip4:192.0.2.1 redirect=_spf.example.net"],
        ("_spf.example.net", "TXT"): ["v=spf1 ip4:198.51.100.1 -all"],
    }
    ev = one(run(DnsSpf(), records), "SPF_RECORD").evidence
    assert ev["all"] == "-all (at _spf.example.net)"
    assert ev["includes"] == "redirect:_spf.example.net"


# --- dns.mx: MX_PRESENT -------------------------------------------------------------------------

MX = {
    (D, "MX"): [(20, "mx2.example.com"), (10, "mx1.example.com")],
    ("mx1.example.com", "A"): ["192.0.2.11", "192.0.2.10"],
    ("mx1.example.com", "AAAA"): [],
    ("mx2.example.com", "A"): ["192.0.2.20"],
    ("mx2.example.com", "AAAA"): [],
}


def test_the_mx_set_is_sorted_evidence():
    ev = one(run(DnsMx(), MX), "MX_PRESENT").evidence
    assert ev["mx"] == "10 mx1.example.com., 20 mx2.example.com."
    assert ev["addresses"] == "mx1.example.com: 192.0.2.10 192.0.2.11; mx2.example.com: 192.0.2.20"


def test_a_new_mx_changes_the_state_and_a_rotated_answer_does_not():
    before = state(run(DnsMx(), MX), "MX_PRESENT")
    rotated = {
        **MX,
        (D, "MX"): list(reversed(MX[(D, "MX")])),
        ("mx1.example.com", "A"): ["192.0.2.10", "192.0.2.11"],
    }
    assert state(run(DnsMx(), rotated), "MX_PRESENT") == before
    added = {
        **MX,
        (D, "MX"): [*MX[(D, "MX")], (30, "mx3.example.com")],
        ("mx3.example.com", "A"): ["192.0.2.30"],
        ("mx3.example.com", "AAAA"): [],
    }
    after = state(run(DnsMx(), added), "MX_PRESENT")
    assert after[0][0] == before[0][0]
    assert "30 mx3.example.com." in after[0][1]["mx"]
    assert after != before


# --- dns.ptr: PTR names -------------------------------------------------------------------------

PTR = {
    (D, "MX"): [(10, "mx.example.com")],
    ("mx.example.com", "A"): ["192.0.2.25"],
    ("mx.example.com", "AAAA"): [],
    ("25.2.0.192.in-addr.arpa", "PTR"): ["mx.example.com.", "alias.example.com."],
    ("alias.example.com", "A"): ["192.0.2.25"],
}


def test_ptr_names_are_sorted_and_do_not_depend_on_answer_order():
    result = run(DnsPtr(), PTR)
    finding = one(result, "PTR_CONFIRMED")
    assert finding.evidence["ptr"] == "alias.example.com. mx.example.com."
    assert finding.evidence["confirmed_by"] == "alias.example.com"
    swapped = {
        **PTR,
        ("25.2.0.192.in-addr.arpa", "PTR"): list(reversed(PTR[("25.2.0.192.in-addr.arpa", "PTR")])),
    }
    assert state(run(DnsPtr(), swapped), "PTR_CONFIRMED") == state(result, "PTR_CONFIRMED")
    renamed = {**PTR, ("25.2.0.192.in-addr.arpa", "PTR"): ["mx.example.com."]}
    assert state(run(DnsPtr(), renamed), "PTR_CONFIRMED") != state(result, "PTR_CONFIRMED")


# --- dns.dkim: each key's type, bits and fingerprint --------------------------------------------


def dkim_record(key, *extra):
    return "; ".join(["v=DKIM1", "k=rsa", *extra, "p=" + pki.dkim_public_value(key)])


@pytest.fixture(scope="module")
def keys():
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def test_a_dkim_key_gives_type_bits_and_fingerprint_and_a_new_key_changes_it(keys):
    name = "s1._domainkey.example.com"
    first = run(DnsDkim(), {(name, "TXT"): [dkim_record(keys[0])]}, selectors=("s1",))
    ev = one(first, "DKIM_KEY_OK").evidence
    assert (ev["key_type"], ev["bits"]) == ("rsa", "2048")
    assert ev["fingerprint"].startswith("sha256:")
    again = run(DnsDkim(), {(name, "TXT"): [dkim_record(keys[0])]}, selectors=("s1",))
    assert state(first, "DKIM_KEY_OK") == state(again, "DKIM_KEY_OK")
    rotated = run(DnsDkim(), {(name, "TXT"): [dkim_record(keys[1])]}, selectors=("s1",))
    assert state(rotated, "DKIM_KEY_OK")[0][1]["fingerprint"] != ev["fingerprint"]


def test_a_key_in_testing_mode_still_shows_its_fingerprint(keys):
    name = "s1._domainkey.example.com"
    result = run(DnsDkim(), {(name, "TXT"): [dkim_record(keys[0], "t=y")]}, selectors=("s1",))
    finding = one(result, "DKIM_TESTING_MODE")
    assert finding.evidence["fingerprint"].startswith("sha256:")
    assert finding.evidence["bits"] == "2048"


# --- certificates: CERT_SEEN, days_left volatile ------------------------------------------------

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
CERT = CertInfo(
    subject="CN=mx.example.com",
    issuer="CN=Example CA",
    serial="1",
    not_before=NOW - dt.timedelta(days=30),
    not_after=NOW + dt.timedelta(days=90),
    dns_names=("mx.example.com",),
    ip_addresses=(),
    common_names=("mx.example.com",),
    key_type="EC",
    key_bits=256,
    curve="secp256r1",
    signature_algorithm="ecdsa-with-SHA256",
    self_signed=False,
    sha256_fingerprint="AB:CD",
)


class TlsProbe(BaseProbe):
    id = "smtp.mx"
    description = "test probe"
    codes = TLS_CODES


def judge(info, now, verify=None):
    return certificate_findings(
        TlsProbe(),
        info=info,
        verify=verify or VerifyResult(verified=True, ca_source="/tmp/ca.pem"),
        hostname="mx.example.com",
        now=now,
        subject="mx.example.com:25",
        reproduce="openssl s_client",
    )


def stable(findings):
    return sorted((f.identity, tuple(sorted(f.stable_evidence.items()))) for f in findings)


@pytest.mark.parametrize("left_days", [90, 10, -3])  # CERT_OK, CERT_EXPIRING_SOON, CERT_EXPIRED
def test_days_left_is_volatile_and_the_certificate_is_always_in_the_state(left_days):
    info = dataclasses.replace(CERT, not_after=NOW + dt.timedelta(days=left_days, hours=1))
    today = judge(info, NOW)
    tomorrow = judge(info, NOW + dt.timedelta(hours=5))
    assert stable(today) == stable(tomorrow)
    seen = [f for f in today if f.code in ("CERT_OK", "CERT_SEEN")]
    assert len(seen) == 1
    assert seen[0].evidence["sha256_fingerprint"] == "AB:CD"
    assert seen[0].evidence["issuer"] == "CN=Example CA"
    assert "not_after" in seen[0].evidence
    for finding in today:
        assert ("days_left" in finding.evidence) == ("days_left" in finding.volatile)


def test_cert_seen_only_when_a_certificate_finding_judged_it():
    ok = judge(CERT, NOW)
    assert [f.code for f in ok] == ["CERT_OK"]
    untrusted = judge(CERT, NOW, VerifyResult(verified=False, code=20, ca_source="x"))
    assert [f.code for f in untrusted] == ["CERT_UNTRUSTED", "CERT_SEEN"]


def test_a_new_certificate_changes_the_state():
    renewed = dataclasses.replace(
        CERT, sha256_fingerprint="EF:01", not_after=CERT.not_after + dt.timedelta(days=90)
    )
    assert stable(judge(CERT, NOW)) != stable(judge(renewed, NOW))


# --- message probes: per-message values -----------------------------------------------------


def test_per_message_authentication_results_values_are_volatile():
    assert per_message(
        {
            "header_0": "mx; dkim=pass header.d=example.com header.b=AbCdEfGh",
            "header_1": "mx; spf=pass smtp.mailfrom=a@example.com",
            "header.b": "AbCdEfGh",
        }
    ) == ["header_0", "header.b"]

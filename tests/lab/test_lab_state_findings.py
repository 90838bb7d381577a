"""State findings against the real lab (issue 14): a change of configuration on a running lab
is a change of findings, and two runs of an unchanged lab give the same findings with the
same stable evidence (only evidence marked volatile may differ)."""

from __future__ import annotations

from collections import Counter

import pytest

from probes import registry
from probes.checks.dns_dmarc import DnsDmarc
from probes.checks.dns_mx import DnsMx
from probes.checks.dns_spf import DnsSpf
from probes.lab.target import lab_target as build_lab_target
from probes.model import Outcome, Severity, Timeouts
from probes.net import Net
from probes.runner import run_probes

pytestmark = pytest.mark.lab
FLAVOURED = True  # the two-run test runs on every lab flavour (tests/lab/conftest.py)


def state(result, code):
    (finding,) = [f for f in result.findings if f.code == code]
    assert finding.severity is Severity.INFO
    return finding.identity, finding.stable_evidence


def txt(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- a change of configuration is a change of findings ---------------------------------------


def test_dmarc_reject_to_quarantine_changes_the_policy_finding(run_probe, zone, dns_lab):
    domain = dns_lab.info.domain
    name = f"_dmarc.{domain}"
    before = state(run_probe(DnsDmarc()), "DMARC_POLICY")
    assert before == state(run_probe(DnsDmarc()), "DMARC_POLICY")
    assert (before[1]["p"], before[1]["applies"]) == ("reject", "p=reject")
    assert before[1]["rua"] == f"mailto:dmarc-reports@{domain}"
    (record,) = zone.current(name, "TXT")
    zone.replace(name, "TXT", record.replace("p=reject", "p=quarantine"))
    after = state(run_probe(DnsDmarc()), "DMARC_POLICY")
    assert after[0] == before[0]
    assert (after[1]["p"], after[1]["applies"]) == ("quarantine", "p=quarantine")
    assert {k for k in before[1] if before[1][k] != after[1][k]} == {
        "p",
        "sp",
        "np",
        "record",
        "applies",
    }


def test_spf_minus_all_to_tilde_all_changes_the_record_finding(run_probe, zone, dns_lab):
    info = dns_lab.info
    before = state(run_probe(DnsSpf()), "SPF_RECORD")
    assert before == state(run_probe(DnsSpf()), "SPF_RECORD")
    assert before[1]["all"] == "-all"
    assert f"a:outbound.{info.domain} (" in before[1]["mechanisms"]  # with its address
    (record,) = [r for r in zone.current(info.domain, "TXT") if "v=spf1" in r]
    zone.replace(info.domain, "TXT", record.replace("-all", "~all"))
    after = state(run_probe(DnsSpf()), "SPF_RECORD")
    assert after[0] == before[0]
    assert after[1]["all"] == "~all"
    assert after[1]["mechanisms"] == before[1]["mechanisms"]


def test_a_new_mx_changes_the_mx_set(run_probe, zone, dns_lab):
    domain = dns_lab.info.domain
    before = state(run_probe(DnsMx()), "MX_PRESENT")
    (current,) = zone.current(domain, "MX")
    zone.replace(domain, "MX", current, f"20 outbound.{domain}.")
    after = state(run_probe(DnsMx()), "MX_PRESENT")
    assert after[0] == before[0]
    assert f"20 outbound.{domain}." in after[1]["mx"]
    assert after[1]["mx"] != before[1]["mx"]


# --- two runs of an unchanged lab ------------------------------------------------------------


def test_two_runs_of_an_unchanged_lab_give_the_same_stable_evidence(flavour_lab):
    """Every probe, the message round trip included, twice against the same lab: the same
    findings (identity) with the same evidence but for the keys marked volatile. On every
    flavour: sendmail's banner carries the time of day."""
    info = flavour_lab.info
    target = build_lab_target(info, timeouts=Timeouts(dns=2, connect=5, io=10, probe=90))
    probes = [cls() for cls in registry.load_probes().values()]
    secrets = (info.password,)

    def one_run():
        results = run_probes(probes, target, Net.for_target(target), secrets=secrets)
        assert {r.probe_id: (r.outcome, r.error_detail) for r in results} == {
            r.probe_id: (Outcome.COMPLETED, None) for r in results
        }
        found = [f for r in results for f in r.findings]
        identities = Counter(f.identity for f in found)
        assert [i for i, n in identities.items() if n > 1] == []  # identity names one finding
        return {f.identity: f for f in found}

    first, second = one_run(), one_run()
    assert sorted(first, key=str) == sorted(second, key=str)
    changed = {
        identity: (first[identity].stable_evidence, second[identity].stable_evidence)
        for identity in first
        if first[identity].stable_evidence != second[identity].stable_evidence
    }
    assert changed == {}
    # what does change run to run is there, and marked
    delivered = next(f for i, f in first.items() if i[1] == "MESSAGE_DELIVERED")
    assert {"token", "submit_s", "found_after_s"} <= delivered.volatile
    again = second[delivered.identity]
    assert delivered.evidence["token"] != again.evidence["token"]
    assert all("days_left" in f.volatile for f in first.values() if f.code == "CERT_OK")
    codes = {i[1] for i in first}
    assert {"SPF_RECORD", "DMARC_POLICY", "MX_PRESENT", "DKIM_KEY_OK", "PTR_CONFIRMED"} <= codes
    assert {"CERT_OK", "TLS_NEGOTIATED", "SMTP_CAPABILITIES", "IMAP_CAPABILITIES"} <= codes

"""dns.mx and dns.ptr against the live lab DNS, each finding code produced by a zone change."""

from __future__ import annotations

import dns.reversename
import pytest

from probes.checks.dns_mx import DnsMx
from probes.checks.dns_ptr import DnsPtr
from probes.model import ErrorReason, Outcome, Severity

pytestmark = pytest.mark.lab


def rev(ip: str) -> str:
    return dns.reversename.from_address(ip).to_text()


def codes(result):
    return {(f.code, f.severity, f.subject) for f in result.findings}


def severe(result):
    return {c for c in codes(result) if c[1] >= Severity.WARN}


# --- dns.mx ----------------------------------------------------------------------------------


def test_correct_lab_gives_no_warn_or_fail_from_dns_mx(run_probe, dns_lab):
    result = run_probe(DnsMx())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == set()
    (present,) = result.findings
    assert present.code == "MX_PRESENT"
    assert dns_lab.info.hosts["mx"] in present.evidence["addresses"]


def test_null_mx_is_info(run_probe, zone, dns_lab):
    zone.replace(dns_lab.info.domain, "MX", "0 .")
    result = run_probe(DnsMx())
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("MX_NULL", Severity.INFO, None)}


def test_null_mx_beside_a_real_mx_fails(run_probe, zone, dns_lab):
    domain = dns_lab.info.domain
    zone.replace(domain, "MX", "0 .", f"10 mx.{domain}.")
    result = run_probe(DnsMx())
    assert severe(result) == {("MX_NULL_MIXED", Severity.FAIL, None)}


def test_no_mx_falls_back_to_the_domain_address(run_probe, zone, dns_lab):
    info = dns_lab.info
    zone.delete(info.domain, "MX")
    zone.replace(info.domain, "A", info.hosts["mx"])
    result = run_probe(DnsMx())
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("MX_IMPLICIT", Severity.INFO, None)}


def test_no_mx_and_no_address_is_missing(run_probe, zone, dns_lab):
    zone.delete(dns_lab.info.domain, "MX")
    result = run_probe(DnsMx())
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("MX_MISSING", Severity.FAIL, None)}


def test_mx_host_without_address_is_unresolvable(run_probe, zone, dns_lab):
    domain = dns_lab.info.domain
    zone.replace(domain, "MX", f"10 mx.{domain}.", f"20 noaddr.{domain}.")
    result = run_probe(DnsMx())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == {("MX_HOST_UNRESOLVABLE", Severity.FAIL, f"noaddr.{domain}")}


def test_mx_to_a_cname_warns(run_probe, zone, dns_lab):
    domain = dns_lab.info.domain
    zone.replace(f"mail-alias.{domain}", "CNAME", f"mx.{domain}.")
    zone.replace(domain, "MX", f"10 mail-alias.{domain}.")
    result = run_probe(DnsMx())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == {("MX_IS_IP_OR_CNAME", Severity.WARN, f"mail-alias.{domain}")}


def test_mx_to_an_ip_literal_name_warns(run_probe, zone, dns_lab):
    info = dns_lab.info
    zone.replace(info.domain, "MX", f"10 {info.hosts['mx']}.")
    result = run_probe(DnsMx())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == {("MX_IS_IP_OR_CNAME", Severity.WARN, info.hosts["mx"])}


# --- dns.ptr ---------------------------------------------------------------------------------


def test_correct_lab_gives_no_warn_or_fail_from_dns_ptr(run_probe, lab_target, dns_lab):
    info = dns_lab.info
    target = lab_target()
    result = run_probe(DnsPtr(), target)
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == set()
    confirmed = {f.subject for f in result.findings if f.code == "PTR_CONFIRMED"}
    assert confirmed == {info.hosts["mx"], *target.sending_ips}


def test_mx_address_without_ptr_warns(run_probe, zone, dns_lab):
    mx_ip = dns_lab.info.hosts["mx"]
    zone.delete(rev(mx_ip), "PTR")
    result = run_probe(DnsPtr())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == {("PTR_MISSING", Severity.WARN, mx_ip)}


def test_sending_ip_without_ptr_fails(run_probe, zone, lab_target, dns_lab):
    info = dns_lab.info
    client_b = info.client_ips["unauthorized"]
    zone.delete(rev(client_b), "PTR")
    target = lab_target(sending_ips=(info.client_ips["authorized"], client_b))
    result = run_probe(DnsPtr(), target)
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == {("PTR_MISSING", Severity.FAIL, client_b)}


def test_ptr_to_a_name_that_does_not_exist_is_not_confirmed(run_probe, zone, dns_lab):
    info = dns_lab.info
    outbound = info.hosts["outbound"]
    zone.replace(rev(outbound), "PTR", f"ghost.{info.domain}.")
    result = run_probe(DnsPtr())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == {("PTR_NOT_CONFIRMED", Severity.WARN, outbound)}


def test_ptr_to_a_name_of_another_address_is_not_confirmed(run_probe, zone, dns_lab):
    info = dns_lab.info
    mx_ip = info.hosts["mx"]
    zone.replace(rev(mx_ip), "PTR", f"mailbox.{info.domain}.")
    result = run_probe(DnsPtr())
    assert severe(result) == {("PTR_NOT_CONFIRMED", Severity.WARN, mx_ip)}
    (f,) = [f for f in result.findings if f.code == "PTR_NOT_CONFIRMED"]
    assert f.evidence[f"A mailbox.{info.domain}"] == info.hosts["mailbox"]


def test_ptr_follows_the_mx_set(run_probe, zone, dns_lab):
    # MX moved to the mailbox host, whose PTR is then removed: that address is checked.
    info = dns_lab.info
    zone.replace(info.domain, "MX", f"10 mailbox.{info.domain}.")
    zone.delete(rev(info.hosts["mailbox"]), "PTR")
    result = run_probe(DnsPtr())
    assert severe(result) == {("PTR_MISSING", Severity.WARN, info.hosts["mailbox"])}


def test_invalid_sending_ip_is_a_config_error(run_probe, lab_target):
    result = run_probe(DnsPtr(), lab_target(sending_ips=("mx.example.test",)))
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.CONFIG
    assert "mx.example.test" in result.error_detail


def test_refused_reverse_zone_is_an_error_not_missing(run_probe, lab_target):
    # 192.0.2.1's reverse zone is not served by the lab DNS: REFUSED, never "no PTR".
    result = run_probe(DnsPtr(), lab_target(sending_ips=("192.0.2.1",)))
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert "PTR_MISSING" not in {f.code for f in result.findings}

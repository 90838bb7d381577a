"""dns.spf against the live lab DNS (Knot): each finding code produced by a live zone change."""

from __future__ import annotations

import time

import pytest

from probes.checks.dns_spf import MAX_FOLLOWED, DnsSpf
from probes.model import ErrorReason, Outcome, Severity

pytestmark = pytest.mark.lab

OTHER = "other.test"
REPORTS = "reports.test"


def txt(text: str) -> str:
    """Zone-file TXT rdata: the text quoted, split into strings of at most 255 bytes."""
    return " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255)) or '""'


def codes(result):
    return {f.code for f in result.findings}


def severe(result):
    return {(f.code, f.subject) for f in result.findings if f.severity >= Severity.WARN}


def only(result, code):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, [(f.code, f.subject) for f in result.findings]
    return found[0]


@pytest.fixture
def lab(dns_lab):
    return dns_lab.info


@pytest.fixture
def set_spf(zone, lab):
    def put(record: str, name: str | None = None) -> None:
        zone.replace(name or lab.domain, "TXT", txt(record))

    return put


def test_correct_lab_gives_no_warn_or_fail_from_dns_spf(run_probe, lab):
    result = run_probe(DnsSpf())
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    assert severe(result) == set()
    info = only(result, "SPF_LOOKUP_COUNT")
    assert info.evidence["count"] == "1"
    ip = lab.resolver.rsplit(":", 1)[0] if lab.resolver.count(":") == 1 else lab.resolver
    assert info.reproduce.startswith(f"dig +short TXT {lab.domain} @{ip}")


def test_declared_authorized_ips_pass_and_an_unauthorized_ip_fails(run_probe, lab_target, lab):
    bad = lab.client_ips["unauthorized"]
    ips = (lab.client_ips["authorized"], lab.hosts["outbound"], bad)
    result = run_probe(DnsSpf(), lab_target(sending_ips=ips))
    assert result.outcome is Outcome.COMPLETED
    finding = only(result, "SPF_IP_NOT_AUTHORIZED")
    assert (finding.subject, finding.evidence["result"]) == (bad, "fail")
    assert severe(result) == {("SPF_IP_NOT_AUTHORIZED", bad)}


def test_no_spf_record_is_missing(run_probe, set_spf):
    set_spf("some verification token")
    result = run_probe(DnsSpf())
    assert result.outcome is Outcome.COMPLETED
    assert "SPF_MISSING" in codes(result)


def test_two_spf_records_are_multiple(run_probe, zone, lab):
    zone.replace(lab.domain, "TXT", txt("v=spf1 -all"), txt("v=spf1 mx -all"))
    result = run_probe(DnsSpf())
    assert only(result, "SPF_MULTIPLE_RECORDS").evidence["count"] == "2"


def test_a_split_record_is_joined_without_separator(run_probe, zone, lab):
    authorized = lab.client_ips["authorized"]
    head, tail = authorized.rsplit(".", 1)
    zone.replace(
        lab.domain,
        "TXT",
        f'"v=spf1 a:outbound.{lab.domain} ip4:{head}." "{tail} -all"',
    )
    result = run_probe(DnsSpf())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == set()


def test_a_syntax_error_names_the_term(run_probe, set_spf, lab):
    set_spf(f"v=spf1 a:outbound.{lab.domain} ip4:192.0.2 -all")
    assert only(run_probe(DnsSpf()), "SPF_SYNTAX_ERROR").evidence["term"] == "ip4:192.0.2"


def test_non_ascii_in_the_record_is_a_syntax_error(run_probe, zone, lab):
    zone.replace(lab.domain, "TXT", '"v=spf1 a:\\239\\187\\191garbage.example.test -all"')
    result = run_probe(DnsSpf())
    assert result.outcome is Outcome.COMPLETED
    assert "non-ASCII" in only(result, "SPF_SYNTAX_ERROR").evidence["errors"]


def test_more_than_ten_lookups_across_includes(run_probe, set_spf, lab):
    host = f"outbound.{lab.domain}"
    set_spf(f"v=spf1 include:a.{OTHER} include:b.{OTHER} -all")
    set_spf("v=spf1 " + " ".join([f"a:{host}"] * 6) + " -all", f"a.{OTHER}")
    set_spf(f"v=spf1 include:c.{REPORTS} " + " ".join([f"a:{host}"] * 3) + " -all", f"b.{OTHER}")
    set_spf(f"v=spf1 a:{host} -all", f"c.{REPORTS}")
    finding = only(run_probe(DnsSpf()), "SPF_TOO_MANY_LOOKUPS")
    assert finding.evidence["count"] == "13"
    assert finding.evidence["tree"] == (
        f"{lab.domain}=2 (include:a.{OTHER}=6, include:b.{OTHER}=4 (include:c.{REPORTS}=1))"
    )


def test_an_mx_with_more_than_ten_mx_hosts(run_probe, zone, set_spf, lab):
    set_spf(f"v=spf1 mx:many.{OTHER} -all")
    zone.replace(f"many.{OTHER}", "MX", *(f"{i} mx{i}.{OTHER}." for i in range(11)))
    finding = only(run_probe(DnsSpf()), "SPF_TOO_MANY_LOOKUPS")
    assert finding.evidence["count"] == "11"


def test_more_than_two_void_lookups(run_probe, set_spf, lab):
    set_spf(f"v=spf1 a:nx1.{lab.domain} a:nx2.{lab.domain} exists:nx3.{OTHER} -all")
    finding = only(run_probe(DnsSpf()), "SPF_TOO_MANY_VOID_LOOKUPS")
    assert finding.evidence["count_ipv4_client"] == "3"


def test_an_include_leading_back_to_the_domain_is_a_loop(run_probe, set_spf, lab):
    set_spf(f"v=spf1 include:loop.{OTHER} -all")
    set_spf(f"v=spf1 include:{lab.domain} -all", f"loop.{OTHER}")
    finding = only(run_probe(DnsSpf()), "SPF_INCLUDE_LOOP")
    assert finding.evidence["chain"] == (
        f"{lab.domain} > include:loop.{OTHER} > include:{lab.domain}"
    )


def test_include_and_redirect_targets_without_spf_are_missing(run_probe, set_spf, zone, lab):
    set_spf(f"v=spf1 include:nothing.{REPORTS} redirect=plain.{OTHER}")
    set_spf("just text", f"plain.{OTHER}")
    result = run_probe(DnsSpf())
    missing = {f.subject for f in result.findings if f.code == "SPF_INCLUDE_MISSING"}
    assert missing == {f"nothing.{REPORTS}", f"plain.{OTHER}"}


def test_pass_all_is_permissive(run_probe, set_spf, lab):
    set_spf(f"v=spf1 a:outbound.{lab.domain} +all")
    assert only(run_probe(DnsSpf()), "SPF_PERMISSIVE_ALL").evidence["term"] == "+all"


def test_neutral_all_in_the_record_reached_by_redirect_is_permissive(run_probe, set_spf, lab):
    set_spf(f"v=spf1 redirect=_spf.{OTHER}")
    set_spf(f"v=spf1 ip4:{lab.client_ips['authorized']} ?all", f"_spf.{OTHER}")
    finding = only(run_probe(DnsSpf()), "SPF_PERMISSIVE_ALL")
    assert finding.subject == f"_spf.{OTHER}"


def test_no_all_and_no_redirect_warns(run_probe, set_spf, lab):
    set_spf(f"v=spf1 a:outbound.{lab.domain} ip4:{lab.client_ips['authorized']}")
    result = run_probe(DnsSpf())
    assert severe(result) == {("SPF_NO_ALL", lab.domain)}


def test_ptr_warns_and_still_authorizes_through_the_lab_ptr_records(run_probe, set_spf, lab):
    set_spf("v=spf1 ptr -all")
    result = run_probe(DnsSpf())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == {("SPF_PTR_MECHANISM", lab.domain)}


def test_a_macro_with_the_client_ip_is_evaluated_through_the_door(
    run_probe, set_spf, zone, lab, lab_target
):
    authorized = lab.client_ips["authorized"]
    set_spf(f"v=spf1 exists:%{{i}}._allow.{OTHER} -all")
    zone.replace(f"{authorized}._allow.{OTHER}", "A", "127.0.0.2")
    result = run_probe(DnsSpf(), lab_target(sending_ips=(authorized, lab.hosts["outbound"])))
    assert result.outcome is Outcome.COMPLETED
    finding = only(result, "SPF_IP_NOT_AUTHORIZED")
    assert finding.subject == lab.hosts["outbound"]


# --- hostile input ----------------------------------------------------------------------------


def test_a_hundred_includes_are_bounded(run_probe, set_spf, lab):
    set_spf("v=spf1 " + " ".join(f"include:i{i}.{OTHER}" for i in range(100)) + " -all")
    start = time.monotonic()
    result = run_probe(DnsSpf())
    assert time.monotonic() - start < 10
    assert result.outcome is Outcome.COMPLETED
    finding = only(result, "SPF_TOO_MANY_LOOKUPS")
    assert finding.evidence["count"] == f"more than {MAX_FOLLOWED}"
    assert "SPF_IP_NOT_AUTHORIZED" in codes(result)  # permerror for the declared IPs


def test_a_10kb_record_over_tcp_gives_findings(run_probe, set_spf, lab):
    record = "v=spf1 " + " ".join(f"a:h{i}.{lab.domain}" for i in range(550)) + " -all"
    assert len(record) > 10_000
    set_spf(record)
    start = time.monotonic()
    result = run_probe(DnsSpf())
    assert time.monotonic() - start < 10
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    assert {"SPF_TOO_MANY_LOOKUPS", "SPF_TOO_MANY_VOID_LOOKUPS"} <= codes(result)


def test_an_include_of_a_cname_loop_is_a_missing_target(run_probe, set_spf, zone, lab):
    set_spf(f"v=spf1 include:loop1.{OTHER} a:outbound.{lab.domain} -all")
    zone.replace(f"loop1.{OTHER}", "CNAME", f"loop2.{OTHER}.")
    zone.replace(f"loop2.{OTHER}", "CNAME", f"loop1.{OTHER}.")
    result = run_probe(DnsSpf())
    assert result.outcome is Outcome.COMPLETED
    assert only(result, "SPF_INCLUDE_MISSING").subject == f"loop1.{OTHER}"


def test_an_include_the_resolver_refuses_ends_in_a_dns_error_with_findings_kept(
    run_probe, set_spf, lab
):
    set_spf(f"v=spf1 include:x.nonexistent-zone.invalid ptr ip4:{lab.client_ips['authorized']}")
    result = run_probe(DnsSpf())
    assert (result.outcome, result.error) == (Outcome.ERROR, ErrorReason.DNS)
    assert "x.nonexistent-zone.invalid" in (result.error_detail or "")
    assert "REFUSED" in (result.error_detail or "")
    assert {"SPF_PTR_MECHANISM", "SPF_NO_ALL"} <= codes(result)

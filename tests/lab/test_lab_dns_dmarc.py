"""dns.dmarc against the live lab DNS: each finding code produced by a zone change.

The lab DNS serves example.test, reports.test and other.test and REFUSES every other name, so
the tree walk's last question, `_dmarc.test`, always fails here. A failed single-label name is
taken to hold nothing or a psd=y record (probes.parse.dmarc.possible_answers), so that failure
only matters where a psd=y record at `test` could supply the policy: a domain with no policy
anywhere ends in ERROR next to its DMARC_MISSING finding (see test_no_record_is_missing).
"""

from __future__ import annotations

import pytest

from probes.checks.dns_dmarc import DnsDmarc
from probes.model import ErrorReason, Outcome, Severity

pytestmark = pytest.mark.lab

REPORTS = "reports.test"
OTHER = "other.test"


def codes(result):
    return {(f.code, f.severity) for f in result.findings}


def severe(result):
    return {c for c in codes(result) if c[1] >= Severity.WARN}


def only(result, code):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, sorted(codes(result))
    return found[0]


@pytest.fixture
def domain(dns_lab):
    return dns_lab.info.domain


@pytest.fixture
def set_dmarc(zone, domain):
    """Replace the lab's DMARC record with the given TXT strings (zone-file rdata)."""

    def put(*values: str, name: str | None = None) -> None:
        zone.replace(name or f"_dmarc.{domain}", "TXT", *values)

    return put


def quoted(text: str) -> str:
    """Zone-file rdata for one TXT record: the text in quoted strings of at most 255 bytes."""
    data = text.encode()
    parts = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return " ".join('"' + "".join(_escape(b) for b in part) + '"' for part in parts)


def _escape(byte: int) -> str:
    if byte in (0x22, 0x5C) or not 0x20 <= byte < 0x7F:
        return f"\\{byte:03d}"
    return chr(byte)


# --- the correct lab -------------------------------------------------------------------------


def test_correct_lab_gives_no_warn_or_fail_from_dns_dmarc(run_probe):
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == set()
    assert codes(result) == {("DMARC_POLICY", Severity.INFO)}


def test_other_txt_records_beside_the_policy_are_ignored(run_probe, set_dmarc, domain):
    set_dmarc(
        '"v=spf1 -all"',
        quoted(f"v=DMARC1; p=reject; rua=mailto:dmarc-reports@{domain}"),
    )
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("DMARC_POLICY", Severity.INFO)}


# --- one record ------------------------------------------------------------------------------


def test_no_record_is_missing(run_probe, zone, domain):
    zone.delete(f"_dmarc.{domain}", "TXT")
    result = run_probe(DnsDmarc())
    assert codes(result) == {("DMARC_MISSING", Severity.FAIL)}
    # The lab serves the empty `test.` zone, so the walk's `_dmarc.test` is NXDOMAIN.
    assert result.outcome is Outcome.COMPLETED


def test_two_records_are_multiple_records(run_probe, set_dmarc):
    set_dmarc('"v=DMARC1; p=reject"', '"v=DMARC1; p=none"')
    result = run_probe(DnsDmarc())
    assert ("DMARC_MULTIPLE_RECORDS", Severity.FAIL) in codes(result)


def test_a_subdomain_inherits_the_organizational_domain_policy(run_probe, lab_target, domain):
    result = run_probe(DnsDmarc(), lab_target(domain=f"sub.{domain}"))
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("DMARC_INHERITED", Severity.INFO), ("DMARC_POLICY", Severity.INFO)}
    assert only(result, "DMARC_INHERITED").evidence["where"] == f"_dmarc.{domain}"


def test_a_subdomain_with_its_own_record_does_not_inherit(run_probe, lab_target, set_dmarc, domain):
    set_dmarc(
        quoted(f"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{domain}"),
        name=f"_dmarc.sub.{domain}",
    )
    result = run_probe(DnsDmarc(), lab_target(domain=f"sub.{domain}"))
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("DMARC_POLICY", Severity.INFO)}


def test_a_public_suffix_domain_policy_reaches_a_domain_without_one(
    run_probe, lab_target, set_dmarc
):
    set_dmarc(quoted(f"v=DMARC1; p=reject; psd=y; rua=mailto:psd@{OTHER}"), name=f"_dmarc.{OTHER}")
    result = run_probe(DnsDmarc(), lab_target(domain=f"shop.{OTHER}"))
    assert result.outcome is Outcome.COMPLETED
    inherited = only(result, "DMARC_INHERITED")
    assert inherited.evidence["where"] == f"_dmarc.{OTHER}"
    assert inherited.evidence["organizational_domain"] == f"shop.{OTHER}"


def test_a_policy_from_a_parent_that_holds_the_pointer_is_followed(
    run_probe, lab_target, zone, domain
):
    # _dmarc.<sub> as a CNAME to the parent's record (a common delegation pattern)
    zone.replace(f"_dmarc.alias.{domain}", "CNAME", f"_dmarc.{domain}.")
    result = run_probe(DnsDmarc(), lab_target(domain=f"alias.{domain}"))
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("DMARC_POLICY", Severity.INFO)}


# --- tags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "code", "severity"),
    [
        ("v=DMARC1; p=reject; adkim=x; rua=mailto:dmarc-reports@{d}", "DMARC_SYNTAX_ERROR", "fail"),
        ("v=DMARC1; p=none; rua=mailto:dmarc-reports@{d}", "DMARC_POLICY_NONE", "warn"),
        ("v=DMARC1; p=reject; pct=25; rua=mailto:dmarc-reports@{d}", "DMARC_PCT_PARTIAL", "warn"),
        ("v=DMARC1; p=reject; t=y; rua=mailto:dmarc-reports@{d}", "DMARC_TESTING_MODE", "warn"),
        ("v=DMARC1; p=reject; ri=3600; rua=mailto:dmarc-reports@{d}", "DMARC_OBSOLETE_TAG", "info"),
        ("v=DMARC1; p=reject; zz=1; rua=mailto:dmarc-reports@{d}", "DMARC_UNKNOWN_TAG", "info"),
        ("v=DMARC1; p=reject", "DMARC_NO_REPORTING", "info"),
    ],
)
def test_each_tag_code_comes_from_a_record_change(
    run_probe, set_dmarc, domain, record, code, severity
):
    set_dmarc(quoted(record.format(d=domain)))
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    finding = only(result, code)
    assert finding.severity is Severity(severity)


def test_a_syntax_error_names_the_tag(run_probe, set_dmarc, domain):
    set_dmarc(quoted(f"v=DMARC1; p=reject; fo=9; rua=mailto:dmarc-reports@{domain}"))
    result = run_probe(DnsDmarc())
    assert only(result, "DMARC_SYNTAX_ERROR").evidence["tag"] == "fo"


def test_pct_and_rf_are_obsolete(run_probe, set_dmarc, domain):
    set_dmarc(quoted(f"v=DMARC1; p=reject; pct=100; rf=afrf; rua=mailto:dmarc-reports@{domain}"))
    result = run_probe(DnsDmarc())
    tags = sorted(f.evidence["tag"] for f in result.findings if f.code == "DMARC_OBSOLETE_TAG")
    assert tags == ["pct", "rf"]
    assert severe(result) == set()


# --- external report destinations ------------------------------------------------------------


def test_an_unauthorized_external_report_destination_warns(run_probe, set_dmarc):
    set_dmarc(quoted(f"v=DMARC1; p=reject; rua=mailto:agg@{REPORTS}"))
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    finding = only(result, "DMARC_EXTERNAL_REPORT_UNAUTHORIZED")
    assert finding.severity is Severity.WARN
    assert finding.subject == REPORTS


def test_an_authorized_external_report_destination_is_fine(run_probe, set_dmarc, zone, domain):
    set_dmarc(quoted(f"v=DMARC1; p=reject; rua=mailto:agg@{REPORTS}"))
    zone.replace(f"{domain}._report._dmarc.{REPORTS}", "TXT", '"v=DMARC1"')
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("DMARC_POLICY", Severity.INFO)}


def test_a_wildcard_authorization_covers_every_domain(run_probe, set_dmarc, zone):
    set_dmarc(quoted(f"v=DMARC1; p=reject; rua=mailto:agg@{REPORTS}; ruf=mailto:f@{REPORTS}"))
    zone.replace(f"*._report._dmarc.{REPORTS}", "TXT", '"v=DMARC1;"')
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("DMARC_POLICY", Severity.INFO)}


def test_an_authorization_for_another_domain_does_not_count(run_probe, set_dmarc, zone):
    set_dmarc(quoted(f"v=DMARC1; p=reject; ruf=mailto:f@{REPORTS}; rua=mailto:a@{REPORTS}"))
    zone.replace(f"{OTHER}._report._dmarc.{REPORTS}", "TXT", '"v=DMARC1"')
    result = run_probe(DnsDmarc())
    assert only(result, "DMARC_EXTERNAL_REPORT_UNAUTHORIZED").subject == REPORTS


def test_a_report_address_inside_the_domain_needs_no_authorization(run_probe, set_dmarc, domain):
    set_dmarc(quoted(f"v=DMARC1; p=reject; rua=mailto:agg@reports.{domain}"))
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("DMARC_POLICY", Severity.INFO)}


# --- legacy records --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "value"),
    [
        ("_domainkey", '"o=~; r=postmaster@{d}"'),
        ("_adsp._domainkey", '"dkim=discardable"'),
        ("_ssp._domainkey", '"dkim=strict; t=y"'),
    ],
)
def test_legacy_policy_records_are_info(run_probe, zone, domain, prefix, value):
    name = f"{prefix}.{domain}"
    zone.replace(name, "TXT", value.format(d=domain))
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    finding = only(result, "LEGACY_POLICY_RECORD")
    assert (finding.severity, finding.subject) == (Severity.INFO, name)


# --- hostile records -------------------------------------------------------------------------


def test_a_10_kb_txt_record_gives_findings_in_bounded_time(run_probe, set_dmarc, domain):
    text = f"v=DMARC1; p=reject; rua=mailto:dmarc-reports@{domain}; " + "; ".join(
        f"pad{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}={'z' * 60}" for i in range(150)
    )
    assert len(text) > 10_000
    set_dmarc(quoted(text))
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    assert result.duration_s < 10
    assert ("DMARC_UNKNOWN_TAG", Severity.INFO) in codes(result)


def test_non_ascii_in_the_record_is_a_syntax_error(run_probe, set_dmarc, domain):
    set_dmarc(quoted(f"v=DMARC1; p=réject; rua=mailto:dmarc-reports@{domain}"))
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    assert only(result, "DMARC_SYNTAX_ERROR").evidence["tag"] == "p"


def test_garbage_at_dmarc_is_no_record(run_probe, set_dmarc, lab_target, domain):
    set_dmarc('"\\000\\255\\254 garbage; v=DMARC1"', name=f"_dmarc.sub.{domain}")
    result = run_probe(DnsDmarc(), lab_target(domain=f"sub.{domain}"))
    # the garbage is not a record: the parent's policy applies
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("DMARC_INHERITED", Severity.INFO), ("DMARC_POLICY", Severity.INFO)}


def test_garbage_after_the_version_is_a_syntax_error(run_probe, set_dmarc):
    set_dmarc(quoted("v=DMARC1; \x01\x02\x03; p=reject; ===; " + "\x7f" * 200))
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.COMPLETED
    assert ("DMARC_SYNTAX_ERROR", Severity.FAIL) in codes(result)


def test_a_cname_loop_at_dmarc_is_an_error_not_missing(run_probe, zone, domain):
    zone.delete(f"_dmarc.{domain}", "TXT")
    zone.replace(f"_dmarc.{domain}", "CNAME", f"loop.{domain}.")
    zone.replace(f"loop.{domain}", "CNAME", f"_dmarc.{domain}.")
    result = run_probe(DnsDmarc())
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert "DMARC_MISSING" not in {f.code for f in result.findings}

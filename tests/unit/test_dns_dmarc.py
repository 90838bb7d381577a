"""dns.dmarc against static DNS data: codes, the tree walk, failures, hostile records."""

from __future__ import annotations

import pytest
from dnsrounds import RoundsBackend

from probes.checks.dns_dmarc import DnsDmarc
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import Redactor, run_one

GOOD = "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"


def run(records, domain="example.com", client=None):
    client = client or DnsClient(StaticBackend(records))
    result = run_one(DnsDmarc(), Target(domain=domain), Net(dns_client=client), Redactor())
    return result, client


def codes(result):
    return [f.code for f in result.findings]


def only(result, code):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, codes(result)
    return found[0]


# --- the correct case -------------------------------------------------------------------------


def test_a_correct_record_gives_only_the_policy_finding_with_one_round_of_queries():
    result, client = run({("_dmarc.example.com", "TXT"): [GOOD]})
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == ["DMARC_POLICY"]
    # _dmarc.example.com, _dmarc.com and the three legacy names, nothing else
    assert client.stats.queries == 5


def test_a_record_split_over_strings_is_joined():
    result, _ = run(
        {("_dmarc.example.com", "TXT"): [("v=DMARC1; p=rej", "ect; rua=mailto:d@exa", "mple.com")]}
    )
    assert codes(result) == ["DMARC_POLICY"]


def test_other_txt_records_at_dmarc_are_ignored():
    result, _ = run({("_dmarc.example.com", "TXT"): ["google-site-verification=abc", GOOD]})
    assert codes(result) == ["DMARC_POLICY"]


# --- one record -------------------------------------------------------------------------------


def test_no_record_anywhere_is_missing():
    result, _ = run({("example.com", "A"): ["192.0.2.1"]})
    assert result.outcome is Outcome.COMPLETED
    finding = only(result, "DMARC_MISSING")
    assert finding.severity is Severity.FAIL


def test_a_near_miss_record_is_missing_with_the_ignored_text_as_evidence():
    result, _ = run({("_dmarc.example.com", "TXT"): ["v=dmarc1; p=reject"]})
    finding = only(result, "DMARC_MISSING")
    assert "v=dmarc1; p=reject" in finding.evidence.values()


def test_two_records_are_multiple_records():
    result, _ = run({("_dmarc.example.com", "TXT"): [GOOD, "v=DMARC1; p=none"]})
    finding = only(result, "DMARC_MULTIPLE_RECORDS")
    assert finding.severity is Severity.FAIL
    assert "DMARC_MISSING" not in codes(result)


def test_two_records_are_discarded_and_the_walk_goes_on_to_the_parent():
    result, _ = run(
        {
            ("_dmarc.mail.example.com", "TXT"): [GOOD, "v=DMARC1; p=none"],
            ("_dmarc.example.com", "TXT"): [GOOD],
        },
        domain="mail.example.com",
    )
    assert set(codes(result)) == {"DMARC_MULTIPLE_RECORDS", "DMARC_INHERITED", "DMARC_POLICY"}


# --- failures never read as missing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rcode", "reason"),
    [("SERVFAIL", ErrorReason.DNS), ("REFUSED", ErrorReason.DNS), ("TIMEOUT", ErrorReason.TIMEOUT)],
)
def test_a_failed_dmarc_lookup_is_an_error_not_missing(rcode, reason):
    result, _ = run({("_dmarc.example.com", "TXT"): rcode})
    assert result.outcome is Outcome.ERROR
    assert result.error is reason
    assert "DMARC_MISSING" not in codes(result)


def test_a_failed_tld_lookup_does_not_matter_for_a_domain_with_its_own_record():
    result, _ = run({("_dmarc.example.com", "TXT"): [GOOD], ("_dmarc.com", "TXT"): "SERVFAIL"})
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == ["DMARC_POLICY"]


def test_a_failed_parent_that_could_hold_the_policy_ends_in_error_after_the_findings():
    result, _ = run(
        {("_dmarc.example.com", "TXT"): "SERVFAIL", ("_dmarc.a.example.com", "TXT"): ["x=1"]},
        domain="a.example.com",
    )
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert "_dmarc.example.com" in (result.error_detail or "")
    assert "DMARC_MISSING" in codes(result)


def test_a_failed_tld_under_an_inheriting_domain_is_harmless():
    # a TLD is taken to hold nothing or a psd=y record: either way example.com's policy applies
    result, _ = run(
        {("_dmarc.example.com", "TXT"): [GOOD], ("_dmarc.com", "TXT"): "REFUSED"},
        domain="sub.example.com",
    )
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == ["DMARC_INHERITED", "DMARC_POLICY"]


def test_a_cname_loop_at_dmarc_is_an_error():
    result, _ = run(
        {
            ("_dmarc.example.com", "CNAME"): ["loop.example.com"],
            ("loop.example.com", "CNAME"): ["_dmarc.example.com"],
        }
    )
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS


# --- the tree walk ----------------------------------------------------------------------------


def test_a_policy_from_a_parent_is_inherited_with_where_as_evidence():
    result, _ = run({("_dmarc.example.com", "TXT"): [GOOD]}, domain="a.b.example.com")
    finding = only(result, "DMARC_INHERITED")
    assert finding.severity is Severity.INFO
    assert finding.evidence["where"] == "_dmarc.example.com"
    assert result.outcome is Outcome.COMPLETED


def test_the_inherited_policy_is_the_organizational_domains_not_the_nearest():
    result, _ = run(
        {
            ("_dmarc.b.example.com", "TXT"): ["v=DMARC1; p=none; rua=mailto:d@example.com"],
            ("_dmarc.example.com", "TXT"): [GOOD],
        },
        domain="a.b.example.com",
    )
    assert only(result, "DMARC_INHERITED").evidence["where"] == "_dmarc.example.com"
    assert "DMARC_POLICY_NONE" not in codes(result)


def test_a_public_suffix_domain_policy_applies_to_a_domain_without_one():
    result, _ = run({("_dmarc.com", "TXT"): ["v=DMARC1; p=reject; psd=y; rua=mailto:r@nic.com"]})
    finding = only(result, "DMARC_INHERITED")
    assert finding.evidence["where"] == "_dmarc.com"
    assert finding.evidence["organizational_domain"] == "example.com"


def test_a_psd_n_record_stops_the_walk():
    result, _ = run(
        {
            ("_dmarc.mail.example.com", "TXT"): ["v=DMARC1; p=quarantine; psd=n"],
            ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=none"],
        },
        domain="a.mail.example.com",
    )
    assert only(result, "DMARC_INHERITED").evidence["where"] == "_dmarc.mail.example.com"


def test_all_walk_names_are_asked_in_one_round():
    domain = "a.b.c.d.example.com"
    with RoundsBackend({("_dmarc.example.com", "TXT"): [GOOD]}) as backend:
        result, client = run({}, domain=domain, client=backend.client())
    assert codes(result) == ["DMARC_INHERITED", "DMARC_POLICY"]
    assert client.stats.queries == 9  # six walk names, three legacy names
    walk = ["a.b.c.d.example.com", "b.c.d.example.com", "c.d.example.com", "d.example.com"]
    walk += ["example.com", "com"]
    legacy = ["_domainkey." + domain, "_adsp._domainkey." + domain, "_ssp._domainkey." + domain]
    expected = [("_dmarc." + name, "TXT") for name in walk] + [(n, "TXT") for n in legacy]
    assert backend.batches == [sorted(expected)]  # one round trip, not nine


def test_a_long_name_asks_at_most_eight_dmarc_names():
    domain = ".".join(f"l{i}" for i in range(40)) + ".example.com"
    result, client = run({("_dmarc.example.com", "TXT"): [GOOD]}, domain=domain)
    assert codes(result) == ["DMARC_INHERITED", "DMARC_POLICY"]
    assert client.stats.queries == 8 + 3


# --- tags -------------------------------------------------------------------------------------


def record(text):
    return {("_dmarc.example.com", "TXT"): [text]}


def test_a_syntax_error_names_the_tag():
    result, _ = run(record("v=DMARC1; p=reject; adkim=x; rua=mailto:dmarc@example.com"))
    finding = only(result, "DMARC_SYNTAX_ERROR")
    assert finding.severity is Severity.FAIL
    assert finding.evidence["tag"] == "adkim"


def test_policy_none_warns():
    result, _ = run(record("v=DMARC1; p=none; rua=mailto:dmarc@example.com"))
    assert only(result, "DMARC_POLICY_NONE").severity is Severity.WARN


def test_an_absent_p_counts_as_none_without_a_syntax_error():
    result, _ = run(record("v=DMARC1; rua=mailto:dmarc@example.com"))
    assert codes(result) == ["DMARC_POLICY", "DMARC_POLICY_NONE"]


def test_an_invalid_p_is_a_syntax_error_and_counts_as_none():
    result, _ = run(record("v=DMARC1; p=block; rua=mailto:dmarc@example.com"))
    assert set(codes(result)) == {"DMARC_POLICY", "DMARC_SYNTAX_ERROR", "DMARC_POLICY_NONE"}


def test_an_inherited_sp_none_applies_to_the_subdomain():
    result, _ = run(
        record("v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@example.com"), domain="a.example.com"
    )
    assert set(codes(result)) == {"DMARC_INHERITED", "DMARC_POLICY", "DMARC_POLICY_NONE"}
    assert only(result, "DMARC_POLICY_NONE").evidence["tag"] == "sp"


def test_sp_none_does_not_weaken_the_domain_itself():
    result, _ = run(record("v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@example.com"))
    assert codes(result) == ["DMARC_POLICY"]


def test_partial_pct_warns_and_is_obsolete():
    result, _ = run(record("v=DMARC1; p=reject; pct=20; rua=mailto:dmarc@example.com"))
    assert only(result, "DMARC_PCT_PARTIAL").severity is Severity.WARN
    assert only(result, "DMARC_OBSOLETE_TAG").evidence["tag"] == "pct"


def test_pct_100_is_only_obsolete():
    result, _ = run(record("v=DMARC1; p=reject; pct=100; rua=mailto:dmarc@example.com"))
    assert codes(result) == ["DMARC_POLICY", "DMARC_OBSOLETE_TAG"]


def test_testing_mode_warns():
    result, _ = run(record("v=DMARC1; p=reject; t=y; rua=mailto:dmarc@example.com"))
    assert only(result, "DMARC_TESTING_MODE").severity is Severity.WARN


def test_rf_and_ri_are_obsolete():
    result, _ = run(record("v=DMARC1; p=reject; rf=afrf; ri=3600; rua=mailto:dmarc@example.com"))
    found = [f for f in result.findings if f.code == "DMARC_OBSOLETE_TAG"]
    assert sorted(f.evidence["tag"] for f in found) == ["rf", "ri"]
    assert all(f.severity is Severity.INFO for f in found)


def test_unknown_tags_are_info():
    result, _ = run(record("v=DMARC1; p=reject; foo=1; rua=mailto:dmarc@example.com"))
    assert only(result, "DMARC_UNKNOWN_TAG").severity is Severity.INFO


def test_no_rua_is_no_reporting():
    result, _ = run(record("v=DMARC1; p=reject"))
    assert codes(result) == ["DMARC_POLICY", "DMARC_NO_REPORTING"]


# --- external report destinations -------------------------------------------------------------


def test_an_unauthorized_external_destination_warns_with_its_domain_as_subject():
    result, _ = run(record("v=DMARC1; p=reject; rua=mailto:agg@reports.net"))
    finding = only(result, "DMARC_EXTERNAL_REPORT_UNAUTHORIZED")
    assert finding.severity is Severity.WARN
    assert finding.subject == "reports.net"
    assert finding.evidence["authorization_record"] == "example.com._report._dmarc.reports.net"


def test_an_authorized_external_destination_is_fine():
    result, _ = run(
        {
            ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject; rua=mailto:agg@reports.net"],
            ("example.com._report._dmarc.reports.net", "TXT"): ["v=DMARC1;"],
        }
    )
    assert codes(result) == ["DMARC_POLICY"]


def test_an_authorization_record_must_start_with_the_version():
    result, _ = run(
        {
            ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject; ruf=mailto:f@reports.net"],
            ("example.com._report._dmarc.reports.net", "TXT"): ["hello; v=DMARC1"],
        }
    )
    assert codes(result) == [
        "DMARC_POLICY",
        "DMARC_NO_REPORTING",
        "DMARC_EXTERNAL_REPORT_UNAUTHORIZED",
    ]


def test_a_destination_in_the_same_organization_needs_no_authorization():
    result, client = run(record("v=DMARC1; p=reject; rua=mailto:agg@dmarc.example.com"))
    assert codes(result) == ["DMARC_POLICY"]
    assert client.stats.queries == 6  # only _dmarc.dmarc.example.com was added


def test_the_policy_domain_is_the_one_that_must_be_authorized():
    result, _ = run(
        {
            ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject; rua=mailto:agg@reports.net"],
            ("example.com._report._dmarc.reports.net", "TXT"): ["v=DMARC1"],
        },
        domain="mail.example.com",
    )
    assert codes(result) == ["DMARC_INHERITED", "DMARC_POLICY"]


def test_a_destination_under_a_psd_is_its_own_organization():
    result, _ = run(
        {
            ("_dmarc.a.example.com", "TXT"): ["v=DMARC1; p=reject; rua=mailto:r@b.example.com"],
            ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject; psd=y"],
        },
        domain="a.example.com",
    )
    assert codes(result) == ["DMARC_POLICY", "DMARC_EXTERNAL_REPORT_UNAUTHORIZED"]


def test_external_checks_ask_walk_and_authorization_in_one_second_round():
    records = record("v=DMARC1; p=reject; rua=mailto:agg@mail.reports.net")
    with RoundsBackend(records) as backend:
        result, _ = run({}, client=backend.client())
    assert codes(result) == ["DMARC_POLICY", "DMARC_EXTERNAL_REPORT_UNAUTHORIZED"]
    assert backend.rounds == 2, backend.batches  # two round trips
    assert backend.batches[1] == [
        ("_dmarc.mail.reports.net", "TXT"),
        ("_dmarc.net", "TXT"),
        ("_dmarc.reports.net", "TXT"),
        ("example.com._report._dmarc.mail.reports.net", "TXT"),
    ]


def test_an_unanswered_authorization_is_not_judged():
    result, _ = run(
        {
            ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject; rua=mailto:agg@reports.net"],
            ("example.com._report._dmarc.reports.net", "TXT"): "SERVFAIL",
        }
    )
    assert result.outcome is Outcome.ERROR
    assert "DMARC_EXTERNAL_REPORT_UNAUTHORIZED" not in codes(result)


def test_a_destination_whose_organization_is_unknown_is_not_judged():
    result, _ = run(
        {
            ("_dmarc.a.example.com", "TXT"): ["v=DMARC1; p=reject; rua=mailto:r@b.example.com"],
            ("_dmarc.example.com", "TXT"): "SERVFAIL",
        },
        domain="a.example.com",
    )
    assert result.outcome is Outcome.ERROR
    assert "DMARC_EXTERNAL_REPORT_UNAUTHORIZED" not in codes(result)


def test_a_thousand_report_uris_are_bounded():
    uris = ",".join(f"mailto:r@d{i}.example.net" for i in range(1000))
    result, client = run(record(f"v=DMARC1; p=reject; rua={uris}"))
    found = [f for f in result.findings if f.code == "DMARC_EXTERNAL_REPORT_UNAUTHORIZED"]
    assert len(found) == 10
    assert client.stats.queries < 60


# --- legacy records ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("_domainkey.example.com", "o=~; r=postmaster@example.com"),
        ("_domainkey.example.com", "t=y; o=-"),
        ("_adsp._domainkey.example.com", "dkim=all"),
        ("_ssp._domainkey.example.com", "dkim=strict; t=y"),
    ],
)
def test_legacy_policy_records_are_info(name, text):
    result, _ = run({("_dmarc.example.com", "TXT"): [GOOD], (name, "TXT"): [text]})
    finding = only(result, "LEGACY_POLICY_RECORD")
    assert finding.severity is Severity.INFO
    assert finding.subject == name


def test_a_dkim_key_at_domainkey_is_not_a_legacy_policy():
    result, _ = run(
        {
            ("_dmarc.example.com", "TXT"): [GOOD],
            ("_domainkey.example.com", "TXT"): ["v=DKIM1; p=abc"],
        }
    )
    assert codes(result) == ["DMARC_POLICY"]


def test_legacy_records_are_reported_even_when_the_dmarc_lookup_fails():
    result, _ = run(
        {
            ("_dmarc.example.com", "TXT"): "SERVFAIL",
            ("_adsp._domainkey.example.com", "TXT"): ["dkim=unknown"],
        }
    )
    assert result.outcome is Outcome.ERROR
    assert codes(result) == ["LEGACY_POLICY_RECORD"]


def test_a_failed_legacy_lookup_ends_in_error_after_the_findings():
    result, _ = run(
        {
            ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=none; rua=mailto:d@example.com"],
            ("_ssp._domainkey.example.com", "TXT"): "TIMEOUT",
        }
    )
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.TIMEOUT
    assert codes(result) == ["DMARC_POLICY", "DMARC_POLICY_NONE"]


# --- hostile records --------------------------------------------------------------------------


def test_a_10_kb_record_gives_findings_not_a_traceback():
    big = "v=DMARC1; p=reject; rua=mailto:d@example.com; " + "; ".join(
        f"x{chr(97 + i % 26)}{chr(97 + i // 26)}={'a' * 40}" for i in range(250)
    )
    chunks = tuple(big[i : i + 255] for i in range(0, len(big), 255))
    result, _ = run({("_dmarc.example.com", "TXT"): [chunks]})
    assert result.outcome is Outcome.COMPLETED
    unknown = only(result, "DMARC_UNKNOWN_TAG")
    assert all(len(v) <= 400 for v in unknown.evidence.values())
    assert len(big) > 10_000


def test_a_record_with_thousands_of_bad_tags_gives_a_bounded_number_of_findings():
    result, _ = run(record("v=DMARC1; p=reject; " + "; ".join(f"t{i}=x" for i in range(2000))))
    assert 1 <= codes(result).count("DMARC_SYNTAX_ERROR") <= 11


def test_garbage_after_the_version_is_a_syntax_error():
    result, _ = run(record("v=DMARC1; " + "\x00\x01garbage" * 700))
    assert result.outcome is Outcome.COMPLETED
    assert "DMARC_SYNTAX_ERROR" in codes(result)


def test_non_ascii_bytes_give_findings():
    result, _ = run(
        {("_dmarc.example.com", "TXT"): [b"v=DMARC1; p=r\xe9ject; rua=mailto:d@example.com"]}
    )
    assert result.outcome is Outcome.COMPLETED
    assert set(codes(result)) == {"DMARC_POLICY", "DMARC_SYNTAX_ERROR", "DMARC_POLICY_NONE"}


def test_non_ascii_garbage_instead_of_a_record_is_missing():
    result, _ = run({("_dmarc.example.com", "TXT"): [b"\xff\xfe\x00 \xc3\x28 binary"]})
    assert codes(result) == ["DMARC_MISSING"]


def test_an_internationalised_target_domain_is_asked_as_an_a_label():
    result, _ = run(
        {
            ("_dmarc.xn--bcher-kva.example", "TXT"): [
                "v=DMARC1; p=reject; rua=mailto:d@xn--bcher-kva.example"
            ]
        },
        domain="Bücher.example",
    )
    assert codes(result) == ["DMARC_POLICY"]

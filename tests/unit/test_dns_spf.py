"""dns.spf against records held in memory (StaticBackend through the resolver door)."""

from __future__ import annotations

import dataclasses

import pytest
import spf as pyspf
from dnsrounds import RoundsBackend

from probes.checks.dns_spf import MAX_FOLLOWED, DnsSpf, walk_spf
from probes.lookup.spf import evaluate
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import Redactor, run_one

D = "example.com"
# A hang guard (pytest-timeout), not a speed limit: speed is measured in benchmarks.
HANG_GUARD_S = 30


def run(records, *, ips=(), domain=D, client=None, thresholds=None):
    client = client or DnsClient(StaticBackend(records))
    target = Target(domain=domain, sending_ips=tuple(ips))
    if thresholds is not None:
        target = dataclasses.replace(target, thresholds=thresholds)
    result = run_one(DnsSpf(), target, Net(dns_client=client), Redactor())
    return result, client


def codes(result):
    return sorted(f.code for f in result.findings)


def only(result, code):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, codes(result)
    return found[0]


def problems(result):
    """Codes at warn or fail."""
    return sorted(f.code for f in result.findings if f.severity is not Severity.INFO)


# --- the record at the domain -----------------------------------------------------------------


def test_a_clean_record_gives_only_the_info_count():
    result, _ = run(
        {
            (D, "TXT"): [
                "v=spf1 a mx include:_spf.provider.net -all",
                "google-site-verification=x",
            ],
            (D, "A"): ["192.0.2.1"],
            (D, "AAAA"): ["2001:db8::1"],
            (D, "MX"): [(10, "mx.example.com")],
            ("mx.example.com", "A"): ["192.0.2.25"],
            ("mx.example.com", "AAAA"): ["2001:db8::25"],
            ("_spf.provider.net", "TXT"): ["v=spf1 ip4:198.51.100.0/24 ~all"],
        }
    )
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == ["SPF_LOOKUP_COUNT"]
    info = only(result, "SPF_LOOKUP_COUNT")
    assert info.severity is Severity.INFO
    assert info.evidence["count"] == "3"
    assert "include:_spf.provider.net=0" in info.evidence["tree"]
    assert info.reproduce == "dig +short TXT example.com"


def test_no_spf_record_is_spf_missing():
    for records in (
        {(D, "TXT"): ["some other text"]},
        {(D, "A"): ["192.0.2.1"]},  # the name exists, no TXT
        {},  # NXDOMAIN
    ):
        result, _ = run(records)
        assert codes(result) == ["SPF_MISSING"], records
        assert result.outcome is Outcome.COMPLETED


def test_two_spf_records_are_multiple_records():
    result, _ = run({(D, "TXT"): ["v=spf1 -all", "V=SPF1 +all"]})
    finding = only(result, "SPF_MULTIPLE_RECORDS")
    assert finding.evidence["count"] == "2"
    assert "SPF_SYNTAX_ERROR" not in codes(result)


def test_strings_of_one_txt_record_are_joined_without_separator():
    result, _ = run({(D, "TXT"): [("v=spf1 ip4:192.0.2.1", "0 -all")]}, ips=["192.0.2.10"])
    assert problems(result) == []
    # Joined with a space the record would be "ip4:192.0.2.1 0": a syntax error, and .10 fails.
    result, _ = run({(D, "TXT"): [("v=spf1 ", "ip4:192.0.2.1", "0/24", " -all")]})
    assert problems(result) == []


def test_a_syntax_error_names_the_bad_term():
    result, _ = run({(D, "TXT"): ["v=spf1 a:mail.example ip4:192.0.2.300 -all"]})
    finding = only(result, "SPF_SYNTAX_ERROR")
    assert finding.evidence["term"] == "ip4:192.0.2.300"
    assert finding.subject == D


def test_non_ascii_bytes_in_the_record_are_a_syntax_error():
    for raw in (b"v=spf1 a:\xef\xbb\xbfgarbage.example.net -all", b"v=spf1 \x96all"):
        result, _ = run({(D, "TXT"): [raw]})
        assert "SPF_SYNTAX_ERROR" in codes(result), raw
        assert result.outcome is Outcome.COMPLETED


# --- lookup counting ------------------------------------------------------------------------


def test_lookups_are_counted_across_includes_and_redirect():
    records = {
        (D, "TXT"): ["v=spf1 a mx include:a.test ip4:192.0.2.1 redirect=r.test"],
        ("a.test", "TXT"): ["v=spf1 include:b.test exists:x.a.test ptr ?all"],
        ("b.test", "TXT"): ["v=spf1 a:h1.b.test a:h2.b.test ip6:2001:db8::/32 -all"],
        ("r.test", "TXT"): ["v=spf1 mx:r.test -all a"],  # the a after all never runs
        (D, "A"): ["192.0.2.2"],
        (D, "MX"): [(0, "mx.example.com")],
        ("mx.example.com", "A"): ["192.0.2.3"],
        ("x.a.test", "A"): ["127.0.0.2"],
        ("h1.b.test", "A"): ["192.0.2.4"],
        ("h2.b.test", "A"): ["192.0.2.5"],
        ("r.test", "MX"): [(0, "mx.example.com")],
    }
    for name in (D, "mx.example.com", "h1.b.test", "h2.b.test"):
        records[(name, "AAAA")] = ["2001:db8::1"]
    walk = walk_spf(DnsClient(StaticBackend(records)), D)
    # a, mx, include, redirect (4) + include, exists, ptr (3) + a, a (2) + mx (1)
    assert walk.count == 10
    result, _ = run(records)
    assert "SPF_TOO_MANY_LOOKUPS" not in codes(result)
    assert only(result, "SPF_LOOKUP_COUNT").evidence["count"] == "10"


def test_the_eleventh_lookup_is_too_many_with_the_include_tree_as_evidence():
    records = {
        (D, "TXT"): ["v=spf1 include:a.test include:b.test -all"],
        ("a.test", "TXT"): ["v=spf1 " + " ".join(f"a:h{i}.a.test" for i in range(6)) + " -all"],
        ("b.test", "TXT"): ["v=spf1 include:c.test a:h.b.test -all"],
        ("c.test", "TXT"): ["v=spf1 exists:e.c.test -all"],
    }
    records.update({(f"h{i}.a.test", "A"): ["192.0.2.9"] for i in range(6)})
    records.update({("h.b.test", "A"): ["192.0.2.9"], ("e.c.test", "A"): ["127.0.0.2"]})
    result, _ = run(records)
    finding = only(result, "SPF_TOO_MANY_LOOKUPS")
    assert finding.evidence["count"] == "11"
    assert finding.evidence["tree"] == (
        "example.com=2 (include:a.test=6, include:b.test=2 (include:c.test=1))"
    )
    assert "SPF_LOOKUP_COUNT" not in codes(result)


def test_redirect_is_not_followed_or_counted_when_all_is_present():
    records = {
        (D, "TXT"): ["v=spf1 ip4:192.0.2.1 redirect=r.test -all"],
        ("r.test", "TXT"): ["v=spf1 +all"],
    }
    result, _ = run(records)
    assert problems(result) == []
    assert only(result, "SPF_LOOKUP_COUNT").evidence["count"] == "0"


def test_an_mx_with_more_than_ten_mx_records_is_too_many_lookups():
    records = {
        (D, "TXT"): ["v=spf1 mx -all"],
        (D, "MX"): [(i, f"mx{i}.example.com") for i in range(11)],
    }
    finding = only(run(records)[0], "SPF_TOO_MANY_LOOKUPS")
    assert finding.evidence["count"] == "11"
    assert finding.evidence["term"] == "mx"
    records[(D, "MX")] = records[(D, "MX")][:10]
    records.update({(f"mx{i}.example.com", "A"): ["192.0.2.1"] for i in range(10)})
    records.update({(f"mx{i}.example.com", "AAAA"): ["2001:db8::1"] for i in range(10)})
    assert problems(run(records)[0]) == []


def test_more_than_two_void_lookups_fail():
    records = {(D, "TXT"): ["v=spf1 a:nx1.example.com a:nx2.example.com exists:nx3.test ?all"]}
    finding = only(run(records)[0], "SPF_TOO_MANY_VOID_LOOKUPS")
    assert finding.severity is Severity.FAIL
    assert finding.evidence["count_ipv4_client"] == "3"
    records[(D, "TXT")] = ["v=spf1 a:nx1.example.com a:nx2.example.com -all"]
    assert "SPF_TOO_MANY_VOID_LOOKUPS" not in codes(run(records)[0])


def test_an_empty_include_target_and_an_empty_mx_are_void_lookups():
    records = {
        (D, "TXT"): ["v=spf1 mx include:nx.test a:nx.example.com -all"],
        (D, "A"): ["192.0.2.1"],  # the name exists without MX: NOERROR, no answer
    }
    result, _ = run(records)
    assert "SPF_TOO_MANY_VOID_LOOKUPS" in codes(result)
    assert "SPF_INCLUDE_MISSING" in codes(result)


@pytest.mark.parametrize(
    ("ips", "severity"),
    [((), Severity.INFO), (("192.0.2.1",), Severity.INFO), (("2001:db8::1",), Severity.WARN)],
)
def test_hosts_without_aaaa_are_void_only_for_an_ipv6_client(ips, severity):
    """A warning only for a domain that declares an IPv6 sending IP; otherwise info."""
    records = {
        (D, "TXT"): ["v=spf1 a a:h1.example.com a:h2.example.com -all"],
        (D, "A"): ["192.0.2.1"],
        ("h1.example.com", "A"): ["192.0.2.2"],
        ("h2.example.com", "A"): ["192.0.2.3"],
    }
    result, _ = run(records, ips=ips)
    finding = only(result, "SPF_TOO_MANY_VOID_LOOKUPS_IPV6")
    assert finding.severity is severity
    assert finding.evidence["count_ipv4_client"] == "0"
    assert finding.evidence["count_ipv6_client"] == "3"
    assert "SPF_TOO_MANY_VOID_LOOKUPS" not in codes(result)


# --- includes -----------------------------------------------------------------------------


def test_an_include_loop_is_reported_with_its_chain():
    records = {
        (D, "TXT"): ["v=spf1 include:a.test -all"],
        ("a.test", "TXT"): ["v=spf1 include:b.test -all"],
        ("b.test", "TXT"): ["v=spf1 include:a.test -all"],
    }
    result, _ = run(records)
    finding = only(result, "SPF_INCLUDE_LOOP")
    assert finding.evidence["chain"] == (
        "example.com > include:a.test > include:b.test > include:a.test"
    )
    assert result.outcome is Outcome.COMPLETED


def test_a_redirect_to_itself_is_a_loop():
    result, _ = run({(D, "TXT"): ["v=spf1 ip4:192.0.2.1 redirect=example.com"]})
    assert "SPF_INCLUDE_LOOP" in codes(result)


def test_the_same_include_in_two_branches_is_not_a_loop_and_counts_twice():
    records = {
        (D, "TXT"): ["v=spf1 include:a.test include:b.test -all"],
        ("a.test", "TXT"): ["v=spf1 include:c.test -all"],
        ("b.test", "TXT"): ["v=spf1 include:c.test -all"],
        ("c.test", "TXT"): ["v=spf1 a:h.c.test -all"],
        ("h.c.test", "A"): ["192.0.2.1"],
        ("h.c.test", "AAAA"): ["2001:db8::1"],
    }
    result, _ = run(records)
    assert problems(result) == []
    assert only(result, "SPF_LOOKUP_COUNT").evidence["count"] == "6"


def test_include_and_redirect_targets_without_spf_are_include_missing():
    records = {
        (D, "TXT"): ["v=spf1 include:nospf.test include:gone.test redirect=r.test"],
        ("nospf.test", "TXT"): ["not spf"],
        ("r.test", "A"): ["192.0.2.1"],
    }
    result, _ = run(records)
    missing = [f for f in result.findings if f.code == "SPF_INCLUDE_MISSING"]
    assert sorted(f.subject for f in missing) == ["gone.test", "nospf.test", "r.test"]
    assert {f.evidence["chain"] for f in missing} >= {"example.com > redirect=r.test"}


def test_errors_in_included_records_are_reported_for_that_record():
    records = {
        (D, "TXT"): ["v=spf1 include:bad.test include:two.test -all"],
        ("bad.test", "TXT"): ["v=spf1 include +all"],
        ("two.test", "TXT"): ["v=spf1 -all", "v=spf1 ~all"],
    }
    result, _ = run(records)
    syntax = only(result, "SPF_SYNTAX_ERROR")
    assert (syntax.subject, syntax.evidence["term"]) == ("bad.test", "include")
    assert only(result, "SPF_MULTIPLE_RECORDS").subject == "two.test"


def test_domain_macros_in_targets_are_expanded_and_client_macros_are_not_followed():
    records = {
        (D, "TXT"): ["v=spf1 include:_spf.%{d} include:%{ir}.%{v}._spf.%{d} -all"],
        ("_spf.example.com", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"],
    }
    result, _ = run(records)
    assert problems(result) == []
    info = only(result, "SPF_LOOKUP_COUNT")
    assert info.evidence["count"] == "2"
    assert "not followed (macro)" in info.evidence["tree"]


# --- all and ptr ------------------------------------------------------------------------------


@pytest.mark.parametrize("record", ["v=spf1 +all", "v=spf1 ip4:192.0.2.1 all", "v=spf1 a ?all"])
def test_a_pass_or_neutral_all_is_permissive(record):
    result, _ = run({(D, "TXT"): [record], (D, "A"): ["192.0.2.1"]})
    assert only(result, "SPF_PERMISSIVE_ALL").subject == D


def test_a_permissive_all_in_the_record_reached_by_redirect_counts():
    records = {(D, "TXT"): ["v=spf1 redirect=r.test"], ("r.test", "TXT"): ["v=spf1 ?all"]}
    result, _ = run(records)
    assert only(result, "SPF_PERMISSIVE_ALL").subject == "r.test"
    assert "SPF_NO_ALL" not in codes(result)


def test_a_pass_all_in_an_included_record_passes_everyone_but_neutral_there_does_not():
    records = {
        (D, "TXT"): ["v=spf1 include:open.test include:neutral.test -include:neg.test -all"],
        ("open.test", "TXT"): ["v=spf1 +all"],
        ("neutral.test", "TXT"): ["v=spf1 ?all"],
        ("neg.test", "TXT"): ["v=spf1 redirect=neg2.test"],  # under -include: a match fails
        ("neg2.test", "TXT"): ["v=spf1 +all"],
    }
    result, _ = run(records)
    assert [f.subject for f in result.findings if f.code == "SPF_PERMISSIVE_ALL"] == ["open.test"]


def test_no_all_and_no_redirect_warns_and_softfail_or_fail_all_does_not():
    result, _ = run({(D, "TXT"): ["v=spf1 ip4:192.0.2.1"]})
    assert problems(result) == ["SPF_NO_ALL"]
    assert only(result, "SPF_NO_ALL").severity is Severity.WARN
    for record in ("v=spf1 ip4:192.0.2.1 ~all", "v=spf1 ip4:192.0.2.1 -all"):
        assert problems(run({(D, "TXT"): [record]})[0]) == []


def test_ptr_is_a_warning_wherever_it_is_used():
    records = {
        (D, "TXT"): ["v=spf1 ptr include:inc.test -all"],
        ("inc.test", "TXT"): ["v=spf1 ptr:inc.test -all"],
    }
    result, _ = run(records)
    found = [f for f in result.findings if f.code == "SPF_PTR_MECHANISM"]
    assert sorted(f.subject for f in found) == ["example.com", "inc.test"]
    assert all(f.severity is Severity.WARN for f in found)


# --- per-IP evaluation ------------------------------------------------------------------------


SENDERS = {
    (D, "TXT"): ["v=spf1 a:out.example.com ip6:2001:db8:25::/48 exists:%{i}._ok.%{d} -all"],
    ("out.example.com", "A"): ["192.0.2.26"],
    ("out.example.com", "AAAA"): ["2001:db8::26"],
    ("192.0.2.77._ok.example.com", "A"): ["127.0.0.2"],
}


def test_declared_sending_ips_that_pass_give_no_finding():
    result, _ = run(SENDERS, ips=["192.0.2.26", "2001:db8:25::1", "2001:db8::26", "192.0.2.77"])
    assert problems(result) == []


def test_a_sending_ip_that_does_not_pass_is_not_authorized_with_the_result():
    result, _ = run(SENDERS, ips=["192.0.2.26", "198.51.100.9", "2001:db8:99::1"])
    found = [f for f in result.findings if f.code == "SPF_IP_NOT_AUTHORIZED"]
    assert sorted(f.subject for f in found) == ["198.51.100.9", "2001:db8:99::1"]
    assert {f.evidence["result"] for f in found} == {"fail"}
    assert all(f.evidence["mechanism"] == "-all" for f in found)


def test_a_permerror_record_makes_every_ip_not_authorized():
    result, _ = run({(D, "TXT"): ["v=spf1 ip4:192.0.2.1 moo -all"]}, ips=["192.0.2.1"])
    assert only(result, "SPF_IP_NOT_AUTHORIZED").evidence["result"] == "permerror"


def test_evaluation_asks_through_the_door_without_touching_pyspf_globals():
    before = pyspf.DNSLookup
    client = DnsClient(StaticBackend(SENDERS))
    verdict = evaluate(client, "192.0.2.77", f"postmaster@{D}", D)
    assert verdict.result == "pass"
    assert verdict.mechanism == "exists:%{i}._ok.%{d}"
    assert client.stats.queries >= 3
    assert pyspf.DNSLookup is before


def test_a_bad_sending_ip_is_a_configuration_error():
    result, _ = run(SENDERS, ips=["not-an-ip"])
    assert (result.outcome, result.error) == (Outcome.ERROR, ErrorReason.CONFIG)


# --- DNS failures -----------------------------------------------------------------------------


def test_a_failed_apex_lookup_is_an_error_not_a_missing_record():
    for rcode, reason in (("SERVFAIL", ErrorReason.DNS), ("TIMEOUT", ErrorReason.TIMEOUT)):
        result, _ = run({(D, "TXT"): rcode})
        assert (result.outcome, result.error) == (Outcome.ERROR, reason)
        assert result.findings == ()


def test_a_failed_include_keeps_the_findings_and_ends_in_error():
    records = {
        (D, "TXT"): ["v=spf1 include:broken.test include:nospf.test ptr -all"],
        ("broken.test", "TXT"): "REFUSED",
    }
    result, _ = run(records)
    assert result.outcome is Outcome.ERROR
    assert result.error is ErrorReason.DNS
    assert "broken.test" in (result.error_detail or "")
    assert {"SPF_INCLUDE_MISSING", "SPF_PTR_MECHANISM"} <= set(codes(result))
    assert "SPF_LOOKUP_COUNT" not in codes(result)


def test_a_temperror_evaluation_is_an_error_not_an_unauthorized_ip():
    records = {
        (D, "TXT"): ["v=spf1 exists:%{i}.bl.example.com -all"],
        ("192.0.2.5.bl.example.com", "A"): "SERVFAIL",
    }
    result, _ = run(records, ips=["192.0.2.5"])
    assert result.outcome is Outcome.ERROR
    assert "SPF_IP_NOT_AUTHORIZED" not in codes(result)
    assert "192.0.2.5.bl.example.com" in (result.error_detail or "")


def test_a_cname_loop_is_no_data():
    records = {
        (D, "TXT"): ["v=spf1 include:loop.test -all"],
        ("loop.test", "CNAME"): ["loop2.test"],
        ("loop2.test", "CNAME"): ["loop.test"],
    }
    result, _ = run(records, ips=["192.0.2.1"])
    assert result.outcome is Outcome.COMPLETED
    assert "SPF_INCLUDE_MISSING" in codes(result)
    assert only(result, "SPF_IP_NOT_AUTHORIZED").evidence["result"] == "permerror"
    result, _ = run({(D, "CNAME"): [D]})
    assert codes(result) == ["SPF_MISSING"]


# --- hostile input and depth ------------------------------------------------------------------


@pytest.mark.timeout(HANG_GUARD_S)
def test_a_hundred_includes_are_bounded_and_reported_as_more_than_the_cap():
    records = {(D, "TXT"): ["v=spf1 " + " ".join(f"include:i{i}.test" for i in range(100))]}
    records.update({(f"i{i}.test", "TXT"): [f"v=spf1 a:h{i}.test -all"] for i in range(100)})
    result, client = run(records, ips=["192.0.2.1"])
    finding = only(result, "SPF_TOO_MANY_LOOKUPS")
    assert finding.evidence["count"] == f"more than {MAX_FOLLOWED}"
    assert client.stats.queries <= 3 * MAX_FOLLOWED + 10
    assert only(result, "SPF_IP_NOT_AUTHORIZED").evidence["result"] == "permerror"


@pytest.mark.timeout(HANG_GUARD_S)
def test_deep_nesting_stops_at_the_cap():
    records = {(D, "TXT"): ["v=spf1 include:n0.test -all"]}
    records.update({(f"n{i}.test", "TXT"): [f"v=spf1 include:n{i + 1}.test"] for i in range(200)})
    result, client = run(records)
    assert only(result, "SPF_TOO_MANY_LOOKUPS").evidence["count"] == f"more than {MAX_FOLLOWED}"
    assert client.stats.queries <= MAX_FOLLOWED + 2


@pytest.mark.timeout(HANG_GUARD_S)
def test_a_10kb_record_gives_findings_with_bounded_work():
    terms = " ".join(f"a:h{i}.example.com" for i in range(600))
    record = "v=spf1 " + terms + " -all"
    assert len(record) > 10_000
    chunks = tuple(record[i : i + 255] for i in range(0, len(record), 255))
    result, client = run({(D, "TXT"): [chunks]}, ips=["192.0.2.1"])
    assert "SPF_TOO_MANY_LOOKUPS" in codes(result)
    assert "SPF_TOO_MANY_VOID_LOOKUPS" in codes(result)
    assert client.stats.queries <= 3 * MAX_FOLLOWED + 10


def test_the_walk_asks_each_level_in_parallel():
    # Three levels of includes, each record with a and mx terms: 27 questions, 5 rounds deep:
    # apex TXT; a/mx and the includes; their a hosts and includes, the MX host's addresses;
    # the mx: term of the last level; its MX host's addresses. The evaluation of the sending
    # IP after the walk is answered from the cache.
    records = {(D, "TXT"): ["v=spf1 a mx include:l1a.test include:l1b.test include:l1c.test -all"]}
    records.update({(D, "A"): ["192.0.2.1"], (D, "MX"): [(0, "mx.example.com")]})
    records.update({("mx.example.com", "A"): ["192.0.2.2"]})
    for name in ("l1a", "l1b", "l1c"):
        records[(f"{name}.test", "TXT")] = [f"v=spf1 include:{name}-2.test a:h.{name}.test ~all"]
        records[(f"{name}-2.test", "TXT")] = [f"v=spf1 mx:{name}-2.test ~all"]
        records[(f"{name}-2.test", "MX")] = [(0, f"mx.{name}.test")]
    with RoundsBackend(records) as backend:
        result, client = run(records, client=backend.client(), ips=["192.0.2.200"])
    assert "SPF_IP_NOT_AUTHORIZED" in codes(result)
    assert client.stats.queries == sum(len(batch) for batch in backend.batches) == 27
    # As many rounds as the longest chain of dependent questions, whatever their number.
    assert backend.rounds == 5, backend.batches
    includes = [(f"{name}.test", "TXT") for name in ("l1a", "l1b", "l1c")]
    assert set(includes) <= set(backend.batches[1])
    last_mx = [(f"{name}-2.test", "MX") for name in ("l1a", "l1b", "l1c")]
    assert backend.batches[3] == last_mx

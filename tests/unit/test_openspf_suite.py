"""The OpenSPF RFC 7208 test suite through mailprobe's SPF path.

The suite is vendored in tests/data/openspf/ (its BSD licence beside it). Every suite case runs
pyspf (`probes.lookup.spf.evaluate`) with each document's zone data served by a
StaticBackend through the resolver door: one pytest case per suite case. A second
set of cases runs the dns.spf analyzer on the suite's "the record itself is broken" cases and
checks that it names the cause with the right finding code (SUITE_ANALYZER_CODES).

How the zone data becomes DNS data (the conventions of the suite's own driver, pyspf's
test/testspf.py):
- RFC 7208 removed the SPF RR type (99) and mailprobe only asks TXT. As the suite's header says,
  drivers copy each `SPF:` record to TXT unless the name has explicit `TXT:` data (`TXT: NONE`
  meaning "no TXT records"); the SPF records are also served as type SPF, never asked.
- `TIMEOUT` makes every question about that name that has no data time out (rcode TIMEOUT);
  the data listed for the name is still answered (spftimeout: the TXT answers, SPF times out).
- Strings are bytes as the YAML author wrote them: "\\xEF" is the byte 0xEF (latin-1), so the
  non-ASCII cases carry the raw bytes a DNS server would send.
- A TXT record with no strings (`SPF: [ ]`, null.example.com) cannot exist on the wire (a TXT
  RDATA holds at least one string); it is dropped.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from probes.checks.dns_spf import DnsSpf
from probes.lookup.spf import evaluate
from probes.model import Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend

SUITE = Path(__file__).resolve().parents[1] / "data" / "openspf"
SUITE_FILE = SUITE / "rfc7208-tests.yml"

# Cases whose result the design deliberately does not reproduce: {case id: reason}.
XFAIL: dict[str, str] = {}

# Suite cases whose expected permerror is caused by the record at the mailfrom domain (syntax
# or processing limits) and the finding codes the analyzer must report for them. Cases are
# "<section> / <case>". The analyzer judges the domain's published policy without a client
# IP, so cases whose permerror depends on the client (ptr, %{i} macros) are not listed; nor
# are cases where the domain-spec depends on the HELO or sender.
SUITE_ANALYZER_CODES: dict[str, set[str]] = {
    # Initial processing
    "non-ascii-policy": {"SPF_SYNTAX_ERROR"},
    "non-ascii-mech": {"SPF_SYNTAX_ERROR"},
    "non-ascii-result": {"SPF_SYNTAX_ERROR"},
    "control-char-policy": {"SPF_SYNTAX_ERROR"},
    "badip4": {"SPF_SYNTAX_ERROR"},
    # Selecting records
    "multitxt1": {"SPF_MULTIPLE_RECORDS"},
    "multitxt2": {"SPF_MULTIPLE_RECORDS"},
    "multispf1": {"SPF_MULTIPLE_RECORDS"},
    # Record evaluation
    "detect-errors-anywhere": {"SPF_SYNTAX_ERROR"},
    "modifier-charset-bad1": {"SPF_SYNTAX_ERROR"},
    "modifier-charset-bad2": {"SPF_SYNTAX_ERROR"},
    "redirect-is-modifier": {"SPF_SYNTAX_ERROR"},
    "invalid-domain": {"SPF_SYNTAX_ERROR"},
    "invalid-domain-empty-label": {"SPF_SYNTAX_ERROR"},
    "invalid-domain-long": {"SPF_SYNTAX_ERROR"},
    # ALL mechanism syntax
    "all-dot": {"SPF_SYNTAX_ERROR"},
    "all-arg": {"SPF_SYNTAX_ERROR"},
    "all-cidr": {"SPF_SYNTAX_ERROR"},
    # PTR mechanism syntax
    "ptr-cidr": {"SPF_SYNTAX_ERROR"},
    "ptr-empty-domain": {"SPF_SYNTAX_ERROR"},
    # A mechanism syntax
    "a-bad-cidr4": {"SPF_SYNTAX_ERROR"},
    "a-bad-cidr6": {"SPF_SYNTAX_ERROR"},
    "a-dual-cidr-ip4-err": {"SPF_SYNTAX_ERROR"},
    "a-bad-domain": {"SPF_SYNTAX_ERROR"},
    "a-null": {"SPF_SYNTAX_ERROR"},
    "a-numeric": {"SPF_SYNTAX_ERROR"},
    "a-numeric-toplabel": {"SPF_SYNTAX_ERROR"},
    "a-bad-toplabel": {"SPF_SYNTAX_ERROR"},
    "a-only-toplabel": {"SPF_SYNTAX_ERROR"},
    "a-only-toplabel-trailing-dot": {"SPF_SYNTAX_ERROR"},
    "a-empty-domain": {"SPF_SYNTAX_ERROR"},
    # Include mechanism semantics and syntax
    "include-permerror": {"SPF_SYNTAX_ERROR"},  # the syntax error is in the included record
    "include-syntax-error": {"SPF_SYNTAX_ERROR"},
    "include-cidr": {"SPF_SYNTAX_ERROR"},
    "include-none": {"SPF_INCLUDE_MISSING"},
    "include-empty-domain": {"SPF_SYNTAX_ERROR"},
    # MX mechanism syntax
    "mx-bad-cidr4": {"SPF_SYNTAX_ERROR"},
    "mx-bad-cidr6": {"SPF_SYNTAX_ERROR"},
    "mx-bad-domain": {"SPF_SYNTAX_ERROR"},
    "mx-null": {"SPF_SYNTAX_ERROR"},
    "mx-numeric-top-label": {"SPF_SYNTAX_ERROR"},
    "mx-bad-toplab": {"SPF_SYNTAX_ERROR"},
    "mx-empty-domain": {"SPF_SYNTAX_ERROR"},
    # EXISTS mechanism syntax
    "exists-empty-domain": {"SPF_SYNTAX_ERROR"},
    "exists-implicit": {"SPF_SYNTAX_ERROR"},
    "exists-cidr": {"SPF_SYNTAX_ERROR"},
    # IP4 / IP6 mechanism syntax
    "cidr4-33": {"SPF_SYNTAX_ERROR"},
    "cidr4-032": {"SPF_SYNTAX_ERROR"},
    "bare-ip4": {"SPF_SYNTAX_ERROR"},
    "bad-ip4-port": {"SPF_SYNTAX_ERROR"},
    "bad-ip4-short": {"SPF_SYNTAX_ERROR"},
    "ip4-dual-cidr": {"SPF_SYNTAX_ERROR"},
    "bare-ip6": {"SPF_SYNTAX_ERROR"},
    "cidr6-129": {"SPF_SYNTAX_ERROR"},
    "cidr6-bad": {"SPF_SYNTAX_ERROR"},
    "ip6-bad1": {"SPF_SYNTAX_ERROR"},
    # Semantics of exp and other modifiers
    "redirect-none": {"SPF_INCLUDE_MISSING"},
    "redirect-syntax-error": {"SPF_SYNTAX_ERROR"},
    "invalid-modifier": {"SPF_SYNTAX_ERROR"},
    "empty-modifier-name": {"SPF_SYNTAX_ERROR"},
    "exp-empty-domain": {"SPF_SYNTAX_ERROR"},
    "exp-syntax-error": {"SPF_SYNTAX_ERROR"},
    "exp-twice": {"SPF_SYNTAX_ERROR"},
    "redirect-empty-domain": {"SPF_SYNTAX_ERROR"},
    "redirect-twice": {"SPF_SYNTAX_ERROR"},
    "unknown-modifier-syntax": {"SPF_SYNTAX_ERROR"},
    # Macro expansion rules
    "exp-only-macro-char": {"SPF_SYNTAX_ERROR"},
    "invalid-macro-char": {"SPF_SYNTAX_ERROR"},
    "invalid-embedded-macro-char": {"SPF_SYNTAX_ERROR"},
    "invalid-trailing-macro-char": {"SPF_SYNTAX_ERROR"},
    "undef-macro": {"SPF_SYNTAX_ERROR"},
    # Processing limits
    "redirect-loop": {"SPF_INCLUDE_LOOP"},
    "include-loop": {"SPF_INCLUDE_LOOP"},
    "mx-limit": {"SPF_TOO_MANY_LOOKUPS"},
    "mech-over-limit": {"SPF_TOO_MANY_LOOKUPS"},
    "include-over-limit": {"SPF_TOO_MANY_LOOKUPS"},
    "void-over-limit": {"SPF_TOO_MANY_VOID_LOOKUPS"},
}
# The analyzer counts what a client that matches nothing makes a receiver do (the most any
# client costs); the suite counts for its one test host, which may match early. Where the two
# differ the analyzer reports the limit and the suite case still passes: {case: codes}.
SUITE_ANALYZER_WORST_CASE: dict[str, set[str]] = {
    # e8: "a include:inc(8 x a) ip4:1.2.3.4 mx -all": the suite's host matches ip4 after 10
    # lookups; any other client evaluates mx as the 11th (permerror instead of fail).
    "include-at-limit": {"SPF_TOO_MANY_LOOKUPS"},
    # e6 names only IPv4 hosts: an IPv6 client's AAAA lookups are void in 9 terms.
    "mech-at-limit": {"SPF_TOO_MANY_VOID_LOOKUPS_IPV6"},
}
# Suite cases at or under a limit: the analyzer must not report the limit.
SUITE_ANALYZER_CLEAN: dict[str, set[str]] = {
    "mech-at-limit": {"SPF_TOO_MANY_LOOKUPS", "SPF_TOO_MANY_VOID_LOOKUPS"},
    "void-at-limit": {"SPF_TOO_MANY_VOID_LOOKUPS", "SPF_TOO_MANY_LOOKUPS"},
    "false-a-limit": {"SPF_TOO_MANY_LOOKUPS"},
    "redirect-after-mechanisms1": {"SPF_INCLUDE_LOOP", "SPF_TOO_MANY_LOOKUPS"},
    "two-spaces": {"SPF_SYNTAX_ERROR"},
    "trailing-space": {"SPF_SYNTAX_ERROR"},
    "modifier-charset-good": {"SPF_SYNTAX_ERROR"},
    "a-colon-domain": {"SPF_SYNTAX_ERROR"},
    "a-dash-in-toplabel": {"SPF_SYNTAX_ERROR"},
    "macro-mania-in-domain": {"SPF_SYNTAX_ERROR"},
    "default-modifier-obsolete": {"SPF_SYNTAX_ERROR"},
    "exp-void": {"SPF_TOO_MANY_VOID_LOOKUPS"},
}


def _raw(text: str) -> bytes:
    """A YAML string as the bytes its author meant ("\\xEF" is the byte 0xEF)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _txt(value: Any) -> tuple[bytes, ...]:
    parts = value if isinstance(value, list) else [value]
    return tuple(_raw(str(p)) for p in parts)


def zone_records(zonedata: dict[str, list[Any]]) -> dict[tuple[str, str], Any]:
    """A suite document's zonedata as StaticBackend records (see the module docstring)."""
    records: dict[tuple[str, str], Any] = {}
    for name, entries in zonedata.items():
        by_type: dict[str, list[Any]] = {}
        txt_given = timeout = False
        for entry in entries:
            if entry == "TIMEOUT":
                timeout = True
                continue
            ((rdtype, value),) = entry.items()
            rdtype = rdtype.upper()
            if rdtype == "TXT":
                txt_given = True
                if value == "NONE":
                    continue
            if rdtype in ("TXT", "SPF"):
                value = _txt(value)
                if not value:
                    continue  # no strings: not a TXT RDATA that can exist
            elif rdtype in ("A", "AAAA"):
                value = str(ipaddress.ip_address(value))
            elif rdtype == "MX":
                value = (int(value[0]), value[1] or ".")
            by_type.setdefault(rdtype, []).append(value)
        if not txt_given and "SPF" in by_type:
            by_type["TXT"] = list(by_type["SPF"])
        for rdtype, values in by_type.items():
            records[(name, rdtype)] = values
        if timeout:
            records[(name, "CNAME")] = "TIMEOUT"
        elif not by_type:
            records[(name, "NS")] = []  # the name exists (no data of any asked type)
    return records


def load_suite() -> list[tuple[str, str, dict[str, Any], dict[tuple[str, str], Any]]]:
    """(section, case id, case, zone records) for every case of the suite."""
    cases = []
    with SUITE_FILE.open("rb") as fh:
        for document in yaml.safe_load_all(fh):
            records = zone_records(document.get("zonedata") or {})
            for case_id, case in document["tests"].items():
                cases.append((document["description"], case_id, case, records))
    return cases


SUITE_CASES = load_suite()
BY_ID = {case_id: (case, records) for _section, case_id, case, records in SUITE_CASES}


def _params():
    for section, case_id, case, records in SUITE_CASES:
        marks = []
        if case_id in XFAIL:
            marks.append(pytest.mark.xfail(reason=XFAIL[case_id], strict=True))
        yield pytest.param(case, records, id=f"{section}/{case_id}", marks=marks)


def door_for(records: dict[tuple[str, str], Any]) -> DnsClient:
    return DnsClient(StaticBackend(records))


def test_suite_is_present_and_complete():
    assert (SUITE / "LICENSE").exists(), "the suite's BSD notice must travel with it"
    assert len(SUITE_CASES) >= 150
    assert len({case_id for _s, case_id, _c, _r in SUITE_CASES}) == len(SUITE_CASES)


@pytest.mark.parametrize(("case", "records"), list(_params()))
def test_openspf_case_gives_the_expected_result(case, records):
    expected = case["result"]
    expected = expected if isinstance(expected, list) else [expected]
    verdict = evaluate(
        door_for(records),
        case["host"],
        case["mailfrom"],
        case["helo"],
        default_explanation="DEFAULT",
    )
    assert verdict.result in expected, verdict
    if "explanation" in case:
        assert verdict.explanation == case["explanation"], verdict


def _analyze(case_id: str) -> set[str]:
    case, records = BY_ID[case_id]
    sender = case["mailfrom"] or f"postmaster@{case['helo']}"
    domain = sender.rsplit("@", 1)[1]
    net = Net(dns_client=door_for(records))
    findings = list(DnsSpf().run(Target(domain=domain), net))
    return {f.code for f in findings}


@pytest.mark.parametrize(("case_id", "codes"), sorted(SUITE_ANALYZER_CODES.items()))
def test_analyzer_names_the_cause_of_a_suite_permerror(case_id, codes):
    case, _records = BY_ID[case_id]
    assert "permerror" in (case["result"] if isinstance(case["result"], list) else [case["result"]])
    found = _analyze(case_id)
    assert codes <= found, found


@pytest.mark.parametrize(("case_id", "codes"), sorted(SUITE_ANALYZER_WORST_CASE.items()))
def test_analyzer_counts_the_worst_case_client_where_the_suite_host_matches_early(case_id, codes):
    case, _records = BY_ID[case_id]
    assert case["result"] == "pass"
    assert codes <= _analyze(case_id)


@pytest.mark.parametrize(("case_id", "codes"), sorted(SUITE_ANALYZER_CLEAN.items()))
def test_analyzer_does_not_report_a_limit_the_suite_case_stays_within(case_id, codes):
    found = _analyze(case_id)
    assert not (codes & found), found

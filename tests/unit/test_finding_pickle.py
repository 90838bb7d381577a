"""Findings and probe results cross from a --domains worker to the parent by pickle; the
parent holds the whole night, so equal texts are shared there (issue 17)."""

from __future__ import annotations

import pickle

from probes.model import Finding, Outcome, ProbeResult, Severity


def _finding(domain: str) -> Finding:
    return Finding(
        "dns.blocklists",
        "DNSBL_UNUSABLE",
        Severity.WARN,
        "".join(["zen.spamhaus.org refused the query"]),  # built at run time, as probes do
        {"problem": "".join(["REFUSED"]), "domain": domain},
        reproduce="dig +short A 2.0.0.127.zen.spamhaus.org",
        subject="zen.spamhaus.org",
        volatile=frozenset({"took"}),
    )


def test_a_pickled_finding_and_result_come_back_equal():
    result = ProbeResult("dns.blocklists", Outcome.COMPLETED, (_finding("a.example"),), None)
    back = pickle.loads(pickle.dumps(result))
    assert back == result
    assert back.findings[0].evidence == {"problem": "REFUSED", "domain": "a.example"}
    assert back.findings[0].volatile == frozenset({"took"})
    assert back.to_json() == result.to_json()


def test_equal_texts_of_findings_unpickled_apart_are_one_object():
    first = pickle.loads(pickle.dumps(_finding("a.example")))
    second = pickle.loads(pickle.dumps(_finding("b.example")))
    assert first.message is second.message
    assert first.evidence["problem"] is second.evidence["problem"]
    assert first.volatile is second.volatile
    assert first.evidence["domain"] != second.evidence["domain"]

"""The transport benchmark's pure helpers: option parsing, ratios, reading sslyze's result."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from transport import (
    ENDPOINTS,
    parse_endpoints,
    parse_limits,
    ratios,
    sslyze_verdict,
)


def complete_scan(**accepted: list[str]) -> dict:
    versions = {}
    for version in ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"):
        suites = accepted.get(version.replace(".", "_"), [])
        versions[version] = {
            "status": "COMPLETED",
            "accepted": suites,
            "rejected": 10,
            "plaintext_answers": 0,
        }
    return {
        "connectivity": "COMPLETED",
        "versions": versions,
        "certificate": {"status": "COMPLETED", "supplied_ca_ok": True},
    }


def test_the_seven_endpoints_are_distinct_and_cover_every_port():
    assert len({ep.label for ep in ENDPOINTS}) == 7
    assert sorted(ep.port for ep in ENDPOINTS) == [25, 110, 143, 465, 587, 993, 995]


def test_parse_endpoints_keeps_order_and_rejects_unknown_ones():
    eps = parse_endpoints("mx:465, mailbox:993,")
    assert [(e.probe_id, e.port) for e in eps] == [("smtp.submissions", 465), ("imap.tls", 993)]
    with pytest.raises(ValueError):
        parse_endpoints("mx:993")


@pytest.mark.parametrize("text", ["", "0", "2,x", "-1"])
def test_parse_limits_rejects_empty_zero_and_non_integers(text):
    with pytest.raises(ValueError):
        parse_limits(text)


def test_parse_limits_reads_a_list():
    assert parse_limits("2,8") == [2, 8]


def test_ratios_pick_the_slowest_single_endpoint_and_sum_them():
    r = ratios(0.3, {"mx:25": 0.1, "mailbox:993": 0.2, "mx:465": 0.05})
    assert r.slowest_label == "mailbox:993"
    assert r.over_slowest == pytest.approx(1.5)
    assert r.sum_s == pytest.approx(0.35)
    assert r.sequential_over_concurrent == pytest.approx(0.35 / 0.3)


def test_a_complete_sslyze_scan_gives_the_versions_with_accepted_suites():
    v = sslyze_verdict(complete_scan(TLSv1_2=["A", "B"], TLSv1_3=["C"]))
    assert v.complete
    assert v.versions == ["TLSv1.2", "TLSv1.3"]
    assert v.accepted == {"TLSv1": 0, "TLSv1.1": 0, "TLSv1.2": 2, "TLSv1.3": 1}
    assert v.cert_ok is True


def test_plaintext_answers_make_an_sslyze_scan_incomplete():
    data = complete_scan(TLSv1_3=["C"])
    data["versions"]["TLSv1.2"]["plaintext_answers"] = 135
    v = sslyze_verdict(data)
    assert not v.complete
    assert v.plaintext == 135


def test_a_failed_scan_command_is_an_error_and_has_no_count():
    data = complete_scan(TLSv1_3=["C"])
    data["versions"]["TLSv1"] = {"status": "ERROR", "error": "ServerRejectedOpportunisticTls"}
    data["certificate"] = {"status": "ERROR", "error": "boom"}
    v = sslyze_verdict(data)
    assert not v.complete
    assert v.accepted["TLSv1"] is None
    assert set(v.errors) == {"TLSv1", "certinfo"}
    assert v.cert_ok is None


def test_an_empty_result_is_incomplete_not_an_exception():
    v = sslyze_verdict({})
    assert not v.complete
    assert v.versions == []

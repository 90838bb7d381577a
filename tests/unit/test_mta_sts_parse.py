"""The MTA-STS TXT record parser (RFC 8461 §3.1), and dns.mta_sts on static data."""

from __future__ import annotations

import pytest

from probes.checks.dns_mta_sts import DnsMtaSts
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.parse.mta_sts import MtaStsSyntaxError, is_sts_record, parse
from probes.runner import Redactor, run_one

NAME = "_mta-sts.example.com"


@pytest.mark.parametrize(
    ("text", "record_id"),
    [
        ("v=STSv1; id=20160831085700Z", "20160831085700Z"),
        ("v=STSv1;id=abc", "abc"),
        ("v=STSv1 ; id=abc ;", "abc"),
        ("v=STSv1;\tid=abc; ", "abc"),
        ("v=STSv1; id=" + "a" * 32, "a" * 32),
        ("v=STSv1; ext_1=foo:bar; id=7", "7"),
    ],
)
def test_valid_records(text, record_id):
    assert parse(text).id == record_id


def test_extensions_are_kept():
    assert parse("v=STSv1; id=1; x.y-z=v!al").extensions == (("x.y-z", "v!al"),)


@pytest.mark.parametrize(
    "text",
    [
        "v=STSv1",
        "v=STSv1;",
        "v=stsv1; id=abc",
        " v=STSv1; id=abc",
        "v=STSv1 id=abc",
        "v=STSv1x; id=abc",
        "v=STSv1; ID=abc",
        "v=STSv1; id=",
        "v=STSv1; id=" + "a" * 33,
        "v=STSv1; id=abc-def",
        "v=STSv1; id=abc; id=def",
        "v=STSv1;; id=abc",
        "v=STSv1; id=abc;;",
        "v=STSv1; id=abc; novalue",
        "v=STSv1; id=abc; ext=",
        "v=STSv1; id=abc; ext=a b",
        "v=STSv1; id=abc; _bad=1",
        "v=STSv1; id=abc; x=é",
        "v=STSv1; id=abc\x00",
    ],
)
def test_invalid_records_raise_the_documented_error(text):
    with pytest.raises(MtaStsSyntaxError):
        parse(text)


def test_huge_record_fails_quickly():
    with pytest.raises(MtaStsSyntaxError):
        parse("v=STSv1; id=abc; " + "x=1; " * 2000 + "bad")


def test_candidates_are_case_insensitive_but_need_the_version_prefix():
    assert is_sts_record("V=STSV1; id=1")
    assert not is_sts_record("v=spf1 -all")
    assert not is_sts_record("id=1; v=STSv1")


def run(value):
    records = {("example.com", "A"): ["192.0.2.1"]}
    if value is not None:
        records[(NAME, "TXT")] = value
    net = Net(dns_client=DnsClient(StaticBackend(records)))
    return run_one(DnsMtaSts(), Target(domain="example.com"), net, Redactor())


def found(result):
    return [(f.code, f.severity) for f in result.findings]


def test_probe_no_record_is_info():
    assert found(run(None)) == [("MTA_STS_MISSING", Severity.INFO)]


def test_probe_unrelated_txt_is_missing():
    assert found(run(["google-site-verification=abc"])) == [("MTA_STS_MISSING", Severity.INFO)]


def test_probe_valid_record_is_info():
    result = run(["v=STSv1; id=2024", "something else"])
    assert found(result) == [("MTA_STS_PRESENT", Severity.INFO)]
    assert result.findings[0].evidence["id"] == "2024"


def test_probe_record_split_over_strings_is_joined():
    assert found(run([("v=STSv1; ", "id=2024")])) == [("MTA_STS_PRESENT", Severity.INFO)]


def test_probe_two_records_fail():
    assert found(run(["v=STSv1; id=1", "v=STSv1; id=2"])) == [
        ("MTA_STS_MULTIPLE_RECORDS", Severity.FAIL)
    ]


def test_probe_bad_record_fails_with_reason():
    result = run(["v=STSv1; id=not valid!"])
    assert found(result) == [("MTA_STS_SYNTAX_ERROR", Severity.FAIL)]
    assert result.findings[0].evidence["error"]


def test_probe_ten_kilobyte_record_is_a_bounded_finding():
    result = run([tuple(["v=STSv1; id=1; x=" + "a" * 200] + ["b" * 255] * 40)])
    assert found(result) == [("MTA_STS_PRESENT", Severity.INFO)]
    assert len(result.findings[0].evidence["record"]) < 400


def test_probe_servfail_is_an_error():
    result = run("SERVFAIL")
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS

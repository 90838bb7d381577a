"""dns.blocklists against the lab's Knot: each code from blocklist zones the lab serves as spec
data (probes.lab.blocklists), the reproduce lines run for real with dig, `check --lab` asking
the lab's lists (never the public ones), and the correct lab clean on every flavour."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from probes import cli
from probes.checks.dns_blocklists import DnsBlocklists
from probes.lab.blocklists import DEFAULT_BLOCKLISTS, BlocklistSpec
from probes.lab.spec import LabSpec
from probes.lab.target import lab_target as build_lab_target
from probes.model import MessageOptions, Outcome, Severity, Timeouts
from probes.net import Net
from probes.runner import Redactor, run_one

pytestmark = pytest.mark.lab
FLAVOURED = True  # the correct-lab test runs on every lab flavour (tests/lab/conftest.py)

REASON = "Spam trap hits from {authorized}"
LISTED_V6 = "2001:db8::bad"  # only ever a DNS name here: nothing connects to it
LISTS = {
    "blocklists": [
        {"zone": "dnsbl.test"},
        {
            "zone": "listed.test",
            "listed": ["{authorized}", "{outbound}", LISTED_V6],
            "reason": REASON,
        },
        {"zone": "refusing.test", "answer_all": "127.255.255.254", "reason": "Query refused"},
        {"zone": "everything.test", "answer_all": "127.0.0.2"},
        {"zone": "dead.test", "answer_all": "192.0.2.80"},
        {"zone": "dbl.test", "kind": "domain", "listed": ["{domain}"], "code": "127.0.1.2"},
        {"zone": "clean-dbl.test", "kind": "domain"},
    ]
}
BROKEN = LabSpec.from_mapping(LISTS)


@pytest.fixture(scope="module")
def broken_lab(mailprobe_lab_factory_session):
    return mailprobe_lab_factory_session(BROKEN)


def target_of(info, **changes):
    return build_lab_target(
        info,
        timeouts=Timeouts(dns=2.0, probe=30.0),
        login=None,
        message=MessageOptions(),
        **changes,
    )


def run(info, **changes):
    target = target_of(info, **changes)
    return run_one(DnsBlocklists(), target, Net.for_target(target), Redactor())


def by_code(result):
    out: dict[str, dict[str, object]] = {}
    for f in result.findings:
        out.setdefault(f.code, {})[f.subject] = f
    return out


def test_the_correct_lab_is_on_no_list_on_every_flavour(flavour_lab):
    info = flavour_lab.info
    assert info.dnsbls == ("dnsbl.test",) and info.domain_blocklists == ("dbl.test",)
    result = run(info)
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    assert [f for f in result.findings if f.severity >= Severity.WARN] == []
    clean = by_code(result)["DNSBL_CLEAN"]
    assert set(clean) == {
        info.client_ips["authorized"],
        info.hosts["outbound"],
        info.hosts["mx"],
        info.domain,
    }
    assert clean[info.hosts["mx"]].evidence["role"] == f"address of MX mx.{info.domain}"
    assert clean[info.domain].evidence["lists"] == "dbl.test"


def test_each_code_from_the_labs_lists(broken_lab):
    info = broken_lab.info
    authorized, outbound, mx = (
        info.client_ips["authorized"],
        info.hosts["outbound"],
        info.hosts["mx"],
    )
    result = run(info)
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    found = by_code(result)
    listed = found["DNSBL_LISTED"]
    assert set(listed) == {
        f"{authorized} on listed.test",
        f"{outbound} on listed.test",
        f"{info.domain} on dbl.test",
    }
    mine = listed[f"{authorized} on listed.test"]
    assert mine.severity is Severity.FAIL
    assert mine.evidence["return_codes"] == "127.0.0.2"
    assert mine.evidence["reason"] == f"Spam trap hits from {authorized}"
    assert mine.evidence["role"] == "sending IP"
    assert listed[f"{info.domain} on dbl.test"].evidence["return_codes"] == "127.0.1.2"
    unusable = found["DNSBL_UNUSABLE"]
    assert set(unusable) == {"refusing.test", "everything.test", "dead.test"}
    assert all(f.severity is Severity.WARN for f in unusable.values())
    assert "127.255.255.254" in unusable["refusing.test"].evidence["problem"]
    assert "refusal code" in unusable["refusing.test"].evidence["problem"]
    assert "answers every name" in unusable["everything.test"].evidence["problem"]
    assert "192.0.2.80" in unusable["dead.test"].evidence["problem"]
    # The MX address is clean on the two usable IP lists; the refusing list never lists it.
    clean = found["DNSBL_CLEAN"]
    assert set(clean) == {mx}
    assert clean[mx].evidence["lists"] == "dnsbl.test, listed.test"
    assert set(clean[mx].evidence["not_judged"].split(", ")) == {
        "refusing.test",
        "everything.test",
        "dead.test",
    }


def test_the_reproduce_lines_give_the_same_answers_with_dig(broken_lab):
    if shutil.which("dig") is None:
        pytest.skip("dig is not installed")
    info = broken_lab.info
    result = run(info)
    seen = {}
    for f in result.findings:
        assert f.reproduce and f.reproduce.startswith("dig +short A "), f.reproduce
        assert f"@{info.resolver_ip}" in f.reproduce
        done = subprocess.run(
            f.reproduce,
            shell=True,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, (f.reproduce, done.stdout, done.stderr)
        seen[(f.code, f.subject)] = done.stdout
    authorized = info.client_ips["authorized"]
    # A then TXT of the listing: the return code and the reason, as the finding says
    assert seen[("DNSBL_LISTED", f"{authorized} on listed.test")].splitlines() == [
        "127.0.0.2",
        f'"Spam trap hits from {authorized}"',
    ]
    # the two test entries of the refusing list: both answered with the refusal code
    assert seen[("DNSBL_UNUSABLE", "refusing.test")].splitlines() == ["127.255.255.254"] * 2
    assert seen[("DNSBL_UNUSABLE", "everything.test")].splitlines() == ["127.0.0.2"] * 2
    # a clean address: nothing
    assert seen[("DNSBL_CLEAN", info.hosts["mx"])] == ""


def test_ipv6_addresses_in_nibble_form_against_the_real_knot(broken_lab):
    """The lab has no IPv6 address, but its lists serve the IPv6 test entry and an IPv6
    listing: nibble-form names asked of Knot, the lists judged for IPv6 on their own."""
    info = broken_lab.info
    clean_v6 = "2001:db8::1"
    result = run(
        info,
        sending_ips=(LISTED_V6, clean_v6),
        dnsbls=("dnsbl.test", "listed.test", "refusing.test"),
        domain_blocklists=(),
    )
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    found = by_code(result)
    (listed,) = found["DNSBL_LISTED"].values()
    assert listed.subject == f"{LISTED_V6} on listed.test"
    assert listed.evidence["query"] == ("d.a.b.0." + "0." * 20 + "8.b.d.0.1.0.0.2.listed.test")
    assert listed.evidence["reason"] == f"Spam trap hits from {info.client_ips['authorized']}"
    assert found["DNSBL_CLEAN"][clean_v6].evidence["lists"] == "dnsbl.test, listed.test"
    # the refusing list refuses IPv6 as well: a warning of its own for its IPv6 test (and one
    # for IPv4, asked for the MX address)
    unusable = found["DNSBL_UNUSABLE"]
    assert set(unusable) == {"refusing.test", "refusing.test (IPv6)"}
    assert unusable["refusing.test (IPv6)"].severity is Severity.WARN


def test_named_lists_replace_the_labs(broken_lab):
    info = broken_lab.info
    result = run(info, dnsbls=("dnsbl.test",), domain_blocklists=())
    assert result.outcome is Outcome.COMPLETED
    assert {f.code for f in result.findings} == {"DNSBL_CLEAN"}


def test_check_lab_asks_the_labs_lists_and_exits_1(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(LISTS))
    status = cli.main(
        [
            "check",
            "--lab",
            "--lab-spec",
            str(spec),
            "--probe",
            "dns.blocklists",
            "--format",
            "json",
            "--output",
            str(tmp_path / "out"),
            "--no-history",
            "-q",
        ]
    )
    capsys.readouterr()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert status == 1
    assert report["target"]["dnsbls"] == [
        "dnsbl.test",
        "listed.test",
        "refusing.test",
        "everything.test",
        "dead.test",
    ]
    assert report["target"]["domain_blocklists"] == ["dbl.test", "clean-dbl.test"]
    (result,) = report["results"]
    codes = {f["code"] for f in result["findings"]}
    assert codes == {"DNSBL_LISTED", "DNSBL_UNUSABLE", "DNSBL_CLEAN"}
    # nothing public was asked: every question went to lab zones
    assert all(".test" in f["reproduce"].split()[3] for f in result["findings"])


def test_the_default_spec_serves_the_clean_lists():
    assert LabSpec().blocklists == DEFAULT_BLOCKLISTS
    assert BlocklistSpec("dnsbl.test") in DEFAULT_BLOCKLISTS

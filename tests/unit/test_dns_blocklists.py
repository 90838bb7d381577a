"""dns.blocklists against static DNS data and tests/tiny_dns.py: listed, clean, unusable lists
(refusal codes, answers to everything, dead lists), IPv6, hostile answers, DNS failures, the
query count, and the command line (`--dnsbl`, `--domain-blocklist`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from probes import cli
from probes.checks.dns_blocklists import DnsBlocklists, chosen_lists
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.parse.dnsbl import DEFAULT_DOMAIN_LISTS, DEFAULT_IP_LISTS
from probes.runner import Redactor, run_one

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_dns import TinyDns

DOMAIN = "example.com"
BL = "bl.test"
DBL = "dbl.test"
SENDER = "192.0.2.10"
MX_IP = "192.0.2.25"
MX_V6 = "2001:db8::25"
V6_NIBBLES = "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
V6_TEST = "2.0.0.0.0.0.f.7.f.f.f.f." + "0." * 20

MX = {
    (DOMAIN, "MX"): [(10, "mx.example.com.")],
    ("mx.example.com", "A"): [MX_IP],
}


def clean_list(zone: str = BL) -> dict:
    """A list that answers its RFC 5782 test entries correctly (IPv4 and IPv6)."""
    return {(f"2.0.0.127.{zone}", "A"): ["127.0.0.2"], (f"{V6_TEST}{zone}", "A"): ["127.0.0.2"]}


def clean_domain_list(zone: str = DBL) -> dict:
    return {(f"test.{zone}", "A"): ["127.0.0.2"]}


def run(records, *, dnsbls=(BL,), domain_lists=(), sending=(SENDER,), client=None):
    client = client or DnsClient(StaticBackend({**MX, **records}))
    target = Target(
        domain=DOMAIN, sending_ips=sending, dnsbls=dnsbls, domain_blocklists=domain_lists
    )
    return run_one(DnsBlocklists(), target, Net(dns_client=client), Redactor())


def found(result):
    return {(f.code, f.severity, f.subject) for f in result.findings}


def test_clean_addresses_on_a_working_list_are_info():
    result = run(clean_list())
    assert result.outcome is Outcome.COMPLETED
    assert found(result) == {
        ("DNSBL_CLEAN", Severity.INFO, SENDER),
        ("DNSBL_CLEAN", Severity.INFO, MX_IP),
    }
    by_ip = {f.subject: f for f in result.findings}
    assert by_ip[SENDER].evidence["role"] == "sending IP"
    assert by_ip[MX_IP].evidence["role"] == "address of MX mx.example.com"
    assert by_ip[SENDER].evidence["lists"] == BL
    assert by_ip[SENDER].reproduce == f"dig +short A 10.2.0.192.{BL}"


def test_a_listed_sending_ip_is_fail_with_return_code_and_txt_reason():
    records = {
        **clean_list(),
        (f"10.2.0.192.{BL}", "A"): ["127.0.0.2", "127.0.0.4"],
        (f"10.2.0.192.{BL}", "TXT"): ["Spam seen from 192.0.2.10; see https://bl.test/"],
    }
    result = run(records)
    assert found(result) == {
        ("DNSBL_LISTED", Severity.FAIL, f"{SENDER} on {BL}"),
        ("DNSBL_CLEAN", Severity.INFO, MX_IP),
    }
    (listed,) = [f for f in result.findings if f.code == "DNSBL_LISTED"]
    assert listed.evidence["return_codes"] == "127.0.0.2, 127.0.0.4"
    assert listed.evidence["reason"] == "Spam seen from 192.0.2.10; see https://bl.test/"
    assert listed.evidence["role"] == "sending IP"
    assert listed.evidence["query"] == f"10.2.0.192.{BL}"
    assert listed.reproduce == (f"dig +short A 10.2.0.192.{BL}; dig +short TXT 10.2.0.192.{BL}")
    assert "127.0.0.2" in listed.message and "Spam seen" in listed.message


def test_a_listing_without_txt_says_so():
    result = run({**clean_list(), (f"25.2.0.192.{BL}", "A"): ["127.0.0.3"]})
    (listed,) = [f for f in result.findings if f.code == "DNSBL_LISTED"]
    assert listed.subject == f"{MX_IP} on {BL}"
    assert listed.evidence["reason"] == "none given (no TXT record)"
    assert listed.evidence["role"] == "address of MX mx.example.com"


def test_a_hostile_txt_reason_is_escaped_and_bounded():
    records = {
        **clean_list(),
        (f"10.2.0.192.{BL}", "A"): ["127.0.0.2"],
        (f"10.2.0.192.{BL}", "TXT"): [(b"\x1b[2J\r\nowned\xff\xfe", b"y" * 2000)],
    }
    result = run(records)
    (listed,) = [f for f in result.findings if f.code == "DNSBL_LISTED"]
    reason = listed.evidence["reason"]
    assert "\x1b" not in reason and "\r" not in reason and "\n" not in reason
    assert len(reason) <= 300


def test_a_list_that_refuses_every_query_is_unusable_never_listed():
    """Spamhaus answers 127.255.255.254 to queries through public resolvers: not a listing."""
    records = {(name, "A"): ["127.255.255.254"] for name in _every_name(BL)}
    result = run(records)
    assert found(result) == {("DNSBL_UNUSABLE", Severity.WARN, BL)}
    (unusable,) = result.findings
    assert "127.255.255.254" in unusable.evidence["problem"]
    assert "refusal" in unusable.evidence["problem"]
    assert unusable.reproduce == f"dig +short A 2.0.0.127.{BL}; dig +short A 1.0.0.127.{BL}"


def test_a_list_that_answers_everything_is_unusable():
    records = {(name, "A"): ["127.0.0.2"] for name in _every_name(BL)}
    result = run(records)
    assert found(result) == {("DNSBL_UNUSABLE", Severity.WARN, BL)}
    assert "answers every name" in result.findings[0].evidence["problem"]


def test_a_dead_list_answering_a_web_address_is_unusable():
    records = {(name, "A"): ["192.0.2.80"] for name in _every_name(BL)}
    result = run(records)
    assert found(result) == {("DNSBL_UNUSABLE", Severity.WARN, BL)}
    assert "127.0.0.0/8" in result.findings[0].evidence["problem"]


def test_a_list_that_does_not_answer_its_test_entry_is_unusable():
    result = run({})  # NXDOMAIN for everything, 2.0.0.127 included
    assert found(result) == {("DNSBL_UNUSABLE", Severity.WARN, BL)}
    assert "positive test entry" in result.findings[0].evidence["problem"]


def test_a_refusal_for_one_address_after_good_tests_is_unusable_not_listed():
    """Over quota mid-run (Spamhaus 127.255.255.255): the list is unusable, the address not
    judged on it; other lists still judge it."""
    other = "other.test"
    records = {
        **clean_list(),
        **clean_list(other),
        (f"10.2.0.192.{BL}", "A"): ["127.255.255.255"],
    }
    result = run(records, dnsbls=(BL, other))
    assert ("DNSBL_UNUSABLE", Severity.WARN, BL) in found(result)
    assert not any(f.code == "DNSBL_LISTED" for f in result.findings)
    (sender,) = [f for f in result.findings if f.subject == SENDER]
    assert sender.code == "DNSBL_CLEAN"
    assert sender.evidence["lists"] == other
    assert sender.evidence["not_judged"] == BL


def test_a_non_address_answer_is_a_finding_not_a_crash():
    records = {**clean_list(), (f"10.2.0.192.{BL}", "A"): ["mx.example.com"]}
    result = run(records)
    assert result.outcome is Outcome.COMPLETED
    assert ("DNSBL_UNUSABLE", Severity.WARN, BL) in found(result)
    assert not any(f.code == "DNSBL_LISTED" for f in result.findings)


def test_ipv6_mx_addresses_are_asked_in_nibble_form_with_the_ipv6_test_entries():
    records = {
        **clean_list(),
        ("mx.example.com", "AAAA"): [MX_V6],
        (f"{V6_NIBBLES}.{BL}", "A"): ["127.0.0.2"],
    }
    result = run(records, sending=())
    assert found(result) == {
        ("DNSBL_CLEAN", Severity.INFO, MX_IP),
        ("DNSBL_LISTED", Severity.FAIL, f"{MX_V6} on {BL}"),
    }


def test_a_list_without_the_ipv6_test_entry_does_not_serve_ipv6_info_only():
    """Most lists do not serve IPv6: nothing to fix, so info; the IPv6 address not judged."""
    records = {(f"2.0.0.127.{BL}", "A"): ["127.0.0.2"], ("mx.example.com", "AAAA"): [MX_V6]}
    result = run(records, sending=())
    assert found(result) == {
        ("DNSBL_CLEAN", Severity.INFO, MX_IP),
        ("DNSBL_UNUSABLE", Severity.INFO, f"{BL} (IPv6)"),
    }
    (v6,) = [f for f in result.findings if f.code == "DNSBL_UNUSABLE"]
    assert "does not serve IPv6" in v6.evidence["problem"]


def test_a_list_answering_everything_for_ipv6_is_still_a_warning():
    records = {
        (f"2.0.0.127.{BL}", "A"): ["127.0.0.2"],
        ("mx.example.com", "AAAA"): [MX_V6],
        **{(f"{n}{BL}", "A"): ["127.0.0.2"] for n in (V6_TEST, "1" + V6_TEST[1:])},
        (f"{V6_NIBBLES}.{BL}", "A"): ["127.0.0.2"],
    }
    result = run(records, sending=())
    assert ("DNSBL_UNUSABLE", Severity.WARN, f"{BL} (IPv6)") in found(result)
    assert not any(f.code == "DNSBL_LISTED" for f in result.findings)


def test_the_domain_on_a_domain_list():
    records = {
        **clean_domain_list(),
        (f"{DOMAIN}.{DBL}", "A"): ["127.0.1.2"],
        (f"{DOMAIN}.{DBL}", "TXT"): ["low reputation"],
    }
    result = run(records, dnsbls=(), domain_lists=(DBL,))
    assert found(result) == {("DNSBL_LISTED", Severity.FAIL, f"{DOMAIN} on {DBL}")}
    assert result.findings[0].evidence["reason"] == "low reputation"


def test_a_clean_domain_and_a_domain_list_that_answers_everything():
    everything = "all.test"
    records = {
        **clean_domain_list(),
        (f"test.{everything}", "A"): ["127.0.0.2"],
        (f"invalid.{everything}", "A"): ["127.0.0.2"],
        (f"{DOMAIN}.{everything}", "A"): ["127.0.0.2"],
    }
    result = run(records, dnsbls=(), domain_lists=(DBL, everything))
    assert found(result) == {
        ("DNSBL_CLEAN", Severity.INFO, DOMAIN),
        ("DNSBL_UNUSABLE", Severity.WARN, everything),
    }


def test_a_failed_question_ends_in_error_after_the_findings():
    records = {**clean_list(), (f"10.2.0.192.{BL}", "A"): "SERVFAIL"}
    result = run(records)
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert f"10.2.0.192.{BL}" in (result.error_detail or "")
    assert found(result) == {("DNSBL_CLEAN", Severity.INFO, MX_IP)}


def test_a_failed_test_entry_leaves_the_list_unjudged_and_ends_in_error():
    records = {(f"2.0.0.127.{BL}", "A"): "TIMEOUT"}
    result = run(records)
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.TIMEOUT
    assert result.findings == ()


def test_a_failed_txt_lookup_only_shows_in_the_evidence():
    records = {
        **clean_list(),
        (f"10.2.0.192.{BL}", "A"): ["127.0.0.2"],
        (f"10.2.0.192.{BL}", "TXT"): "SERVFAIL",
    }
    result = run(records)
    assert result.outcome is Outcome.COMPLETED
    (listed,) = [f for f in result.findings if f.code == "DNSBL_LISTED"]
    assert listed.evidence["reason"] == "TXT lookup failed (SERVFAIL)"


def test_no_list_at_all_is_skipped():
    result = run({}, dnsbls=(), domain_lists=())
    assert result.outcome is Outcome.SKIPPED


def test_a_bad_sending_ip_is_a_config_error():
    result = run(clean_list(), sending=("192.0.2.0/24",))
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.CONFIG


def test_the_defaults_only_when_no_list_is_named():
    assert chosen_lists(Target(domain=DOMAIN)) == (DEFAULT_IP_LISTS, DEFAULT_DOMAIN_LISTS, True)
    assert chosen_lists(Target(domain=DOMAIN, dnsbls=("X.test.",))) == (("x.test",), (), False)
    assert chosen_lists(Target(domain=DOMAIN, domain_blocklists=(DBL,))) == ((), (DBL,), False)


def test_each_question_goes_on_the_wire_once_and_rounds_are_shared():
    """Every list tested once, each (name, type) asked once, the MX set through the cache."""
    records = {**clean_list(), **clean_list("two.test"), **clean_domain_list()}
    client = DnsClient(StaticBackend({**MX, **records}))
    result = run(
        records,
        dnsbls=(BL, "two.test"),
        domain_lists=(DBL,),
        sending=(SENDER, MX_IP),  # the MX address is also a sending IP: asked once
        client=client,
    )
    assert result.outcome is Outcome.COMPLETED
    # MX, A, AAAA; per IP list 2 tests + 2 addresses; the domain list 2 tests + the domain
    assert client.stats.queries == 3 + 2 * (2 + 2) + 3
    (both,) = [f for f in result.findings if f.subject == MX_IP]
    assert both.evidence["role"] == "sending IP, address of MX mx.example.com"


def _every_name(zone: str) -> list[str]:
    return [
        f"2.0.0.127.{zone}",
        f"1.0.0.127.{zone}",
        f"10.2.0.192.{zone}",
        f"25.2.0.192.{zone}",
    ]


# ----- the command line, against a real (tiny) DNS server -----------------------------------------
def tiny_records() -> dict[tuple[str, str], list[str]]:
    return {
        (DOMAIN, "MX"): ["10 mx.example.com."],
        ("mx.example.com", "A"): [MX_IP],
        (f"2.0.0.127.{BL}", "A"): ["127.0.0.2"],
        (f"10.2.0.192.{BL}", "A"): ["127.0.0.2"],
        (f"10.2.0.192.{BL}", "TXT"): ['"Listed: spam trap hits"'],
        ("2.0.0.127.refusing.test", "A"): ["127.255.255.254"],
        ("1.0.0.127.refusing.test", "A"): ["127.255.255.254"],
        ("10.2.0.192.refusing.test", "A"): ["127.255.255.254"],
        ("25.2.0.192.refusing.test", "A"): ["127.255.255.254"],
        (f"test.{DBL}", "A"): ["127.0.0.2"],
    }


def test_check_with_named_lists_against_a_dns_server(tmp_path, capsys):
    with TinyDns(tiny_records()) as server:
        status = cli.main(
            [
                "check",
                DOMAIN,
                "--resolver",
                server.address,
                "--probe",
                "dns.blocklists",
                "--sending-ip",
                SENDER,
                "--dnsbl",
                BL,
                "--dnsbl",
                "Refusing.Test.",
                "--domain-blocklist",
                DBL,
                "--format",
                "json",
                "--output",
                str(tmp_path),
                "--no-history",
            ]
        )
        asked = set(server.asked)
    capsys.readouterr()
    assert status == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["target"]["dnsbls"] == [BL, "refusing.test"]
    assert report["target"]["domain_blocklists"] == [DBL]
    (result,) = report["results"]
    codes = {(f["code"], f["subject"]) for f in result["findings"]}
    assert codes == {
        ("DNSBL_LISTED", f"{SENDER} on {BL}"),
        ("DNSBL_CLEAN", MX_IP),
        ("DNSBL_CLEAN", DOMAIN),
        ("DNSBL_UNUSABLE", "refusing.test"),
    }
    listed = next(f for f in result["findings"] if f["code"] == "DNSBL_LISTED")
    assert listed["evidence"]["reason"] == "Listed: spam trap hits"
    assert listed["reproduce"].endswith(f"@127.0.0.1 -p {server.address.split(':')[1]}")
    # the public default lists were never asked
    assert not any("spamhaus" in name or "spamcop" in name for name, _ in asked)


def test_reports_keep_the_named_lists_and_leave_them_out_otherwise():
    from probes.report.run import RunReport

    named = Target(domain=DOMAIN, dnsbls=(BL,), domain_blocklists=())
    assert named.to_json()["dnsbls"] == [BL] and named.to_json()["domain_blocklists"] == []
    assert "dnsbls" not in Target(domain=DOMAIN).to_json()
    data = {
        "schema": 1,
        "run_id": "r",
        "target": named.to_json(),
        "started": "2026-12-05T00:00:00+00:00",
        "duration_s": 0.0,
        "results": [],
    }
    assert RunReport.from_json(data).target.dnsbls == (BL,)
    data["target"] = Target(domain=DOMAIN).to_json()
    assert RunReport.from_json(data).target.dnsbls is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dnsbl", "bad zone"], "--dnsbl: 'bad zone' contains white space"),
        (["--dnsbl", "ok.test", "--dnsbl", "bl!.test"], "--dnsbl: 'bl!.test': label 'bl!'"),
        (["--domain-blocklist", "single"], "--domain-blocklist: 'single' has a single label"),
        (["--dnsbl", "a" * 60 + "." + "b" * 60 + "." + "c" * 60 + ".dd.test"], "no room"),
    ],
)
def test_a_bad_zone_is_exit_2_before_probing(args, message, capsys, tmp_path):
    status = cli.main(
        [
            "check",
            DOMAIN,
            *args,
            "--output",
            str(tmp_path),
            "--no-history",
            "--resolver",
            "127.0.0.9",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert message in err
    assert not (tmp_path / "report.json").exists()


def test_a_resolver_that_refuses_to_ask_a_list_makes_it_unusable_not_an_error():
    """REFUSED (a server that only answers its own zones, or a blocked resolver) is the list
    refusing: DNSBL_UNUSABLE, and its other answers are not used."""
    records = {(name, "A"): "REFUSED" for name in _every_name(BL)}
    result = run(records)
    assert result.outcome is Outcome.COMPLETED
    assert found(result) == {("DNSBL_UNUSABLE", Severity.WARN, BL)}
    assert "REFUSED" in result.findings[0].evidence["problem"]


def test_a_refused_address_after_good_tests_is_unusable_not_an_error():
    records = {**clean_list(), (f"10.2.0.192.{BL}", "A"): "REFUSED"}
    result = run(records)
    assert result.outcome is Outcome.COMPLETED
    assert found(result) == {
        ("DNSBL_UNUSABLE", Severity.WARN, BL),
        ("DNSBL_CLEAN", Severity.INFO, MX_IP),
    }


# ----- scenarios: target.dnsbls / target.domain_blocklists ----------------------------------------
def _lab_info():
    from probes.lab.lab import LabInfo

    return LabInfo(
        lab_id="t1",
        domain="example.test",
        resolver="127.9.9.53:53",
        hosts={"mx": "127.9.9.25", "outbound": "127.9.9.26", "mailbox": "127.9.9.143"},
        client_ips={"authorized": "127.9.9.10", "unauthorized": "127.9.9.11"},
        user="user@example.test",
        password="not-used-here",
        ca_file="/lab/ca.pem",
        dkim={},
        dkimpy_keys={},
        ports={"smtp": 25},
        lab_dir="/lab",
        receiver="127.9.9.40",
        dnsbls=("dnsbl.test",),
        domain_blocklists=("dbl.test",),
    )


def _scenario(text: str):
    import textwrap

    from probes.scenario import load_text

    (scenario,) = load_text(textwrap.dedent(text), "s.yaml", ["dns.blocklists"])
    return scenario


def test_a_scenario_names_its_lists_and_they_are_normalized():
    from probes.scenario_run import build_target

    scenario = _scenario(
        """\
        name: lists
        target:
          domain: example.com
          dnsbls: [Zen.Spamhaus.Org., bl.test]
        """
    )
    target = build_target(scenario)
    assert target.dnsbls == ("zen.spamhaus.org", "bl.test")
    assert chosen_lists(target) == (("zen.spamhaus.org", "bl.test"), (), False)


def test_a_lab_scenario_asks_the_labs_lists_unless_it_names_its_own():
    from probes.scenario_run import build_target

    lab = build_target(_scenario("name: a\nlab: true\n"), _lab_info())
    assert (lab.dnsbls, lab.domain_blocklists) == (("dnsbl.test",), ("dbl.test",))
    named = build_target(
        _scenario("name: a\nlab: true\ntarget:\n  dnsbls: [other.test]\n"), _lab_info()
    )
    # naming lists of one kind replaces the lab's lists of both kinds
    assert (named.dnsbls, named.domain_blocklists) == (("other.test",), ())


def test_a_bad_zone_in_a_scenario_names_the_field_and_line():
    from probes.scenario import ScenarioError

    with pytest.raises(ScenarioError) as info:
        _scenario("name: a\ntarget:\n  domain: example.com\n  domain_blocklists: [bad zone]\n")
    assert "field `target.domain_blocklists[0]`" in str(info.value)
    assert "white space" in str(info.value)


def test_check_lab_refuses_a_bad_zone_before_a_lab_starts(capsys, tmp_path, monkeypatch):
    import probes.lab.lab as lab_module

    def no_lab(*args, **kwargs):
        raise AssertionError("a lab was started")

    monkeypatch.setattr(lab_module.Lab, "start", no_lab)
    status = cli.main(
        ["check", "--lab", "--dnsbl", "bad zone", "--output", str(tmp_path), "--no-history"]
    )
    assert status == 2
    assert "--dnsbl: 'bad zone' contains white space" in capsys.readouterr().err


def test_hostile_answers_over_the_wire_are_findings_not_crashes():
    """A TXT reason with escape sequences, NUL and invalid UTF-8, and an answer outside
    127/8 for an address, from a real (tiny) DNS server."""
    records = {
        (DOMAIN, "MX"): ["10 mx.example.com."],
        ("mx.example.com", "A"): [MX_IP],
        (f"2.0.0.127.{BL}", "A"): ["127.0.0.2"],
        (f"10.2.0.192.{BL}", "A"): ["127.0.0.2"],
        (f"10.2.0.192.{BL}", "TXT"): ['"\\027[2Jred\\013\\010\\000" "\\255\\254"'],
        (f"25.2.0.192.{BL}", "A"): ["203.0.113.80"],
    }
    with TinyDns(records) as server:
        target = Target(
            domain=DOMAIN,
            sending_ips=(SENDER,),
            dnsbls=(BL,),
            domain_blocklists=(),
            resolver=server.address,
        )
        result = run_one(DnsBlocklists(), target, Net.for_target(target), Redactor())
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    (listed,) = [f for f in result.findings if f.code == "DNSBL_LISTED"]
    reason = listed.evidence["reason"]
    assert reason.isprintable() and "\\x1b[2Jred" in reason
    (unusable,) = [f for f in result.findings if f.code == "DNSBL_UNUSABLE"]
    assert "203.0.113.80" in unusable.evidence["problem"]


def test_ip_lists_with_no_address_to_ask_report_nothing():
    """A null MX and no sending IP: the IP lists' tests went out early, but nothing is said
    about lists nothing was asked of; the domain list still judges the domain."""
    records = {(DOMAIN, "MX"): [(0, ".")], **clean_domain_list()}
    client = DnsClient(StaticBackend(records))
    target = Target(domain=DOMAIN, dnsbls=(BL,), domain_blocklists=(DBL,))
    result = run_one(DnsBlocklists(), target, Net(dns_client=client), Redactor())
    assert result.outcome is Outcome.COMPLETED
    assert found(result) == {("DNSBL_CLEAN", Severity.INFO, DOMAIN)}

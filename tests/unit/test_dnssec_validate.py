"""DNSSEC validation (probes.net.dnssec) against zones signed in-process with dnspython and
served through the door (tests/signed_zones.py builds real replies for the door's interpret).

Layout: `test.` is the anchored zone; `example.test` is delegated with DS and signed;
`plain.test` is delegated without DS (insecure); the anchor is the DS of `test.`'s key.
"""

from __future__ import annotations

import threading

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from signed_zones import ZoneBackend, build_zone, ds_text, make_key, sign

from probes.net.dns import DnsClient, StaticBackend
from probes.net.dnssec import BOGUS, INDETERMINATE, INSECURE, SECURE, Validator
from probes.parse.trust_anchor import parse_trust_anchor

TLSA = "3 1 1 " + "ab" * 32
CHILD = f"""\
@ 300 IN MX 10 mx.example.test.
mx 300 IN A 127.0.0.1
_25._tcp.mx 300 IN TLSA {TLSA}
"""


def world(*, child_key=None, expired=False, ds_key=None, edit=None, anchor="ds"):
    parent_key, key = make_key(), child_key or make_key()
    child = build_zone("example.test", CHILD)
    sign(child, key, expired=expired)
    if edit:
        edit(child)
    parent = build_zone(
        "test",
        "example 300 IN NS ns.example.test.\n"
        f"example 300 IN DS {ds_text('example.test', (ds_key or key)[1])}\n"
        "plain 300 IN NS ns.plain.test.\n",
    )
    sign(parent, parent_key)
    plain = build_zone("plain.test", "@ 300 IN MX 10 mx.plain.test.\n")
    if anchor == "ds":
        text = f"test. IN DS {ds_text('test', parent_key[1])}"
    else:
        text = f"test. IN DNSKEY {parent_key[1].to_text()}"
    backend = ZoneBackend([parent, child, plain])
    client = DnsClient(backend)
    return Validator(client, parse_trust_anchor(text, "test anchor")), backend


def test_signed_answers_validate_through_the_chain():
    validator, _ = world()
    for name, rdtype in [
        ("example.test", "MX"),
        ("_25._tcp.mx.example.test", "TLSA"),
        ("example.test", "SOA"),
    ]:
        verdict = validator.check(name, rdtype)
        assert (verdict.state, verdict.zone) == (SECURE, "example.test"), verdict


def test_a_dnskey_anchor_works_like_a_ds_anchor():
    validator, _ = world(anchor="dnskey")
    assert validator.check("example.test", "MX").state == SECURE


def test_negative_answers_in_a_signed_zone_are_secure():
    validator, _ = world()
    assert validator.check("mx.example.test", "MX").state == SECURE  # NODATA
    assert validator.check("nothere.example.test", "TLSA").state == SECURE  # NXDOMAIN


def test_a_delegation_without_ds_is_insecure_not_bogus():
    validator, _ = world()
    verdict = validator.check("plain.test", "MX")
    assert (verdict.state, verdict.zone) == (INSECURE, "plain.test")
    assert "without DS" in verdict.reason


def test_a_name_no_anchor_covers_is_indeterminate_not_unsigned():
    validator, _ = world()
    validator.client.backend.zones["other"] = build_zone("other", "@ 300 IN MX 0 .\n")
    verdict = validator.check("other", "MX")
    assert verdict.state == INDETERMINATE and verdict.unanchored
    assert "no trust anchor in" in verdict.reason and "--trust-anchor" in verdict.reason


def test_expired_signatures_are_bogus_with_the_date():
    validator, _ = world(expired=True)
    verdict = validator.check("example.test", "MX")
    assert (verdict.state, verdict.zone) == (BOGUS, "example.test")
    assert "signature expired" in verdict.reason


def test_a_ds_no_dnskey_matches_is_a_ds_mismatch():
    validator, _ = world(ds_key=make_key())
    verdict = validator.check("_25._tcp.mx.example.test", "TLSA")
    assert verdict.state == BOGUS and verdict.reason.startswith("DS mismatch")
    assert "key tags" in verdict.reason


def _drop(rdtype, covers=dns.rdatatype.NONE):
    def edit(zone):
        node = zone.get_node(zone.origin)
        node.delete_rdataset(dns.rdataclass.IN, rdtype, covers)

    return edit


def test_a_missing_dnskey_is_bogus():
    validator, _ = world(edit=_drop(dns.rdatatype.DNSKEY))
    verdict = validator.check("example.test", "MX")
    assert verdict.state == BOGUS and "missing DNSKEY" in verdict.reason


def test_a_missing_rrsig_in_a_signed_zone_is_bogus():
    validator, _ = world(edit=_drop(dns.rdatatype.RRSIG, dns.rdatatype.MX))
    verdict = validator.check("example.test", "MX")
    assert verdict.state == BOGUS and "no RRSIG" in verdict.reason


def test_tampered_data_does_not_verify():
    def tamper(zone):
        mx = dns.rdata.from_text("IN", "MX", "10 evil.example.")
        with zone.writer() as txn:
            txn.replace(zone.origin, 300, mx)

    validator, _ = world(edit=tamper)
    verdict = validator.check("example.test", "MX")
    assert verdict.state == BOGUS and "does not verify" in verdict.reason


def test_each_question_goes_on_the_wire_once_even_when_validated_concurrently():
    validator, backend = world()
    questions = [("example.test", "MX"), ("_25._tcp.mx.example.test", "TLSA")] * 4
    threads = [threading.Thread(target=validator.check, args=q) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(backend.asked) == len(set(backend.asked))
    # the two answers plus DS example.test, DNSKEY test, DNSKEY example.test
    assert set(backend.asked) == {
        ("example.test", "MX"),
        ("_25._tcp.mx.example.test", "TLSA"),
        ("example.test", "DS"),
        ("test", "DNSKEY"),
        ("example.test", "DNSKEY"),
    }
    assert validator.client.stats.queries == 5


def test_a_backend_without_dnssec_data_is_indeterminate():
    client = DnsClient(StaticBackend({("example.test", "MX"): [(10, "mx.example.test")]}))
    validator = Validator(client, parse_trust_anchor(f"test. IN DS 1 13 2 {'ab' * 32}"))
    assert validator.check("example.test", "MX").state == INDETERMINATE


@pytest.mark.parametrize("rcode", ["SERVFAIL", "TIMEOUT"])
def test_a_failed_question_is_indeterminate(rcode):
    client = DnsClient(StaticBackend({("example.test", "MX"): rcode}))
    validator = Validator(client, parse_trust_anchor(f"test. IN DS 1 13 2 {'ab' * 32}"))
    verdict = validator.check("example.test", "MX")
    assert verdict.state == INDETERMINATE and rcode in verdict.reason


def test_a_server_without_the_parent_zone_is_indeterminate_not_a_loop():
    """The root anchor against a server for `test.` and below only: the DS of `test` is
    refused here (Knot answers it from `test` itself: the lab test covers that path)."""
    validator, _ = world()
    root = parse_trust_anchor(f". IN DS 20326 8 2 {'ab' * 32}", "root")
    validator = Validator(validator.client, root)
    verdict = validator.check("example.test", "MX")
    assert verdict.state == INDETERMINATE and verdict.refused


def test_types_asked_without_do_are_not_judged():
    validator, _ = world()
    verdict = validator.check("example.test", "TXT")
    assert verdict.state == INDETERMINATE and "DO" in verdict.reason


def test_the_wire_backend_asks_do_only_for_the_validated_types():
    from probes.net.dns import DNSSEC_TYPES

    assert {"MX", "TLSA", "DS", "DNSKEY"} <= DNSSEC_TYPES and "TXT" not in DNSSEC_TYPES


def test_targets_sharing_a_door_share_its_validator_and_the_keys_it_validated(tmp_path):
    from probes.net import Net

    validator, backend = world()
    anchor = tmp_path / "anchor.zone"
    anchor.write_text(validator.anchors.to_text())
    client = validator.client
    first = Net(dns_client=client, trust_anchor=str(anchor)).dnssec
    second = Net(dns_client=client, trust_anchor=str(anchor)).dnssec
    assert first is second
    assert first.check("example.test", "MX").state == SECURE
    assert second.zone_keys("example.test")[0].state == SECURE
    assert backend.asked.count(("example.test", "DNSKEY")) == 1

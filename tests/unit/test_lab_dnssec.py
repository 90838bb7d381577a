"""The lab's DNSSEC and DANE data (probes/lab/dnssec_zone.py), its Knot configuration and the
spec fields that make each broken case: pure, no containers (tests/lab/test_lab_dnssec_dane.py
proves them against Knot)."""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.zone
import pytest
from cryptography.hazmat.primitives import serialization

from probes.lab import dnssec_zone, knot_conf, pki
from probes.lab.spec import DaneSpec, DnssecSpec, LabSpec, LabSpecError
from probes.lab.zones import Zone, forward_zone, tld_zones
from probes.parse.tlsa import association, match_chain
from probes.parse.trust_anchor import parse_trust_anchor

SPEC = LabSpec().with_block("127.77.5.0/24")


def _plan(spec: LabSpec):
    spec = spec.with_block("127.77.5.0/24")
    zones = [forward_zone(spec, {"mail": "AAAA"}), *tld_zones(spec)]
    ca = pki.make_ca("dnssec-unit")
    chain, _ = pki.make_server_cert(ca, [f"mx.{spec.domain}"], [spec.address("mx")])
    return dnssec_zone.plan(spec, zones, chain), chain, {z.name: z for z in zones}


def _zone(z: Zone) -> dns.zone.Zone:
    return dns.zone.from_text(z.text, origin=z.origin, relativize=False, check_origin=False)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"dnssec": {"bogus": "stale"}}, "dnssec.bogus"),
        ({"dnssec": {"signed": False, "bogus": "wrong-ds"}}, "dnssec.bogus"),
        ({"dane": {"tlsa": "maybe"}}, "dane.tlsa"),
        ({"dnssec": {"signed": "yes"}}, "dnssec.signed"),
        ({"dane": {"records": []}}, "dane.records"),
    ],
)
def test_bad_dnssec_and_dane_fields_are_refused_naming_the_field(data, field):
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_mapping(data)
    assert info.value.field == field


def test_the_default_lab_is_signed_without_tlsa():
    plan, _, _ = _plan(LabSpec())
    assert set(plan.knot_signed) == {"example.test", "test"}
    assert set(plan.keys) == {"example.test", "test"}
    assert "TLSA" not in {z.name: z for z in plan.zones}["example.test"].text


def test_the_anchor_is_the_parent_ds_and_the_parent_delegates_with_ds():
    plan, _, _ = _plan(LabSpec())
    anchors = parse_trust_anchor(plan.anchor, "plan")
    assert anchors.zones == ("test",)
    (ds,) = anchors.for_zone("test")
    parent_key = dns.dnssec.make_dnskey(plan.keys["test"].public_key(), 13, flags=257)
    assert dns.dnssec.make_ds("test.", parent_key, "SHA256") in ds
    parent = _zone({z.name: z for z in plan.zones}["test"])
    name = dns.name.from_text("example.test.")
    assert parent.get_rdataset(name, "NS") is not None
    (child_ds,) = parent.get_rdataset(name, "DS")
    child_key = dns.dnssec.make_dnskey(plan.keys["example.test"].public_key(), 13, flags=257)
    assert dns.dnssec.make_ds("example.test.", child_key, "SHA256") == child_ds


def test_unsigned_means_a_delegation_without_ds():
    plan, _, _ = _plan(LabSpec(dnssec=DnssecSpec(signed=False)))
    assert plan.knot_signed == ("test",)
    parent = _zone({z.name: z for z in plan.zones}["test"])
    assert parent.get_rdataset(dns.name.from_text("example.test."), "DS") is None


def test_wrong_ds_names_a_key_the_zone_does_not_have():
    plan, _, _ = _plan(LabSpec(dnssec=DnssecSpec(bogus="wrong-ds")))
    parent = _zone({z.name: z for z in plan.zones}["test"])
    (child_ds,) = parent.get_rdataset(dns.name.from_text("example.test."), "DS")
    child_key = dns.dnssec.make_dnskey(plan.keys["example.test"].public_key(), 13, flags=257)
    assert dns.dnssec.make_ds("example.test.", child_key, "SHA256") != child_ds


@pytest.mark.parametrize("kind", ["expired-signature", "missing-dnskey"])
def test_presigned_bogus_zones_are_not_given_to_knot(kind):
    plan, _, _ = _plan(LabSpec(dnssec=DnssecSpec(bogus=kind)))
    assert plan.knot_signed == ("test",) and "example.test" not in plan.keys
    zone = _zone({z.name: z for z in plan.zones}["example.test"])
    apex = dns.name.from_text("example.test.")
    assert zone.get_rdataset(apex, "RRSIG", "MX") is not None
    has_dnskey = zone.get_rdataset(apex, "DNSKEY") is not None
    assert has_dnskey is (kind == "expired-signature")


def test_tlsa_match_names_the_mx_key_and_the_lab_ca():
    plan, chain, _ = _plan(LabSpec(dane=DaneSpec(tlsa="match")))
    zone = _zone({z.name: z for z in plan.zones}["example.test"])
    tlsa = zone.get_rdataset(dns.name.from_text("_25._tcp.mx.example.test."), "TLSA")
    records = [(r.usage, r.selector, r.mtype, r.cert.hex()) for r in tlsa]
    ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
    assert (3, 1, 1, association(ders[0], 1, 1)) in records
    assert (2, 0, 1, association(ders[1], 0, 1)) in records
    assert all(r.matched for r in match_chain(records, ders, "mx.example.test"))


def test_tlsa_other_key_matches_nothing():
    plan, chain, _ = _plan(LabSpec(dane=DaneSpec(tlsa="other-key")))
    zone = _zone({z.name: z for z in plan.zones}["example.test"])
    tlsa = zone.get_rdataset(dns.name.from_text("_25._tcp.mx.example.test."), "TLSA")
    records = [(r.usage, r.selector, r.mtype, r.cert.hex()) for r in tlsa]
    ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
    assert not any(r.matched for r in match_chain(records, ders, "mx.example.test"))


def test_knot_signs_exactly_the_planned_zones_and_imports_their_keys():
    plan, _, _ = _plan(LabSpec(dnssec=DnssecSpec(signed=False)))
    conf = knot_conf.knot_conf(SPEC, plan.zones, signed=plan.knot_signed)
    assert "policy:\n  - id: lab\n    algorithm: ecdsap256sha256" in conf
    entries = conf.split("zone:\n", 1)[1].split("  - domain: ")[1:]
    signed = {e.split("\n", 1)[0] for e in entries if "dnssec-signing: on" in e}
    assert signed == {"test."}
    assert "keymgr" in knot_conf.START_SH and "import-pem" in knot_conf.START_SH
    assert "policy:" not in knot_conf.knot_conf(SPEC, plan.zones)

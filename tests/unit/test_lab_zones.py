"""Lab zone files: forward and reverse zones parse with dnspython and hold what the spec asks."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from probes.lab import pki
from probes.lab.spec import ROLES, LabSpec, LabSpecError, SelectorSpec
from probes.lab.zones import dkim_record, forward_zone, reverse_zones, server_names, txt_rdata

BLOCK = "127.66.4.0/24"
PUB_2048 = pki.dkim_public_value(pki.generate_dkim_key("rsa", 2048))
PUB_ED = pki.dkim_public_value(pki.generate_dkim_key("ed25519", 0))


def _spec(**kwargs) -> LabSpec:
    kwargs.setdefault("block", BLOCK)
    spec = LabSpec(**kwargs)
    spec.validate()
    return spec


def _public(spec: LabSpec) -> dict[str, str]:
    return {s.name: PUB_ED if s.key_type == "ed25519" else PUB_2048 for s in spec.selectors}


def _parse(zone) -> dns.zone.Zone:
    return dns.zone.from_text(zone.text, origin=zone.origin, check_origin=True)


def _txt_strings(z: dns.zone.Zone, name: str) -> list[list[bytes]]:
    rds = z.get_rdataset(name, "TXT")
    return [] if rds is None else [list(rd.strings) for rd in rds]


def _txt_values(z: dns.zone.Zone, name: str) -> list[str]:
    return [b"".join(strings).decode() for strings in _txt_strings(z, name)]


def _forward(spec: LabSpec) -> dns.zone.Zone:
    zone = forward_zone(spec, _public(spec))
    assert zone.origin == spec.domain + "."
    return _parse(zone)


# ----- forward zone --------------------------------------------------------------------------


def test_forward_zone_parses_and_has_soa_and_ns():
    z = _forward(_spec())
    assert z.get_rdataset("@", "SOA") is not None
    ns = z.get_rdataset("@", "NS")
    assert [rd.target.derelativize(z.origin).to_text() for rd in ns] == ["ns.example.test."]


def test_forward_zone_has_a_records_for_every_host():
    spec = _spec()
    z = _forward(spec)
    expected = {
        "ns": "dns",
        "mx": "mx",
        "outbound": "outbound",
        "mailbox": "mailbox",
        "client-a": "authorized",
        "client-b": "unauthorized",
    }
    for host, role in expected.items():
        rds = z.get_rdataset(host, "A")
        assert rds is not None, host
        assert [rd.address for rd in rds] == [spec.address(role)]


def test_forward_zone_has_mx_with_placeholders_filled():
    z = _forward(_spec(mx=("10 mx.{domain}.", "20 outbound.{domain}.")))
    mx = sorted(
        (rd.preference, rd.exchange.derelativize(z.origin).to_text())
        for rd in z.get_rdataset("@", "MX")
    )
    assert mx == [(10, "mx.example.test."), (20, "outbound.example.test.")]


def test_forward_zone_has_spf_txt_with_addresses_filled():
    spec = _spec()
    values = _txt_values(_forward(spec), "@")
    spf = [v for v in values if v.startswith("v=spf1")]
    assert spf == [f"v=spf1 a:outbound.example.test ip4:{spec.address('authorized')} -all"]


def test_no_spf_txt_when_spf_is_null():
    z = _forward(_spec(spf=None))
    assert not [v for v in _txt_values(z, "@") if v.startswith("v=spf1")]


def test_forward_zone_has_dmarc_record():
    values = _txt_values(_forward(_spec()), "_dmarc")
    assert len(values) == 1
    assert values[0].startswith("v=DMARC1;")
    assert "mailto:dmarc-reports@example.test" in values[0]


def test_no_dmarc_record_when_dmarc_is_null():
    assert _txt_values(_forward(_spec(dmarc=None)), "_dmarc") == []


def test_dkim_record_published_under_selector():
    spec = _spec(
        selectors=(SelectorSpec(name="s2048"), SelectorSpec(name="ed", key_type="ed25519"))
    )
    z = _forward(spec)
    assert _txt_values(z, "s2048._domainkey") == [dkim_record(PUB_2048, "rsa")]
    assert _txt_values(z, "ed._domainkey") == [dkim_record(PUB_ED, "ed25519")]


def test_2048_bit_key_record_is_split_into_strings_that_join_back_exactly():
    z = _forward(_spec())
    (strings,) = _txt_strings(z, "mail._domainkey")
    assert len(strings) >= 2
    assert all(len(s) <= 255 for s in strings)
    assert b"".join(strings).decode() == dkim_record(PUB_2048, "rsa")


def test_dkim_record_tags():
    assert dkim_record("AAAA", "rsa") == "v=DKIM1; k=rsa; p=AAAA"
    tags = dict(t.split("=", 1) for t in dkim_record("AAAA", "ed25519", testing=True).split("; "))
    assert tags == {"v": "DKIM1", "k": "ed25519", "t": "y", "p": "AAAA"}


def test_revoked_selector_publishes_empty_p():
    z = _forward(_spec(selectors=(SelectorSpec(revoked=True),)))
    (value,) = _txt_values(z, "mail._domainkey")
    tags = dict(t.split("=", 1) for t in value.split("; "))
    assert tags["p"] == ""
    assert PUB_2048 not in value


def test_testing_selector_publishes_t_y():
    z = _forward(_spec(selectors=(SelectorSpec(testing=True),)))
    (value,) = _txt_values(z, "mail._domainkey")
    tags = dict(t.split("=", 1) for t in value.split("; "))
    assert tags["t"] == "y"
    assert tags["p"] == PUB_2048


def test_unpublished_selector_has_no_record():
    spec = _spec(selectors=(SelectorSpec(name="on"), SelectorSpec(name="off", publish=False)))
    z = _forward(spec)
    assert _txt_values(z, "on._domainkey")
    assert z.get_node("off._domainkey") is None


def test_custom_record_with_quotes_and_backslashes_is_escaped():
    record = 'v=DKIM1; n="quoted" back\\slash; p={domain}'
    z = _forward(_spec(selectors=(SelectorSpec(record=record),)))
    assert _txt_values(z, "mail._domainkey") == ['v=DKIM1; n="quoted" back\\slash; p=example.test']


def test_extra_records_are_added_with_placeholders_filled():
    spec = _spec(extra_records=("www A {mx}", '_mta-sts TXT "v=STSv1; id=1"'))
    z = _forward(spec)
    assert [rd.address for rd in z.get_rdataset("www", "A")] == [spec.address("mx")]
    assert _txt_values(z, "_mta-sts") == ["v=STSv1; id=1"]


@pytest.mark.parametrize("bad", ["www A not-an-ip", "www BOGUSTYPE data", "www MX x y z"])
def test_bad_extra_record_is_refused_naming_its_index(bad):
    spec = _spec(extra_records=("ok A 127.66.4.80", bad))
    with pytest.raises(LabSpecError) as info:
        forward_zone(spec, _public(spec))
    assert info.value.field == "extra_records[1]"


def test_forward_zone_without_block_names_block():
    with pytest.raises(LabSpecError) as info:
        forward_zone(LabSpec(), {"mail": PUB_2048})
    assert info.value.field == "block"


# ----- txt_rdata -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        'a "quoted" word',
        'back\\slash and \\" both',
        "x" * 255,
        "y" * 256,
        "z" * 700,
        '"' * 300,
        "\\" * 300,
    ],
)
def test_txt_rdata_round_trips_through_dnspython(value):
    text = f"$ORIGIN t.test.\n@ 60 SOA ns hm 1 1 1 1 1\n@ 60 NS ns\n@ 60 TXT {txt_rdata(value)}\n"
    z = dns.zone.from_text(text, origin="t.test.")
    (rd,) = z.get_rdataset("@", "TXT")
    assert all(len(s) <= 255 for s in rd.strings)
    assert b"".join(rd.strings) == value.encode()


def test_txt_rdata_splits_at_255_bytes():
    assert txt_rdata("a" * 256) == '"' + "a" * 255 + '" "a"'
    assert txt_rdata("") == '""'


# ----- reverse zones -------------------------------------------------------------------------


def _ptrs(spec: LabSpec) -> dict[str, list[str]]:
    """IP -> PTR targets over all reverse zones."""
    out: dict[str, list[str]] = {}
    for zone in reverse_zones(spec):
        z = _parse(zone)
        for name, rds in z.iterate_rdatasets("PTR"):
            ip = ".".join(reversed(name.derelativize(z.origin).to_text().split(".")[:4]))
            out[ip] = sorted(rd.target.derelativize(z.origin).to_text() for rd in rds)
    return out


def test_reverse_zone_is_named_after_the_block():
    (zone,) = reverse_zones(_spec())
    assert zone.origin == "4.66.127.in-addr.arpa."
    assert zone.name == "4.66.127.in-addr.arpa"


def test_reverse_zone_has_ptr_for_every_role():
    spec = _spec()
    ptrs = _ptrs(spec)
    assert ptrs == {spec.address(role): [spec.ptr_name(role)] for role in ROLES}
    assert ptrs[spec.address("authorized")] == ["client-a.example.test."]


def test_reverse_zone_omits_roles_with_ptr_false():
    spec = _spec(ptr={"unauthorized": False, "mx": False})
    ptrs = _ptrs(spec)
    assert spec.address("unauthorized") not in ptrs
    assert spec.address("mx") not in ptrs
    assert ptrs[spec.address("authorized")] == ["client-a.example.test."]


def test_reverse_zone_uses_custom_ptr_names():
    spec = _spec(ptr={"authorized": "mail.other.test", "outbound": "relay.example.test."})
    ptrs = _ptrs(spec)
    assert ptrs[spec.address("authorized")] == ["mail.other.test."]
    assert ptrs[spec.address("outbound")] == ["relay.example.test."]


def test_addresses_in_another_block_get_their_own_reverse_zone():
    spec = _spec(addresses={"unauthorized": "127.9.8.7"})
    origins = sorted(z.origin for z in reverse_zones(spec))
    assert origins == ["4.66.127.in-addr.arpa.", "8.9.127.in-addr.arpa."]
    assert _ptrs(spec)["127.9.8.7"] == ["client-b.example.test."]


def test_server_names_are_the_role_host_names():
    spec = _spec()
    assert server_names(spec, "dns") == ["ns.example.test"]
    assert server_names(spec, "mailbox") == ["mailbox.example.test"]


def test_zone_names_are_absolute():
    z = _forward(_spec())
    assert z.origin == dns.name.from_text("example.test.")
    assert z.rdclass == 1
    assert dns.rdatatype.from_text("TXT") in {rds.rdtype for _, rds in z.iterate_rdatasets()}


def test_lab_serves_the_tlds_of_its_zones_so_parent_lookups_are_nxdomain_not_refused():
    from probes.lab.zones import tld_zones

    spec = LabSpec(domain="example.test", block="127.9.9.0/24", extra_zones={"other.org": ()})
    assert [z.origin for z in tld_zones(spec)] == ["org.", "test."]

"""LabSpec: defaults, YAML loading, and validation that names the offending field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from probes.lab.spec import (
    DEFAULT_HOST_OCTET,
    ROLES,
    LabSpec,
    LabSpecError,
    PortsSpec,
    SelectorSpec,
    TlsSpec,
    fill_placeholders,
)

BLOCK = "127.77.5.0/24"


def _refused_field(data: dict) -> str:
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_mapping(data)
    return info.value.field


def _write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


# ----- defaults and loading -----------------------------------------------------------------


def test_default_spec_validates():
    LabSpec().validate()
    LabSpec(block=BLOCK).validate()


def test_from_mapping_of_none_or_empty_is_the_default_spec():
    assert LabSpec.from_mapping(None) == LabSpec()
    assert LabSpec.from_mapping({}) == LabSpec()


def test_to_mapping_from_mapping_round_trip():
    spec = LabSpec(
        domain="lab.example.test",
        block=BLOCK,
        selectors=(SelectorSpec(), SelectorSpec(name="ed", key_type="ed25519")),
        signing_selector="ed",
        ptr={"mx": False, "authorized": "host.other.test"},
        tls=TlsSpec(min_version="TLSv1", starttls=False),
        spf=None,
    )
    assert LabSpec.from_mapping(spec.to_mapping()) == spec


def test_from_yaml_round_trip(tmp_path):
    spec = LabSpec(
        domain="yaml.example.test",
        block=BLOCK,
        addresses={"authorized": "127.1.2.3"},
        selectors=(SelectorSpec(name="s1", bits=1024, testing=True), SelectorSpec(name="s2")),
        extra_records=("www A {mx}",),
        ports=PortsSpec(smtp=2525),
    )
    path = _write_yaml(tmp_path, yaml.safe_dump(spec.to_mapping()))
    assert LabSpec.from_yaml(path) == spec


def test_from_yaml_reads_nested_fields(tmp_path):
    path = _write_yaml(
        tmp_path,
        "domain: corp.example.test\n"
        "selectors:\n"
        "  - {name: weak, bits: 768}\n"
        "  - {name: ed, key_type: ed25519}\n"
        "tls: {certificate: expired, starttls: false}\n"
        "exim: {open_relay: true}\n"
        "ptr: {mx: false}\n",
    )
    spec = LabSpec.from_yaml(path)
    assert spec.domain == "corp.example.test"
    assert [s.name for s in spec.selectors] == ["weak", "ed"]
    assert spec.selectors[0].bits == 768
    assert spec.selectors[1].key_type == "ed25519"
    assert spec.tls.certificate == "expired"
    assert spec.tls.starttls is False
    assert spec.tls.min_version == TlsSpec().min_version
    assert spec.exim.open_relay is True
    assert spec.ptr == {"mx": False}
    assert spec.signer.name == "weak"


def test_empty_yaml_file_is_the_default_spec(tmp_path):
    assert LabSpec.from_yaml(_write_yaml(tmp_path, "")) == LabSpec()


def test_invalid_yaml_is_refused_as_yaml(tmp_path):
    path = _write_yaml(tmp_path, "domain: [unclosed\n  tls: {\n")
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_yaml(path)
    assert info.value.field == "(yaml)"
    assert info.value.source == str(path)


def test_yaml_that_is_not_a_mapping_is_refused_at_the_root(tmp_path):
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_yaml(_write_yaml(tmp_path, "- a\n- b\n"))
    assert info.value.field == "(root)"


def test_missing_yaml_file_is_refused_as_file(tmp_path):
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_yaml(tmp_path / "absent.yaml")
    assert info.value.field == "(file)"


def test_errors_from_yaml_carry_the_source_path(tmp_path):
    path = _write_yaml(tmp_path, "domain: NOT_A_DOMAIN\n")
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_yaml(path)
    assert info.value.field == "domain"
    assert info.value.source == str(path)


# ----- refused inputs, by field ----------------------------------------------------------------


@pytest.mark.parametrize("domain", ["nodot", "Upper.Example", "-lead.example", "a..b", "a_b.test"])
def test_malformed_domain_is_refused(domain):
    assert _refused_field({"domain": domain}) == "domain"


@pytest.mark.parametrize("bits", [1000, 256, 8192])
def test_unsupported_rsa_key_size_is_refused(bits):
    assert _refused_field({"selectors": [{"name": "s", "bits": bits}]}) == "selectors[0].bits"


def test_ed25519_selector_ignores_bits():
    spec = LabSpec.from_mapping({"selectors": [{"name": "s", "key_type": "ed25519", "bits": 1}]})
    assert spec.selectors[0].key_type == "ed25519"


def test_unknown_key_type_is_refused():
    data = {"selectors": [{"name": "a"}, {"name": "b", "key_type": "dsa"}]}
    assert _refused_field(data) == "selectors[1].key_type"


def test_duplicate_selector_is_refused():
    data = {"selectors": [{"name": "mail"}, {"name": "other"}, {"name": "mail"}]}
    assert _refused_field(data) == "selectors[2].name"


def test_invalid_selector_label_is_refused():
    assert _refused_field({"selectors": [{"name": "bad_label"}]}) == "selectors[0].name"


def test_empty_selector_list_is_refused():
    assert _refused_field({"selectors": []}) == "selectors"


def test_signing_selector_not_among_selectors_is_refused():
    data = {"selectors": [{"name": "mail"}], "signing_selector": "other"}
    assert _refused_field(data) == "signing_selector"


def test_signing_selector_picks_the_signer():
    spec = LabSpec.from_mapping(
        {"selectors": [{"name": "a"}, {"name": "b"}], "signing_selector": "b"}
    )
    assert spec.signer.name == "b"


@pytest.mark.parametrize("ip", ["10.0.0.1", "192.168.1.1", "8.8.8.8", "::1", "not-an-ip"])
def test_address_outside_loopback_is_refused(ip):
    assert _refused_field({"addresses": {"mx": ip}}) == "addresses.mx"


def test_address_for_unknown_role_is_refused():
    assert _refused_field({"addresses": {"relay": "127.1.1.1"}}) == "addresses.relay"


@pytest.mark.parametrize(
    "block",
    [
        "127.5.0.0/16",  # not a /24
        "127.5.6.0/25",
        "10.1.2.0/24",  # outside 127/8
        "192.168.1.0/24",
        "127.0.0.0/24",  # holds 127.0.0.1
        "127.5.6.7/24",  # host bits set
        "bogus",
        "::/24",
    ],
)
def test_bad_block_is_refused(block):
    assert _refused_field({"block": block}) == "block"


def test_clashing_ports_on_the_same_address_are_refused():
    data = {"block": BLOCK, "ports": {"imap": 1143, "pop3": 1143}}
    assert _refused_field(data) == "ports.pop3"


def test_same_port_on_different_roles_is_allowed():
    # smtp (mx) and outbound_smtp (outbound) both default to 25 on different addresses.
    spec = LabSpec.from_mapping({"block": BLOCK})
    assert spec.ports.smtp == spec.ports.outbound_smtp


def test_roles_sharing_an_address_clash_on_equal_ports():
    data = {"block": BLOCK, "addresses": {"outbound": "127.77.5.25"}}
    assert _refused_field(data) == "ports.outbound_smtp"


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_out_of_range_port_is_refused(port):
    assert _refused_field({"ports": {"smtp": port}}) == "ports.smtp"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"bogus": 1}, "bogus"),
        ({"tls": {"bogus": True}}, "tls.bogus"),
        ({"selectors": [{"name": "mail", "size": 2048}]}, "selectors[0].size"),
        ({"ports": {"smtps": 465}}, "ports.smtps"),
    ],
)
def test_unknown_field_is_refused(data, field):
    assert _refused_field(data) == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"selectors": [{"name": "mail", "bits": "2048"}]}, "selectors[0].bits"),
        ({"selectors": [{"name": "mail", "bits": True}]}, "selectors[0].bits"),
        ({"tls": {"starttls": "yes"}}, "tls.starttls"),
        ({"exim": {"vrfy": 1}}, "exim.vrfy"),
        ({"domain": 42}, "domain"),
        ({"ports": {"smtp": "25"}}, "ports.smtp"),
        ({"selectors": "mail"}, "selectors"),
        ({"tls": "strict"}, "tls"),
        ({"addresses": ["127.1.1.1"]}, "addresses"),
        ({"ptr": {"mx": 5}}, "ptr.mx"),
        ({"mx": "10 mx.example.test."}, "mx"),
    ],
)
def test_wrong_type_is_refused(data, field):
    assert _refused_field(data) == field


@pytest.mark.parametrize("mx", ["mx.example.test.", "ten mx.example.test.", "10 a b"])
def test_bad_mx_line_is_refused(mx):
    assert _refused_field({"mx": ["10 mx.{domain}.", mx]}) == "mx[1]"


def test_unknown_placeholder_in_spf_is_refused():
    assert _refused_field({"spf": "v=spf1 ip4:{nowhere} -all"}) == "spf"


def test_unknown_placeholder_in_mx_is_refused():
    assert _refused_field({"mx": ["10 mx.{domian}."]}) == "mx[0]"


def test_unknown_placeholder_in_dmarc_is_refused():
    assert _refused_field({"dmarc": "v=DMARC1; p=none; rua=mailto:x@{bogus}"}) == "dmarc"


def test_short_extra_record_is_refused():
    assert _refused_field({"extra_records": ["www A 127.1.1.1", "www A"]}) == "extra_records[1]"


def test_unknown_placeholder_in_extra_record_is_refused():
    assert _refused_field({"extra_records": ["www A {webserver}"]}) == "extra_records[0]"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"ptr": {"relay": False}}, "ptr.relay"),
        ({"ptr": {"mx": "not a host"}}, "ptr.mx"),
        ({"tls": {"min_version": "SSLv3"}}, "tls.min_version"),
        ({"tls": {"certificate": "revoked"}}, "tls.certificate"),
        ({"user": "Bad User"}, "user"),
    ],
)
def test_other_bad_values_are_refused(data, field):
    assert _refused_field(data) == field


def test_validate_on_a_constructed_spec_names_the_field():
    spec = LabSpec(selectors=(SelectorSpec(bits=1000),))
    with pytest.raises(LabSpecError) as info:
        spec.validate()
    assert info.value.field == "selectors[0].bits"


def test_spec_error_is_a_value_error():
    assert issubclass(LabSpecError, ValueError)


# ----- placeholders ---------------------------------------------------------------------------


def test_spf_macros_are_not_placeholders():
    spec = LabSpec.from_mapping({"spf": "v=spf1 exists:%{i}.%{l}._spf.{domain} -all"})
    assert spec.spf is not None
    filled = fill_placeholders(spec.spf, {"domain": "example.test"})
    assert filled == "v=spf1 exists:%{i}.%{l}._spf.example.test -all"


def test_fill_placeholders_leaves_unknown_names_alone():
    assert fill_placeholders("{domain} {other}", {"domain": "d.test"}) == "d.test {other}"


def test_placeholders_cover_domain_and_every_role():
    spec = LabSpec(block=BLOCK)
    values = spec.placeholders()
    assert set(values) == {"domain", *ROLES}
    assert values["mx"] == "127.77.5.25"


# ----- derived values -------------------------------------------------------------------------


def test_address_derives_from_block():
    spec = LabSpec(block=BLOCK)
    for role, octet in DEFAULT_HOST_OCTET.items():
        assert spec.address(role) == f"127.77.5.{octet}"


def test_address_override_wins_over_block():
    spec = LabSpec(block=BLOCK, addresses={"mx": "127.9.9.9"})
    assert spec.address("mx") == "127.9.9.9"
    assert spec.address("outbound") == "127.77.5.26"


def test_address_without_block_names_block():
    with pytest.raises(LabSpecError) as info:
        LabSpec().address("mx")
    assert info.value.field == "block"


def test_with_block_sets_the_block_only():
    spec = LabSpec(domain="w.example.test")
    moved = spec.with_block(BLOCK)
    assert moved.block == BLOCK
    assert dataclasses.replace(moved, block=None) == spec


def test_ptr_name_default_true_false_and_custom():
    spec = LabSpec(
        ptr={"mx": True, "outbound": False, "authorized": "host.other.test", "dns": "ns9.x.test."}
    )
    assert spec.ptr_name("mx") == "mx.example.test."
    assert spec.ptr_name("mailbox") == "mailbox.example.test."
    assert spec.ptr_name("unauthorized") == "client-b.example.test."
    assert spec.ptr_name("outbound") is None
    assert spec.ptr_name("authorized") == "host.other.test."
    assert spec.ptr_name("dns") == "ns9.x.test."


def test_endpoints_list_every_port_with_its_role_address():
    spec = LabSpec(block=BLOCK, ports=PortsSpec(imap=20143))
    endpoints = {name: (ip, port) for name, ip, port in spec.endpoints()}
    assert endpoints["imap"] == ("127.77.5.143", 20143)
    assert endpoints["outbound_smtp"] == ("127.77.5.26", 25)
    assert endpoints["dns"] == ("127.77.5.53", 53)
    assert set(endpoints) == {f.name for f in dataclasses.fields(PortsSpec)}


def test_errors_from_yaml_name_the_line_of_the_field(tmp_path):
    path = _write_yaml(tmp_path, "domain: lab.test\nselectors:\n  - name: s1\n    bits: 700\n")
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_yaml(path)
    assert (info.value.field, info.value.line) == ("selectors[0].bits", 4)
    assert str(info.value).startswith(f"{path}:4: lab spec field `selectors[0].bits`: ")
    path = _write_yaml(tmp_path, "domain: lab.test\ntls:\n  colour: red\n")
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_yaml(path)
    assert str(info.value).startswith(f"{path}:3: lab spec field `tls.colour`: unknown field")


def test_an_internationalized_lab_domain_becomes_a_labels():
    assert LabSpec.from_mapping({"domain": "faß.test"}).domain == "xn--fa-hia.test"

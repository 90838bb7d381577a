"""The lab's web role rendered from the spec (pure): the policy, the logos, routes and zone
lines each broken case of MtaStsSpec / BimiSpec asks for, read back with the probes' own
parsers."""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from probes.lab import pki, web
from probes.lab.spec import BimiSpec, LabSpec, LabSpecError, MtaStsSpec
from probes.parse.bimi import check_svg, parse_record
from probes.parse.certificate import hostname_matches, parse_certificate
from probes.parse.mta_sts import MAX_POLICY_BYTES, MtaStsPolicyError, parse_policy

SPEC = LabSpec(block="127.9.8.0/24")


def with_(**changes):
    return dataclasses.replace(SPEC, **changes)


def test_the_default_policy_is_enforce_and_covers_the_lab_mx():
    policy = parse_policy(web.policy_text(SPEC).encode())
    assert (policy.mode, policy.max_age, policy.line_ends) == ("enforce", 604800, "CRLF")
    assert policy.mx == ("mx.example.test",) and policy.covers("mx.example.test")


def test_policy_cases():
    testing = with_(mta_sts=MtaStsSpec(mode="testing", mx=("*.{domain}",)))
    policy = parse_policy(web.policy_text(testing).encode())
    assert policy.mode == "testing" and policy.mx == ("*.example.test",)
    oversized = web.policy_text(with_(mta_sts=MtaStsSpec(oversized=True))).encode()
    assert len(oversized) > MAX_POLICY_BYTES
    with pytest.raises(MtaStsPolicyError, match="no `max_age`"):
        parse_policy(
            web.policy_text(
                with_(mta_sts=MtaStsSpec(policy="version: STSv1\nmode: none\n"))
            ).encode()
        )


def test_zone_lines():
    assert web.zone_lines(SPEC) == [
        "mta-sts A 127.9.8.80",
        '_mta-sts TXT "v=STSv1; id=20260101000000"',
        'default._bimi TXT "v=BIMI1; l=https://web.example.test/bimi/logo.svg; a="',
    ]
    assert web.zone_lines(with_(mta_sts=MtaStsSpec(reachable=False)))[0] == "mta-sts A 127.9.8.11"
    assert (
        web.zone_lines(with_(mta_sts=MtaStsSpec(publish=False), bimi=BimiSpec(publish=False))) == []
    )
    own = with_(extra_records=('_mta-sts TXT "v=STSv1; id=1"',))
    assert not any(line.startswith("_mta-sts") for line in web.zone_lines(own))
    assert parse_record(web.bimi_record(SPEC)).logo == "https://web.example.test/bimi/logo.svg"


def test_the_logos_are_what_their_names_say():
    assert check_svg(web.VALID_LOGO.encode()).problems == ()
    assert any("<script>" in p for p in check_svg(web.SCRIPT_LOGO.encode()).problems)
    assert any("DTD" in p for p in check_svg(web.BILLION_LAUGHS.encode()).problems)


def test_render_writes_routes_and_a_certificate_naming_both_hosts(tmp_path):
    (tmp_path / "tls").mkdir()
    ca = pki.make_ca("127.9.8.53")
    web.render(
        with_(mta_sts=MtaStsSpec(redirect=True), bimi=BimiSpec(logo="missing")), tmp_path, ca
    )
    conf = json.loads((tmp_path / "web" / "routes.json").read_text())
    assert conf["address"] == "127.9.8.80" and conf["port"] == 443
    assert conf["routes"] == {
        "/.well-known/mta-sts.txt": {
            "status": 301,
            "headers": {"Location": "https://web.example.test/mta-sts.txt"},
        }
    }
    leaf = x509.load_pem_x509_certificates((tmp_path / "tls" / "web.crt").read_bytes())[0]
    info = parse_certificate(leaf.public_bytes(Encoding.DER))
    assert hostname_matches(info, "mta-sts.example.test") and hostname_matches(
        info, "web.example.test"
    )
    assert (tmp_path / "tls" / "web.key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"mta_sts": MtaStsSpec(mode="strict")}, "mta_sts.mode"),
        ({"mta_sts": MtaStsSpec(max_age=31557601)}, "mta_sts.max_age"),
        ({"mta_sts": MtaStsSpec(record_id="a-b")}, "mta_sts.record_id"),
        ({"mta_sts": MtaStsSpec(mx=("{nope}.test",))}, "mta_sts.mx[0]"),
        ({"mta_sts": MtaStsSpec(certificate="bogus")}, "mta_sts.certificate"),
        ({"bimi": BimiSpec(logo="gif")}, "bimi.logo"),
        ({"bimi": BimiSpec(record="v=BIMI1; l={nope}")}, "bimi.record"),
    ],
)
def test_bad_spec_fields_are_named(changes, field):
    with pytest.raises(LabSpecError) as info:
        with_(**changes).validate()
    assert info.value.field == field


def test_the_spec_loads_from_yaml_data():
    spec = LabSpec.from_mapping(
        {"mta_sts": {"mode": "testing", "mx": ["a.{domain}"]}, "bimi": {"logo": "script"}}
    )
    assert spec.mta_sts.mx == ("a.{domain}",) and spec.bimi.logo == "script"

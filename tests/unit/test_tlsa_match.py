"""TLSA records against certificate chains (probes.parse.tlsa), with real certificates from
the lab's PKI code, and the DANE findings smtp.mx gives (probes.probekit.dane) over zones
signed in-process."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from signed_zones import ZoneBackend, build_zone, ds_text, make_key, sign

from probes.lab import pki
from probes.model import Severity
from probes.net import Net
from probes.net.dns import DnsClient
from probes.net.dnssec import Validator
from probes.net.tls import TlsSession
from probes.parse.tlsa import association, match_chain
from probes.parse.trust_anchor import parse_trust_anchor
from probes.probekit.dane import dane_findings, dane_reproduce

HOST = "mx.example.test"


@pytest.fixture(scope="module")
def chain():
    ca = pki.make_ca("tlsa-unit")
    certs, _ = pki.make_server_cert(ca, [HOST], ["127.0.0.1"])
    return [c.public_bytes(serialization.Encoding.DER) for c in certs]


@pytest.fixture(scope="module")
def other_chain():
    ca = pki.make_ca("tlsa-other")
    certs, _ = pki.make_server_cert(ca, [HOST], ["127.0.0.1"])
    return [c.public_bytes(serialization.Encoding.DER) for c in certs]


def _spki(der):
    from cryptography import x509

    return (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_association_data_is_what_openssl_computes(chain, tmp_path):
    leaf = chain[0]
    assert association(leaf, 1, 1) == hashlib.sha256(_spki(leaf)).hexdigest()
    assert association(leaf, 0, 2) == hashlib.sha512(leaf).hexdigest()
    assert association(leaf, 0, 0) == leaf.hex()
    pem = tmp_path / "leaf.pem"
    pem.write_bytes(
        b"-----BEGIN CERTIFICATE-----\n"
        + __import__("base64").encodebytes(leaf)
        + b"-----END CERTIFICATE-----\n"
    )
    key = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-pubkey"], capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"], input=key, capture_output=True, check=True
    ).stdout
    assert association(leaf, 1, 1) == hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(
    ("usage", "selector", "mtype", "depth"),
    [
        (3, 1, 1, 0),
        (3, 0, 1, 0),
        (3, 1, 2, 0),
        (3, 0, 0, 0),
        (3, 1, 0, 0),
        (2, 0, 1, 1),
        (2, 1, 1, 1),
        (2, 0, 2, 1),
    ],
)
def test_usages_2_and_3_match_every_selector_and_matching_type(
    chain, usage, selector, mtype, depth
):
    record = (usage, selector, mtype, association(chain[depth], selector, mtype).upper())
    (result,) = match_chain([record], chain, HOST)
    assert result.matched and result.depth == depth


def test_another_key_does_not_match(chain, other_chain):
    records = [
        (3, 1, 1, association(other_chain[0], 1, 1)),
        (2, 0, 1, association(other_chain[1], 0, 1)),
    ]
    results = match_chain(records, chain, HOST)
    assert [r.matched for r in results] == [False, False]
    assert "does not match" in results[0].note


def test_dane_ta_needs_the_leaf_to_name_the_host(chain):
    record = (2, 0, 1, association(chain[1], 0, 1))
    (result,) = match_chain([record], chain, "mx.other.test")
    assert not result.matched and "does not name mx.other.test" in result.note


def test_dane_ta_needs_the_chain_to_be_signed_by_the_anchor(chain, other_chain):
    # the other CA's certificate sent after our leaf: it matches, but did not sign the leaf
    record = (2, 0, 1, association(other_chain[1], 0, 1))
    (result,) = match_chain([record], [chain[0], other_chain[1]], HOST)
    assert not result.matched and "not signed by" in result.note


def test_dane_ee_never_matches_the_ca_and_dane_ta_never_the_leaf(chain):
    ee_on_ca = (3, 0, 1, association(chain[1], 0, 1))
    ta_on_leaf = (2, 0, 1, association(chain[0], 0, 1))
    assert [r.matched for r in match_chain([ee_on_ca, ta_on_leaf], chain, HOST)] == [False, False]


@pytest.mark.parametrize(
    "record",
    [
        (1, 1, 1, "ab" * 32),
        (0, 0, 1, "ab" * 32),
        "garbage",
        (3, 1, 1, "zz"),
        (3, 9, 1, "ab" * 32),
        (3, 1, 7, "ab"),
    ],
)
def test_unusable_or_malformed_records_never_match_and_never_crash(chain, record):
    (result,) = match_chain([record], chain, HOST)
    assert not result.matched


def test_pkix_usages_say_they_are_not_for_smtp(chain):
    (result,) = match_chain([(1, 1, 1, association(chain[0], 1, 1))], chain, HOST)
    assert not result.matched and "RFC 7672" in result.note


def test_garbage_certificates_are_a_note_not_a_crash():
    (result,) = match_chain([(3, 1, 1, "ab" * 32)], [b"\x30\x03\x02\x01\x00"], HOST)
    assert not result.matched and result.note


def test_the_reproduce_line_uses_openssl_dane_options():
    line = dane_reproduce("127.0.0.1", 25, HOST, [(3, 1, 1, "ab" * 32)])
    assert line.startswith("openssl s_client -starttls smtp -connect 127.0.0.1:25")
    assert f"-dane_tlsa_domain {HOST}" in line and f"-dane_tlsa_rrdata '3 1 1 {'ab' * 32}'" in line


# ----- the findings smtp.mx gives, over signed and unsigned zones ------------------------------


class _Probe:
    """Stands for smtp.mx: dane_findings only calls `finding`."""

    def finding(self, code, severity, message, **kw):
        return (code, severity, message, kw)


def _net(records: str, *, signed: bool = True):
    key, parent_key = make_key(), make_key()
    child = build_zone("example.test", records)
    if signed:
        sign(child, key)
    parent = build_zone(
        "test",
        "example 300 IN NS ns.example.test.\n"
        + (f"example 300 IN DS {ds_text('example.test', key[1])}\n" if signed else ""),
    )
    sign(parent, parent_key)
    client = DnsClient(ZoneBackend([parent, child]))
    anchors = parse_trust_anchor(f"test. IN DS {ds_text('test', parent_key[1])}")
    return Net(dns_client=client, validator=Validator(client, anchors))


def _session(chain):
    return TlsSession("TLSv1.3", "x", 256, chain[0], False, "not verified", tuple(chain))


def _findings(net, chain):
    return dane_findings(
        _Probe(),
        ip="127.0.0.1",
        port=25,
        host=HOST,
        subject=f"{HOST}:25",
        net=net,
        session=_session(chain),
    )


def test_a_secure_matching_record_is_dane_tlsa_match(chain):
    rec = f"_25._tcp.mx 300 IN TLSA 3 1 1 {association(chain[0], 1, 1)}\n"
    rec += f"_25._tcp.mx 300 IN TLSA 1 1 1 {association(chain[0], 1, 1)}\n"
    ((code, severity, _, kw),) = _findings(_net(rec), chain)
    assert (code, severity) == ("DANE_TLSA_MATCH", Severity.INFO)
    assert "3 1 1" in kw["evidence"]["matched"]
    assert "RFC 7672" in kw["evidence"]["ignored"]  # usage 1 said as info
    assert "-dane_tlsa_rrdata" in kw["reproduce"]


def test_a_secure_record_for_another_key_is_a_mismatch_naming_both(chain, other_chain):
    rec = f"_25._tcp.mx 300 IN TLSA 3 1 1 {association(other_chain[0], 1, 1)}\n"
    ((code, severity, _, kw),) = _findings(_net(rec), chain)
    assert (code, severity) == ("DANE_TLSA_MISMATCH", Severity.FAIL)
    assert association(other_chain[0], 1, 1) in kw["evidence"]["record 1"]
    assert f"leaf: 3 1 1 {association(chain[0], 1, 1)}" in kw["evidence"]["presented"]


def test_unsigned_tlsa_is_not_matched_here(chain, other_chain):
    rec = f"_25._tcp.mx 300 IN TLSA 3 1 1 {association(other_chain[0], 1, 1)}\n"
    assert _findings(_net(rec, signed=False), chain) == []


def test_no_tlsa_gives_nothing(chain):
    assert _findings(_net("mx 300 IN A 127.0.0.1\n"), chain) == []

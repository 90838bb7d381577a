"""probes.parse.certificate: DER -> CertInfo facts, and RFC 6125/9525 host name matching."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import random
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from probes.lab.pki import make_ca, make_server_cert
from probes.parse.certificate import (
    MAX_DER_BYTES,
    CertificateParseError,
    CertInfo,
    hostname_matches,
    parse_certificate,
)

NOW = dt.datetime.now(dt.UTC)
_RSA_2048 = rsa.generate_private_key(65537, 2048)


def name(cn: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test")]
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def build(
    *,
    cn: str | None = "mx.example.com",
    dns: list[str] | None = None,
    ips: list[str] | None = None,
    key=None,
    issuer: tuple[x509.Name, object] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    serial: int = 0x1A2B3C,
) -> bytes:
    """A DER certificate; self-signed unless `issuer` = (issuer name, issuer private key)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer or (name(cn), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=90))
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns or []]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = (
        None
        if isinstance(issuer_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else hashes.SHA256()
    )
    return builder.sign(issuer_key, algorithm).public_bytes(Encoding.DER)


SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")  # AlgorithmIdentifier DER
SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")


def resign_sha1(der: bytes, signer: rsa.RSAPrivateKey) -> bytes:
    """The same certificate re-signed with sha1WithRSAEncryption.

    cryptography refuses to sign certificates with SHA-1, so the algorithm identifiers are
    swapped in place (same length) and the TBS part signed with the raw RSA key.
    """
    cert = x509.load_der_x509_certificate(der)
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(SHA256_RSA) == 1
    new_tbs = tbs.replace(SHA256_RSA, SHA1_RSA)
    signature = signer.sign(new_tbs, padding.PKCS1v15(), hashes.SHA1())
    assert len(signature) == len(cert.signature)
    out = der.replace(tbs, new_tbs).replace(SHA256_RSA, SHA1_RSA).replace(cert.signature, signature)
    assert len(out) == len(der)
    return out


def info_for(**kwargs) -> CertInfo:
    return parse_certificate(build(**kwargs))


# -- parsing -------------------------------------------------------------------------------------


def test_lab_server_certificate_facts_are_read():
    ca = make_ca("t")
    chain, _ = make_server_cert(ca, ["mx.example.test", "Mail.Example.Test"], ["127.0.0.25"])
    der = chain[0].public_bytes(Encoding.DER)
    info = parse_certificate(der)
    assert info.subject == "CN=mx.example.test,O=mailprobe lab"
    assert info.issuer == "CN=mailprobe lab CA t,O=mailprobe lab"
    assert info.common_names == ("mx.example.test",)
    assert info.dns_names == ("mx.example.test", "mail.example.test")
    assert info.ip_addresses == ("127.0.0.25",)
    assert info.key_type == "EC"
    assert info.key_bits == 256
    assert info.curve == "secp256r1"
    assert info.signature_algorithm == "ecdsa-with-SHA256"
    assert info.self_signed is False
    assert info.not_after == chain[0].not_valid_after_utc
    assert info.not_after.tzinfo is not None
    assert info.not_before.utcoffset() == dt.timedelta(0)
    expected_fp = chain[0].fingerprint(hashes.SHA256()).hex(":").upper()
    assert info.sha256_fingerprint == expected_fp
    assert info.serial == format(chain[0].serial_number, "X")


def test_self_signed_lab_certificate_is_self_signed():
    chain, _ = make_server_cert(make_ca("t"), ["mx.example.test"], [], kind="self-signed")
    info = parse_certificate(chain[0].public_bytes(Encoding.DER))
    assert info.self_signed is True
    assert info.issuer == info.subject


def test_issuer_equal_to_subject_but_signed_by_another_key_is_not_self_signed():
    other = ec.generate_private_key(ec.SECP256R1())
    info = info_for(cn="same", issuer=(name("same"), other))
    assert info.subject == info.issuer
    assert info.self_signed is False


def test_serial_is_upper_case_hex():
    assert info_for(serial=0xABCDEF12).serial == "ABCDEF12"


def test_rsa_1024_key_size_is_reported():
    info = info_for(key=rsa.generate_private_key(65537, 1024))
    assert (info.key_type, info.key_bits, info.curve) == ("RSA", 1024, None)
    assert info.signature_algorithm == "sha256WithRSAEncryption"
    assert info.self_signed is True


def test_ec_p384_curve_is_reported():
    info = info_for(key=ec.generate_private_key(ec.SECP384R1()))
    assert (info.key_type, info.key_bits, info.curve) == ("EC", 384, "secp384r1")


def test_ed25519_key_and_signature_are_reported():
    info = info_for(key=ed25519.Ed25519PrivateKey.generate())
    assert (info.key_type, info.key_bits, info.curve) == ("Ed25519", 256, None)
    assert info.signature_algorithm == "ed25519"
    assert info.self_signed is True


def test_ed448_key_is_reported():
    info = info_for(key=ed448.Ed448PrivateKey.generate())
    assert (info.key_type, info.key_bits) == ("Ed448", 456)
    assert info.self_signed is True


def test_sha1_signature_is_named_and_self_signature_still_recognised():
    der = resign_sha1(build(key=_RSA_2048), _RSA_2048)
    info = parse_certificate(der)
    assert info.signature_algorithm == "sha1WithRSAEncryption"
    assert info.self_signed is True


def test_sha1_signature_by_a_ca_is_not_self_signed():
    ca_key = rsa.generate_private_key(65537, 2048)
    der = build(issuer=(name("CA"), ca_key))
    info = parse_certificate(resign_sha1(der, ca_key))
    assert info.signature_algorithm == "sha1WithRSAEncryption"
    assert info.self_signed is False


def test_tampered_self_signature_is_not_self_signed():
    der = bytearray(build(key=_RSA_2048))
    der[-1] ^= 0xFF  # last byte of the RSA signature
    info = parse_certificate(bytes(der))
    assert info.subject == info.issuer
    assert info.self_signed is False


def test_certificate_without_san_has_empty_name_tuples():
    info = info_for(cn="only-cn.example.com")
    assert info.dns_names == ()
    assert info.ip_addresses == ()
    assert info.common_names == ("only-cn.example.com",)


def test_ipv6_san_is_reported_in_compressed_form():
    info = info_for(ips=["2001:db8:0:0:0:0:0:1", "127.0.0.1"])
    assert info.ip_addresses == ("2001:db8::1", "127.0.0.1")


def test_cert_info_is_frozen():
    info = info_for()
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.subject = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\x30\x82\xff\xff" + b"\x00" * 10,  # SEQUENCE claiming more than there is
        b"\x30\x03\x02\x01\x01",  # a well-formed SEQUENCE that is no certificate
        bytes(range(256)) * 4,
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",  # PEM, not DER
    ],
)
def test_garbage_raises_certificate_parse_error(data):
    with pytest.raises(CertificateParseError):
        parse_certificate(data)


def test_truncated_certificate_raises_certificate_parse_error():
    der = build()
    for cut in (1, 10, len(der) // 2, len(der) - 1):
        with pytest.raises(CertificateParseError):
            parse_certificate(der[:cut])


def test_oversized_input_is_rejected_without_parsing():
    with pytest.raises(CertificateParseError):
        parse_certificate(b"\x30" * (MAX_DER_BYTES + 1))


def test_non_bytes_input_raises_certificate_parse_error():
    with pytest.raises(CertificateParseError):
        parse_certificate("not bytes")  # type: ignore[arg-type]


def test_certificate_parse_error_is_a_value_error():
    assert issubclass(CertificateParseError, ValueError)


def test_duplicate_extension_raises_certificate_parse_error():
    # Two SAN extensions: cryptography refuses to build it, so duplicate it in the DER.
    broken = _with_duplicated_extension(build(dns=["a.example.com"]))
    with pytest.raises(x509.DuplicateExtension):
        _ = x509.load_der_x509_certificate(broken).extensions  # the DER is otherwise fine
    with pytest.raises(CertificateParseError):
        parse_certificate(broken)


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the TLV at `pos`."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    n = first & 0x7F
    length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
    start = pos + 2 + n
    return tag, start, start + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, tlv start, tlv end) of each element between start and end."""
    out = []
    pos = start
    while pos < end:
        tag, _, vend = _read_tlv(data, pos)
        out.append((tag, pos, vend))
        pos = vend
    return out


def _with_duplicated_extension(der: bytes) -> bytes:
    """The certificate with its (only) extension listed twice (signature left stale)."""
    _, cstart, cend = _read_tlv(der, 0)
    _, tbs_pos, tbs_end = _children(der, cstart, cend)[0]
    _, tstart, tend = _read_tlv(der, tbs_pos)
    parts = _children(der, tstart, tend)
    ext_tag, ext_pos, _ = parts[-1]
    assert ext_tag == 0xA3
    _, xstart, _ = _read_tlv(der, ext_pos)  # [3] EXPLICIT
    _, seq_start, seq_end = _read_tlv(der, xstart)  # SEQUENCE OF Extension
    extensions = der[seq_start:seq_end]
    new_ext = _tlv(0xA3, _tlv(0x30, extensions + extensions))
    tbs_body = b"".join(der[p:e] for _, p, e in parts[:-1]) + new_ext
    rest = der[tbs_end:cend]
    return _tlv(0x30, _tlv(0x30, tbs_body) + rest)


# -- host name matching --------------------------------------------------------------------------


def test_exact_dns_name_matches_case_insensitively_and_with_trailing_dot():
    info = info_for(dns=["mx.example.com"])
    assert hostname_matches(info, "mx.example.com")
    assert hostname_matches(info, "MX.Example.COM")
    assert hostname_matches(info, "mx.example.com.")
    assert not hostname_matches(info, "mx2.example.com")
    assert not hostname_matches(info, "example.com")


def test_san_stored_with_trailing_dot_matches():
    assert hostname_matches(info_for(dns=["mx.example.com."]), "mx.example.com")


def test_wildcard_matches_exactly_one_left_most_label():
    info = info_for(dns=["*.example.com"])
    assert hostname_matches(info, "mx.example.com")
    assert hostname_matches(info, "MX.EXAMPLE.COM.")
    assert not hostname_matches(info, "example.com")
    assert not hostname_matches(info, "a.b.example.com")
    assert not hostname_matches(info, ".example.com")


@pytest.mark.parametrize("pattern", ["*.com", "*.", "*", "f*.example.com", "*x.example.com"])
def test_unusable_wildcards_match_nothing(pattern):
    info = info_for(dns=[pattern])
    for host in ("mx.example.com", "example.com", "foo.example.com", "fx.example.com", "a.com"):
        assert not hostname_matches(info, host), (pattern, host)


def test_wildcard_not_in_left_most_label_matches_nothing():
    info = info_for(dns=["mx.*.example.com"])
    assert not hostname_matches(info, "mx.a.example.com")


def test_reference_name_containing_a_star_never_matches():
    info = info_for(dns=["*.example.com"])
    assert not hostname_matches(info, "*.example.com")


def test_ip_literal_matches_ip_san_only():
    info = info_for(dns=["127.0.0.1", "mx.example.com"], ips=["127.0.0.25", "::1"])
    assert hostname_matches(info, "127.0.0.25")
    assert hostname_matches(info, "::1")
    assert hostname_matches(info, "[::1]")
    assert hostname_matches(info, "0:0:0:0:0:0:0:1")
    assert not hostname_matches(info, "127.0.0.1")  # only present as a dNSName
    assert not hostname_matches(info, "127.0.0.26")


def test_ip_literal_never_matches_the_common_name():
    info = info_for(cn="127.0.0.1")
    assert not hostname_matches(info, "127.0.0.1")


def test_common_name_is_used_only_without_dns_sans():
    cn_only = info_for(cn="legacy.example.com")
    assert hostname_matches(cn_only, "legacy.example.com")
    assert not hostname_matches(cn_only, "other.example.com")
    with_san = info_for(cn="legacy.example.com", dns=["new.example.com"])
    assert not hostname_matches(with_san, "legacy.example.com")
    assert hostname_matches(with_san, "new.example.com")


def test_common_name_fallback_applies_when_only_ip_sans_exist():
    info = info_for(cn="legacy.example.com", ips=["127.0.0.1"])
    assert hostname_matches(info, "legacy.example.com")


def test_wildcard_common_name_follows_the_same_rules():
    info = info_for(cn="*.example.com")
    assert hostname_matches(info, "mx.example.com")
    assert not hostname_matches(info, "example.com")


def test_no_names_at_all_match_nothing():
    info = info_for(cn=None)
    assert not hostname_matches(info, "mx.example.com")


def test_a_labels_are_compared_as_given_and_unicode_names_are_encoded():
    info = info_for(dns=["xn--bcher-kva.example"])
    assert hostname_matches(info, "xn--bcher-kva.example")
    assert hostname_matches(info, "bücher.example")
    assert not hostname_matches(info, "bucher.example")


@pytest.mark.parametrize("host", ["", ".", "a..example.com", "mx.example.com..", " "])
def test_malformed_reference_names_match_nothing(host):
    info = info_for(dns=["mx.example.com", "*.example.com"])
    assert not hostname_matches(info, host)


def test_invalid_x509_version_raises_certificate_parse_error():
    der = build()
    version_v3 = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3)
    assert der.count(version_v3) == 1
    with pytest.raises(CertificateParseError):
        parse_certificate(der.replace(version_v3, bytes.fromhex("a003020107")))


def test_mutated_certificates_raise_only_certificate_parse_error():
    """Seeded byte mutations of real certificates: a CertInfo or CertificateParseError, and
    hostname_matches copes with whatever names survive."""
    rng = random.Random(20250601)
    bases = [
        build(dns=["a.example.com", "*.b.example.com"], ips=["127.0.0.1", "::1"]),
        build(key=rsa.generate_private_key(65537, 1024), cn=None),
        build(key=ed25519.Ed25519PrivateKey.generate()),
    ]
    parsed = 0
    for _ in range(1500):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(data))
            op = rng.random()
            if op < 0.6:
                data[pos] = rng.randrange(256)
            elif op < 0.8:
                del data[pos]
            else:
                data.insert(pos, rng.randrange(256))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. non-positive serial numbers
                info = parse_certificate(bytes(data))
        except CertificateParseError:
            continue
        parsed += 1
        for host in ("a.example.com", "x.b.example.com", "127.0.0.1", "::1"):
            assert isinstance(hostname_matches(info, host), bool)
    assert parsed > 0  # the mutations also produce certificates that still parse

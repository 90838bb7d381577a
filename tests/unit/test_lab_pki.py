"""Lab PKI: CA, server certificates (valid and deliberately broken) and DKIM keys."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import stat

import dkim
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from probes.lab import pki
from probes.lab.zones import dkim_record

NAME = "mx.example.test"
IP = "127.66.9.25"

MESSAGE = (
    b"From: Sender <sender@example.test>\r\n"
    b"To: user@example.test\r\n"
    b"Subject: lab pki test\r\n"
    b"Message-ID: <pki-test@example.test>\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
    b"\r\n"
    b"Hello from the lab.\r\n"
)


@pytest.fixture(scope="module")
def ca() -> pki.CertAuthority:
    return pki.make_ca("unit")


def _cert(
    ca: pki.CertAuthority, kind: str
) -> tuple[list[x509.Certificate], ec.EllipticCurvePrivateKey]:
    return pki.make_server_cert(ca, [NAME], [IP], kind)


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _verifier(ca: pki.CertAuthority, subject: x509.DNSName | x509.IPAddress):
    return PolicyBuilder().store(Store([ca.cert])).build_server_verifier(subject)


# ----- CA and server certificates ----------------------------------------------------------


def test_ca_is_a_self_signed_ca(ca):
    assert ca.cert.issuer == ca.cert.subject
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is True
    ca.cert.verify_directly_issued_by(ca.cert)
    pub = ca.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert pub == ca.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_valid_cert_verifies_against_the_ca_by_name_and_ip(ca):
    chain, _ = _cert(ca, "valid")
    leaf, intermediates = chain[0], chain[1:]
    for subject in (x509.DNSName(NAME), x509.IPAddress(ipaddress.ip_address(IP))):
        verified = _verifier(ca, subject).verify(leaf, intermediates)
        assert verified[0] == leaf
        assert verified[-1] == ca.cert


def test_valid_cert_is_signed_by_the_ca_key(ca):
    chain, _ = _cert(ca, "valid")
    leaf = chain[0]
    assert leaf.issuer == ca.cert.subject
    ca.key.public_key().verify(
        leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm)
    )


def test_valid_cert_chain_is_leaf_then_ca(ca):
    chain, _ = _cert(ca, "valid")
    assert len(chain) == 2
    assert chain[1] == ca.cert


def test_valid_cert_has_dns_and_ip_sans(ca):
    chain, _ = _cert(ca, "valid")
    san = _san(chain[0])
    assert san.get_values_for_type(x509.DNSName) == [NAME]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(IP)]


def test_valid_cert_is_current(ca):
    chain, _ = _cert(ca, "valid")
    leaf = chain[0]
    assert leaf.not_valid_before_utc < _now() < leaf.not_valid_after_utc
    assert leaf.not_valid_after_utc - _now() > dt.timedelta(days=21)


def test_cert_key_matches_the_cert(ca):
    chain, key = _cert(ca, "valid")
    der = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, der) == chain[
        0
    ].public_key().public_bytes(serialization.Encoding.DER, der)


def test_expired_cert_is_past_its_not_valid_after(ca):
    chain, _ = _cert(ca, "expired")
    leaf = chain[0]
    assert leaf.not_valid_after_utc < _now()
    with pytest.raises(VerificationError):
        _verifier(ca, x509.DNSName(NAME)).verify(leaf, chain[1:])


def test_expiring_soon_cert_is_valid_for_less_than_21_days(ca):
    chain, _ = _cert(ca, "expiring-soon")
    leaf = chain[0]
    assert _now() < leaf.not_valid_after_utc < _now() + dt.timedelta(days=21)
    _verifier(ca, x509.DNSName(NAME)).verify(leaf, chain[1:])


def test_self_signed_cert_has_issuer_equal_to_subject(ca):
    chain, _ = _cert(ca, "self-signed")
    leaf = chain[0]
    assert chain == [leaf]
    assert leaf.issuer == leaf.subject
    assert leaf.issuer != ca.cert.subject
    leaf.verify_directly_issued_by(leaf)
    with pytest.raises(VerificationError):
        _verifier(ca, x509.DNSName(NAME)).verify(leaf, [])


def test_wrong_host_cert_lacks_the_real_name_and_ip(ca):
    chain, _ = _cert(ca, "wrong-host")
    san = _san(chain[0])
    assert NAME not in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address(IP) not in san.get_values_for_type(x509.IPAddress)
    assert san.get_values_for_type(x509.DNSName)
    with pytest.raises(VerificationError):
        _verifier(ca, x509.DNSName(NAME)).verify(chain[0], chain[1:])


def test_certs_pem_and_private_pem_load_back(ca):
    chain, key = _cert(ca, "valid")
    loaded = x509.load_pem_x509_certificates(pki.certs_pem(chain))
    assert loaded == chain
    back = serialization.load_pem_private_key(pki.private_pem(key), password=None)
    assert back.private_numbers() == key.private_numbers()


def test_write_secret_is_owner_only(tmp_path):
    path = tmp_path / "k.pem"
    pki.write_secret(path, b"secret")
    assert path.read_bytes() == b"secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# ----- DKIM keys --------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [512, 768, 1024, 2048])
def test_rsa_dkim_key_has_the_requested_size(bits):
    key = pki.generate_dkim_key("rsa", bits)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == bits
    assert key.public_key().public_numbers().n.bit_length() == bits
    assert key.public_key().public_numbers().e == 65537


@pytest.mark.parametrize("bits", [512, 768])
def test_weak_rsa_key_signs_and_verifies(bits):
    key = pki.generate_dkim_key("rsa", bits)
    sig = key.sign(b"data", padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(sig, b"data", padding.PKCS1v15(), hashes.SHA256())


def test_rsa_public_value_is_base64_subject_public_key_info():
    key = pki.generate_dkim_key("rsa", 1024)
    der = base64.b64decode(pki.dkim_public_value(key), validate=True)
    loaded = serialization.load_der_public_key(der)
    assert isinstance(loaded, rsa.RSAPublicKey)
    assert loaded.public_numbers() == key.public_key().public_numbers()


def test_ed25519_public_value_is_32_raw_bytes_base64():
    key = pki.generate_dkim_key("ed25519", 0)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    raw = base64.b64decode(pki.dkim_public_value(key), validate=True)
    assert len(raw) == 32
    assert raw == key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _sign_and_verify(key, key_type: str, minkey: int = 1024) -> bool:
    selector, domain = b"mail", b"example.test"
    record = dkim_record(pki.dkim_public_value(key), key_type).encode()
    algorithm = b"ed25519-sha256" if key_type == "ed25519" else b"rsa-sha256"
    signature = dkim.sign(
        MESSAGE,
        selector,
        domain,
        pki.dkimpy_private_bytes(key),
        signature_algorithm=algorithm,
    )
    assert signature.startswith(b"DKIM-Signature:")
    looked_up = []

    def dnsfunc(name, timeout=5):
        looked_up.append(name)
        return record if name == b"mail._domainkey.example.test." else None

    ok = dkim.verify(signature + MESSAGE, dnsfunc=dnsfunc, minkey=minkey)
    assert looked_up
    return ok


def test_dkimpy_signs_and_verifies_with_rsa_2048():
    assert _sign_and_verify(pki.generate_dkim_key("rsa", 2048), "rsa") is True


def test_dkimpy_signs_and_verifies_with_ed25519():
    assert _sign_and_verify(pki.generate_dkim_key("ed25519", 0), "ed25519") is True


def test_dkimpy_signs_and_verifies_with_weak_768_bit_key_when_allowed():
    key = pki.generate_dkim_key("rsa", 768)
    assert _sign_and_verify(key, "rsa", minkey=512) is True
    assert _sign_and_verify(key, "rsa", minkey=1024) is False


def test_dkimpy_verification_fails_for_a_tampered_message():
    key = pki.generate_dkim_key("ed25519", 0)
    record = dkim_record(pki.dkim_public_value(key), "ed25519").encode()
    sig = dkim.sign(
        MESSAGE,
        b"mail",
        b"example.test",
        pki.dkimpy_private_bytes(key),
        signature_algorithm=b"ed25519-sha256",
    )
    tampered = sig + MESSAGE.replace(b"Hello", b"Hullo")
    assert dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record) is False


def test_dkimpy_private_bytes_forms():
    rsa_key = pki.generate_dkim_key("rsa", 1024)
    assert pki.dkimpy_private_bytes(rsa_key).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    ed_key = pki.generate_dkim_key("ed25519", 0)
    assert len(base64.b64decode(pki.dkimpy_private_bytes(ed_key), validate=True)) == 32


def test_lab_passwords_are_letters_and_digits_so_every_client_tool_takes_them():
    from probes.lab.lab import new_lab_password
    from probes.net.swaks import password_usable

    passwords = {new_lab_password() for _ in range(2000)}
    assert len(passwords) == 2000
    assert all(len(p) == 16 and p.isascii() and p.isalnum() for p in passwords)
    assert all(password_usable(p) for p in passwords)

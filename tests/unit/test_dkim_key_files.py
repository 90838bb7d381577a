"""The one DKIM private-key reader (probes.dkim_key_file over probes.parse.dkim_private_key):
every key form it reads is accepted by dns.dkim's `--dkim-key` AND signs in the round trip
(a key dns.dkim accepts must sign), and no error says anything of the key's content."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519

from probes.dkim_key_file import public_key_of, read_key_file, read_local_key
from probes.lab import pki
from probes.mail.compose import compose
from probes.mail.dkim_sign import SigningError, load_signing_key, sign, signing_key_from_bytes
from probes.parse.dkim_private_key import read_private_key

NONE = serialization.NoEncryption()
Enc, Fmt = serialization.Encoding, serialization.PrivateFormat
PKCS1 = Fmt.TraditionalOpenSSL


def write_key(path: Path, data: bytes, mode: int = 0o600) -> str:
    path.write_bytes(data)
    os.chmod(path, mode)
    return str(path)


def seed_of(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Enc.Raw, Fmt.Raw, NONE)


def public_raw(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Enc.Raw, serialization.PublicFormat.Raw)


def forms(rsa_key, ed_key):
    """(name, file bytes, expected format, the key) for every form the reader takes."""
    seed, pub = seed_of(ed_key), public_raw(ed_key)
    return [
        (
            "rsa-pem-pkcs1",
            rsa_key.private_bytes(Enc.PEM, Fmt.TraditionalOpenSSL, NONE),
            "pem",
            rsa_key,
        ),
        ("rsa-pem-pkcs8", rsa_key.private_bytes(Enc.PEM, Fmt.PKCS8, NONE), "pem", rsa_key),
        (
            "rsa-der-pkcs1",
            rsa_key.private_bytes(Enc.DER, Fmt.TraditionalOpenSSL, NONE),
            "der",
            rsa_key,
        ),
        ("rsa-der-pkcs8", rsa_key.private_bytes(Enc.DER, Fmt.PKCS8, NONE), "der", rsa_key),
        ("ed-pem-pkcs8", ed_key.private_bytes(Enc.PEM, Fmt.PKCS8, NONE), "pem", ed_key),
        ("ed-der-pkcs8", ed_key.private_bytes(Enc.DER, Fmt.PKCS8, NONE), "der", ed_key),
        ("ed-base64-seed", base64.b64encode(seed) + b"\n", "dkimpy-ed25519", ed_key),
        ("ed-base64-seed+public", base64.b64encode(seed + pub), "dkimpy-ed25519", ed_key),
        ("ed-raw-seed", seed, "raw-ed25519", ed_key),
        ("ed-raw-seed+public", seed + pub, "raw-ed25519", ed_key),
    ]


def message() -> bytes:
    return compose(
        token="feed02",
        header_from="probe@example.test",
        to="user@example.test",
        mail_from="probe@example.test",
    ).raw


def verifies(signed: bytes, key) -> bool:
    kind = "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa"
    record = f"v=DKIM1; k={kind}; p={pki.dkim_public_value(key)}".encode()
    return dkim.DKIM(signed).verify(dnsfunc=lambda name, timeout=5: record)


def test_every_form_dns_dkim_accepts_signs_in_the_round_trip(tmp_path, key2048, ed_key):
    for name, data, fmt, key in forms(key2048, ed_key):
        path = write_key(tmp_path / f"{name}.key", data)
        local = read_local_key(path)
        assert local.problem is None, name
        assert local.key_format == fmt, name
        assert local.public_key.same_key(key.public_key()), name
        signing = load_signing_key(path)
        assert signing.public_value == pki.dkim_public_value(key), name
        assert signing.key_type == local.public_key.key_type, name
        signed = sign(message(), key=signing, domain="example.test", selector="s")
        assert verifies(signed, key), name
        assert signing_key_from_bytes(data).public_value == signing.public_value, name


def test_reader_and_signer_agree_on_every_file(tmp_path, key2048, ed_key):
    """One reader: a file either serves both dns.dkim and the signer, or neither."""
    bad = [
        b"",
        b"not a key\n",
        b"x" * 32,  # 32 characters of text: not taken for a raw seed
        key2048.public_key().public_bytes(Enc.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        ec.generate_private_key(ec.SECP256R1()).private_bytes(Enc.DER, Fmt.PKCS8, NONE),
    ]
    good = [data for _, data, _, _ in forms(key2048, ed_key)]
    for i, data in enumerate(good + bad):
        path = write_key(tmp_path / f"k{i}", data)
        local, private = read_key_file(path)
        try:
            load_signing_key(path)
            signs = True
        except SigningError:
            signs = False
        assert (local.problem is None) is signs is (private is not None), i


def secret_forms(data: bytes) -> list[str]:
    """Pieces of a key file an error message must never contain."""
    pieces = [base64.b64encode(data)[:16].decode(), data.hex()[:16]]
    text = data.decode("latin-1")
    pieces += [line[:16] for line in text.splitlines() if len(line) >= 16 and "-----" not in line]
    return [p for p in pieces if p]


BAD_KEYS = {
    "truncated-der": lambda k, e: k.private_bytes(Enc.DER, Fmt.PKCS8, NONE)[:200],
    "truncated-pem": lambda k, e: k.private_bytes(Enc.PEM, Fmt.PKCS8, NONE)[:400],
    "encrypted-pem": lambda k, e: k.private_bytes(
        Enc.PEM, Fmt.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ),
    "encrypted-der": lambda k, e: k.private_bytes(
        Enc.DER, Fmt.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ),
    "ec-pem": lambda k, e: ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Enc.PEM, Fmt.PKCS8, NONE
    ),
    "dsa-der": lambda k, e: dsa.generate_private_key(1024).private_bytes(Enc.DER, Fmt.PKCS8, NONE),
    "ed-seed+wrong-public": lambda k, e: seed_of(e) + bytes(32),
    "ed-base64-seed+wrong-public": lambda k, e: base64.b64encode(seed_of(e) + bytes(32)),
    "binary-garbage": lambda k, e: bytes(range(256)) * 3,
}


@pytest.mark.parametrize("kind", sorted(BAD_KEYS))
def test_unusable_keys_are_refused_by_both_without_key_material(tmp_path, key2048, ed_key, kind):
    data = BAD_KEYS[kind](key2048, ed_key)
    path = write_key(tmp_path / "bad.key", data)
    local = read_local_key(path)
    assert local.public_key is None and local.problem
    with pytest.raises(SigningError) as info:
        load_signing_key(path)
    read = read_private_key(data)
    assert read.key is None
    for text in (local.problem, str(info.value), repr(local), repr(read)):
        for piece in secret_forms(data):
            assert piece not in text, (kind, piece)
    if kind.startswith("encrypted-pem"):
        assert "passphrase" in local.problem
    if kind.startswith(("ec", "dsa")):
        assert "RSA or Ed25519" in local.problem


def test_key_material_is_never_in_a_repr(tmp_path, key2048):
    data = key2048.private_bytes(Enc.DER, Fmt.PKCS8, NONE)
    read = read_private_key(data)
    assert read.key is not None
    assert "RSAPrivateKey" not in repr(read)
    _, private = read_key_file(write_key(tmp_path / "k.der", data))
    assert private is not None
    signing = load_signing_key(write_key(tmp_path / "k2.der", data))
    for piece in secret_forms(data):
        assert piece not in repr(signing) and piece not in repr(read)


def test_reader_derives_the_public_key_and_keeps_the_mode(tmp_path, key2048):
    path = write_key(tmp_path / "k.pem", pki.private_pem(key2048), 0o640)
    local = read_local_key(path)
    assert local.problem is None and local.key_format == "pem"
    assert local.public_key.same_key(key2048.public_key())
    assert local.mode == 0o640 and local.exposed and local.exposed_to == "group read"


def test_reader_accepts_der_and_libsodium_64_byte_ed25519(ed_key, key2048):
    der = key2048.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public, fmt, problem = public_key_of(der)
    assert problem is None and fmt == "der" and public.same_key(key2048.public_key())
    seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pub = ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    public, fmt, problem = public_key_of(base64.b64encode(seed + pub))
    assert problem is None and public.same_key(ed_key.public_key())


def test_reader_refuses_a_public_key_file(key2048):
    pem = key2048.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public, _, problem = public_key_of(pem)
    assert public is None and "public key" in problem

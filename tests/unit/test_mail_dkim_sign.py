"""probes.mail.dkim_sign: key files, RSA and Ed25519 signatures dkimpy verifies, oversigning."""

from __future__ import annotations

import base64
import datetime as dt
import os

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from probes.lab.pki import dkim_public_value, dkimpy_private_bytes, generate_dkim_key, private_pem
from probes.mail.compose import compose
from probes.mail.dkim_sign import SigningError, load_signing_key, sign, signing_key_from_private

WHEN = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def rsa_key():
    return generate_dkim_key("rsa", 2048)


@pytest.fixture(scope="module")
def ed_key():
    return generate_dkim_key("ed25519", 256)


def raw_message():
    return compose(
        token="feed01",
        header_from="probe@example.test",
        to="user@example.test",
        mail_from="probe@example.test",
        date=WHEN,
    ).raw


def dkimpy_verifies(signed: bytes, private) -> bool:
    kind = "ed25519" if isinstance(private, ed25519.Ed25519PrivateKey) else "rsa"
    record = f"v=DKIM1; k={kind}; p={dkim_public_value(private)}".encode()
    return dkim.DKIM(signed).verify(dnsfunc=lambda name, timeout=5: record)


def write(tmp_path, name, data, mode=0o600):
    path = tmp_path / name
    path.write_bytes(data)
    os.chmod(path, mode)
    return str(path)


def sig_tags(signed: bytes) -> dict[bytes, bytes]:
    head = dkim.rfc822_parse(signed)[0]
    value = next(v for n, v in head if n.lower() == b"dkim-signature")
    return dkim.util.parse_tag_value(value)


# --- key files ----------------------------------------------------------------------------------


def test_rsa_pkcs1_and_pkcs8_pem_files_load(tmp_path, rsa_key):
    for name, data in (("p1.pem", dkimpy_private_bytes(rsa_key)), ("p8.pem", private_pem(rsa_key))):
        key = load_signing_key(write(tmp_path, name, data))
        assert (key.algorithm, key.bits, key.key_type) == ("rsa-sha256", 2048, "rsa")
        assert key.public_value == dkim_public_value(rsa_key)


def test_ed25519_pkcs8_pem_and_dkimpy_raw_files_load(tmp_path, ed_key):
    for name, data in (("e.pem", private_pem(ed_key)), ("e.key", dkimpy_private_bytes(ed_key))):
        key = load_signing_key(write(tmp_path, name, data))
        assert (key.algorithm, key.bits, key.key_type) == ("ed25519-sha256", 256, "ed25519")
        assert key.public_value == dkim_public_value(ed_key)


def test_libsodium_64_byte_ed25519_form_loads(tmp_path, ed_key):
    seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = base64.b64decode(dkim_public_value(ed_key))
    key = load_signing_key(write(tmp_path, "e64.key", base64.b64encode(seed + public)))
    assert key.public_value == dkim_public_value(ed_key)


def test_key_material_is_not_in_the_repr(tmp_path, rsa_key):
    pem = dkimpy_private_bytes(rsa_key)
    key = load_signing_key(write(tmp_path, "k.pem", pem))
    body = b"".join(pem.splitlines()[1:-1])[:40].decode()
    assert body not in repr(key)
    assert "PRIVATE" not in repr(key)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key at all\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        base64.b64encode(b"x" * 31),
    ],
)
def test_unreadable_key_files_raise_signing_error_without_their_content(tmp_path, data):
    path = write(tmp_path, "bad.key", data)
    with pytest.raises(SigningError) as info:
        load_signing_key(path)
    if data.strip():
        assert data.decode()[:20] not in str(info.value)


def test_missing_key_file_raises_signing_error(tmp_path):
    with pytest.raises(SigningError):
        load_signing_key(str(tmp_path / "absent.pem"))


def test_an_ec_key_is_refused(tmp_path):
    path = write(tmp_path, "ec.pem", private_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(SigningError):
        load_signing_key(path)


def test_a_secret_in_an_encrypted_pem_is_refused(tmp_path, rsa_key):
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(SigningError):
        load_signing_key(write(tmp_path, "enc.pem", pem))


# --- signing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_signatures_verify_with_dkimpy(kind, canon, rsa_key, ed_key):
    private = rsa_key if kind == "rsa" else ed_key
    key = signing_key_from_private(private)
    signed = sign(
        raw_message(), key=key, domain="example.test", selector="s1", canonicalization=canon
    )
    tags = sig_tags(signed)
    assert tags[b"a"] == key.algorithm.encode()
    assert tags[b"c"] == canon.encode()
    assert (tags[b"d"], tags[b"s"]) == (b"example.test", b"s1")
    assert dkimpy_verifies(signed, private)
    assert signed.endswith(raw_message())


def test_from_is_oversigned_by_default(rsa_key):
    signed = sign(
        raw_message(), key=signing_key_from_private(rsa_key), domain="example.test", selector="s1"
    )
    h = [x.strip() for x in sig_tags(signed)[b"h"].split(b":")]
    assert h == [b"from", b"from", b"to", b"subject", b"date", b"message-id"]


def test_without_oversigning_from_is_listed_once(rsa_key):
    signed = sign(
        raw_message(),
        key=signing_key_from_private(rsa_key),
        domain="example.test",
        selector="s1",
        oversign_from=False,
        headers=("From", "Subject"),
    )
    h = [x.strip() for x in sig_tags(signed)[b"h"].split(b":")]
    assert h == [b"from", b"subject"]


def test_a_from_added_after_signing_breaks_the_oversigned_signature(rsa_key):
    signed = sign(
        raw_message(), key=signing_key_from_private(rsa_key), domain="example.test", selector="s1"
    )
    assert dkimpy_verifies(signed, rsa_key)
    forged = signed.replace(
        b"From: probe@example.test\r\n", b"From: probe@example.test\r\nFrom: boss@example.test\r\n"
    )
    assert not dkimpy_verifies(forged, rsa_key)


def test_a_768_bit_key_still_signs(tmp_path):
    weak = generate_dkim_key("rsa", 768)
    key = load_signing_key(write(tmp_path, "weak.pem", dkimpy_private_bytes(weak)))
    assert key.bits == 768
    signed = sign(raw_message(), key=key, domain="example.test", selector="weak")
    assert sig_tags(signed)[b"a"] == b"rsa-sha256"


def test_lf_messages_get_an_lf_signature(ed_key):
    raw = raw_message().replace(b"\r\n", b"\n")
    signed = sign(raw, key=signing_key_from_private(ed_key), domain="example.test", selector="s")
    assert b"\r" not in signed
    assert dkimpy_verifies(signed, ed_key)


@pytest.mark.parametrize(
    "kw",
    [
        {"headers": ("to", "subject")},
        {"headers": ("from", "received")},
        {"headers": ("from", "bad name")},
        {"canonicalization": "loose/simple"},
        {"domain": "exa mple.test"},
        {"selector": "s;1"},
    ],
)
def test_bad_signing_parameters_raise_signing_error(kw, ed_key):
    args = {"key": signing_key_from_private(ed_key), "domain": "example.test", "selector": "s"}
    args.update(kw)
    with pytest.raises(SigningError):
        sign(raw_message(), **args)

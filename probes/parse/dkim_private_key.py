"""DKIM private keys from the bytes of a key file: the one reader for dns.dkim and the signer.

Pure: no I/O (probes.dkim_key_file reads the file). `read_private_key(data)` recognises, in
this order:
- PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`, RSA or Ed25519);
- dkimpy's and OpenDKIM's Ed25519 form: base64 of the 32-byte seed, or of the 64-byte
  seed+public key libsodium writes (the public half must match the seed);
- the raw Ed25519 seed: exactly 32 bytes (or 64 bytes seed+public) of binary data;
- DER: PKCS#1 or PKCS#8, RSA or Ed25519.
Passphrase-protected keys cannot be read (there is no passphrase to give) and say so; other key
types (EC, DSA, ...) are refused by name.

The result holds the private key object hidden from repr; its `problem`, when the bytes are not
a usable key, is written here and never copied from a parser's exception, so it never contains
key material.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from probes.parse.dkim_key import PublicKey

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

PEM, DER, DKIMPY_ED25519, RAW_ED25519 = "pem", "der", "dkimpy-ed25519", "raw-ed25519"
FORMATS = (PEM, DER, DKIMPY_ED25519, RAW_ED25519)
_ED25519_SEED = 32


@dataclass(frozen=True)
class PrivateKeyRead:
    """What the bytes of a key file hold: `key` (None when unusable, then `problem` says why,
    without key material) and `key_format` (one of FORMATS). `key` is left out of repr."""

    key: PrivateKey | None = field(default=None, repr=False, compare=False)
    key_format: str | None = None
    problem: str | None = None

    @property
    def public_key(self) -> PublicKey | None:
        """The public half, in the form DNS key records are parsed into."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            pub = self.key.public_key()
            return PublicKey("rsa", pub.key_size, "spki", pub)
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return PublicKey("ed25519", 256, "raw", self.key.public_key())
        return None


def read_private_key(data: bytes) -> PrivateKeyRead:
    """The DKIM private key in a key file's bytes (formats: see the module docstring)."""
    stripped = data.strip()
    if not stripped:
        return PrivateKeyRead(problem="the key file is empty")
    if b"-----BEGIN" in stripped:
        if b"ENCRYPTED" in stripped:
            return PrivateKeyRead(
                problem="the key is passphrase-protected (mailprobe cannot decrypt it)"
            )
        private = _load(serialization.load_pem_private_key, stripped)
        if private is None:
            if b"PUBLIC KEY-----" in stripped and b"PRIVATE KEY-----" not in stripped:
                return PrivateKeyRead(problem="the file holds a public key, not a private key")
            return PrivateKeyRead(
                problem="not a PEM private key mailprobe can read (RSA or Ed25519)"
            )
        return _checked(private, PEM)
    private = dkimpy_ed25519(stripped)
    if private is not None:
        return _checked(private, DKIMPY_ED25519)
    private = raw_ed25519(data)
    if private is not None:
        return _checked(private, RAW_ED25519)
    private = _load(serialization.load_der_private_key, data)
    if private is not None:
        return _checked(private, DER)
    return PrivateKeyRead(
        problem="not a private key mailprobe can read (PEM, DER, or an Ed25519 seed raw or in "
        "base64)"
    )


def dkimpy_ed25519(text: bytes) -> ed25519.Ed25519PrivateKey | None:
    """dkimpy's Ed25519 private key: base64 of the 32-byte seed (or 64-byte seed+public).

    None when `text` is not that form (or the public half does not match the seed)."""
    if len(text) > 100:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _seed_key(raw)


def raw_ed25519(data: bytes) -> ed25519.Ed25519PrivateKey | None:
    """An Ed25519 seed written as raw bytes: exactly 32 bytes (or 64, seed+public) of binary
    data. Text of that length (printable ASCII, e.g. a stray line) is not taken for one."""
    if len(data) not in (_ED25519_SEED, 2 * _ED25519_SEED) or _is_text(data):
        return None
    return _seed_key(data)


def _seed_key(raw: bytes) -> ed25519.Ed25519PrivateKey | None:
    if len(raw) not in (_ED25519_SEED, 2 * _ED25519_SEED):
        return None
    key = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:_ED25519_SEED])
    if len(raw) == 2 * _ED25519_SEED:
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        if public != raw[_ED25519_SEED:]:
            return None
    return key


def _is_text(data: bytes) -> bool:
    return all(32 <= b < 127 or b in b"\t\r\n" for b in data)


def _checked(private: object, key_format: str) -> PrivateKeyRead:
    if isinstance(private, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return PrivateKeyRead(private, key_format)
    kind = type(private).__name__.removeprefix("_").replace("PrivateKey", "") or "unknown"
    return PrivateKeyRead(problem=f"a {kind} private key; DKIM keys are RSA or Ed25519")


def _load(loader, data: bytes) -> object | None:
    try:
        return loader(data, password=None)
    except TypeError:  # encrypted without a password given
        return None
    except (ValueError, UnsupportedAlgorithm):
        return None


__all__ = [
    "DER",
    "DKIMPY_ED25519",
    "FORMATS",
    "PEM",
    "RAW_ED25519",
    "PrivateKey",
    "PrivateKeyRead",
    "dkimpy_ed25519",
    "raw_ed25519",
    "read_private_key",
]

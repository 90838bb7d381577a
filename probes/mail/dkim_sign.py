"""DKIM signing with dkimpy: RSA-SHA256 or Ed25519-SHA256 (RFC 6376, RFC 8463), by key type.

`load_signing_key(path)` reads a private key file with the reader dns.dkim uses
(probes.dkim_key_file; formats: PEM or DER, PKCS#1 or PKCS#8, RSA or Ed25519, and the Ed25519
seed raw or in base64 as dkimpy and OpenDKIM write it, e.g. `probes.lab.pki.dkimpy_private_bytes`).
The key is converted once into what dkimpy signs with (PKCS#1 PEM for RSA, the base64 seed for
Ed25519) and kept in the `SigningKey`, hidden from repr. Passphrase-protected and other key
types are refused.

`sign(raw, ...)` returns the message with a DKIM-Signature header field prepended. By default
From is *oversigned*: `h=` lists `from` once more than the message has From fields, so a
From field added later breaks the signature.

Every failure raises `SigningError` (a ValueError) with a message written here: nothing
from a key file, and no dkimpy message that could quote one, ever reaches it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from probes.dkim_key_file import read_key_file
from probes.parse.dkim_private_key import read_private_key
from probes.parse.message_header import header_fields

RSA_SHA256 = "rsa-sha256"
ED25519_SHA256 = "ed25519-sha256"
ALGORITHMS = (RSA_SHA256, ED25519_SHA256)
CANONICALIZATIONS = ("simple", "relaxed")
DEFAULT_HEADERS = ("from", "to", "subject", "date", "message-id")
_FIELD_NAME_RE = re.compile(r"[\x21-\x39\x3b-\x7e]{1,76}\Z")
_DNS_WORD_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")


class SigningError(ValueError):
    """A key that cannot be used, or signing parameters that do not make a signature.
    The message never contains key material."""


@dataclass(frozen=True)
class SigningKey:
    """A private key ready for dkimpy. `algorithm` is "rsa-sha256" or "ed25519-sha256";
    `bits` the RSA modulus size (256 for Ed25519); `source` where it came from (a path)."""

    algorithm: str
    bits: int
    source: str = ""
    public_value: str = ""  # the base64 p= value its DNS key record must publish
    _dkimpy: bytes = field(default=b"", repr=False, compare=False)

    @property
    def key_type(self) -> str:
        """The DNS key record's k= value: "rsa" or "ed25519"."""
        return "ed25519" if self.algorithm == ED25519_SHA256 else "rsa"


def load_signing_key(path: str) -> SigningKey:
    """Read a DKIM private key file (formats: see the module docstring)."""
    local, private = read_key_file(path)
    if private is None:
        raise SigningError(f"DKIM key {path}: {local.problem}")
    return signing_key_from_private(private, source=path)


def signing_key_from_bytes(data: bytes, *, source: str = "(in memory)") -> SigningKey:
    """A SigningKey from key file contents (the formats load_signing_key reads)."""
    read = read_private_key(data)
    if read.key is None:
        raise SigningError(f"DKIM key {source}: {read.problem}")
    return signing_key_from_private(read.key, source=source)


def signing_key_from_private(private: object, *, source: str = "(in memory)") -> SigningKey:
    """A SigningKey from a cryptography RSA or Ed25519 private key object."""
    if isinstance(private, ed25519.Ed25519PrivateKey):
        seed = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return SigningKey(
            ED25519_SHA256,
            256,
            source,
            base64.b64encode(public).decode(),
            base64.b64encode(seed),
        )
    if isinstance(private, rsa.RSAPrivateKey):
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1: what dkimpy parses
            serialization.NoEncryption(),
        )
        spki = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return SigningKey(
            RSA_SHA256, private.key_size, source, base64.b64encode(spki).decode(), pem
        )
    kind = type(private).__name__.removeprefix("_").replace("PrivateKey", "") or "unknown"
    raise SigningError(f"DKIM key {source}: a {kind} key; DKIM signs with RSA or Ed25519")


def sign(
    raw: bytes,
    *,
    key: SigningKey,
    domain: str,
    selector: str,
    canonicalization: str = "relaxed/relaxed",
    headers: Sequence[str] = DEFAULT_HEADERS,
    oversign_from: bool = True,
) -> bytes:
    """`raw` with a DKIM-Signature (d=domain, s=selector) prepended.

    `canonicalization` is "header/body" ("relaxed/relaxed", "simple/simple", ...) or one
    word for the header (the body is then simple, RFC 6376 §3.5). `headers` are the field
    names to sign (case-insensitive; From is required; a name may repeat, and names absent
    from the message are signed as absent). With `oversign_from`, `from` is listed once more
    than the message has From fields.
    """
    if key.algorithm not in ALGORITHMS or not key._dkimpy:
        raise SigningError(f"unknown signing algorithm {key.algorithm!r}")
    canon = _canonicalization(canonicalization)
    for what, value in (("domain", domain), ("selector", selector)):
        labels = value.rstrip(".").split(".")
        if not value or len(value) > 253 or not all(_DNS_WORD_RE.match(x) for x in labels):
            raise SigningError(f"the DKIM {what} {value[:80]!r} is not an ASCII DNS name")
    names = [h.strip().lower() for h in headers]
    for name in names:
        if not _FIELD_NAME_RE.match(name):
            raise SigningError(f"{name[:40]!r} is not a header field name")
    if "from" not in names:
        raise SigningError("the From header field must be signed (RFC 6376 §5.4)")
    if oversign_from:
        present = sum(1 for n, _ in header_fields(raw) if n.lower() == "from")
        missing = present + 1 - names.count("from")
        if missing > 0:
            last = len(names) - 1 - names[::-1].index("from")
            names[last + 1 : last + 1] = ["from"] * missing
    linesep = b"\r\n" if b"\r\n" in raw.split(b"\n\n", 1)[0] or not raw else b"\n"
    try:
        signature = dkim.sign(
            raw,
            selector.rstrip(".").encode("ascii"),
            domain.rstrip(".").lower().encode("ascii"),
            key._dkimpy,
            canonicalize=canon,
            signature_algorithm=key.algorithm.encode("ascii"),
            include_headers=[n.encode("ascii") for n in names],
            linesep=linesep,
        )
    except dkim.KeyFormatError:
        raise SigningError(f"dkimpy could not use the {key.algorithm} key") from None
    except dkim.ParameterError as exc:
        raise SigningError(f"dkimpy refused the signing parameters: {_clip(exc)}") from None
    except dkim.MessageFormatError:
        raise SigningError("the message's header section cannot be parsed") from None
    except dkim.DKIMException as exc:
        raise SigningError(f"signing failed: {type(exc).__name__}") from None
    return signature + raw


# --- helpers ----------------------------------------------------------------------------------


def _canonicalization(text: str) -> tuple[bytes, bytes]:
    parts = text.strip().lower().split("/")
    if len(parts) == 1:
        parts.append("simple")
    if len(parts) != 2 or not all(p in CANONICALIZATIONS for p in parts):
        raise SigningError(
            f"canonicalization {text[:40]!r} is not header/body of simple or relaxed"
        )
    return parts[0].encode(), parts[1].encode()


def _clip(exc: BaseException, limit: int = 120) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "ALGORITHMS",
    "DEFAULT_HEADERS",
    "ED25519_SHA256",
    "RSA_SHA256",
    "SigningError",
    "SigningKey",
    "load_signing_key",
    "sign",
    "signing_key_from_bytes",
    "signing_key_from_private",
]

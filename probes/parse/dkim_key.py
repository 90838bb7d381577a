"""DKIM key records (`<selector>._domainkey.<domain>` TXT): RFC 6376 §3.6.1, RFC 8301, RFC 8463.

Pure: no I/O. `parse(text)` takes one record (its character-strings already joined without
separator, RFC 6376 §3.6.2.2) and returns a `DkimKeyRecord`, or raises `DkimKeySyntaxError`
naming the tag at fault (`.tag`, None when the fault is not inside one tag).

What counts as a syntax error (the record cannot be used by a verifier):
- the tag-list grammar of RFC 6376 §3.2 (tag names `ALPHA *(ALPHA / DIGIT / "_")`, values of
  printable ASCII except ";", whitespace folding, an optional trailing ";"), duplicate tags;
- `v=` not first, or not exactly `DKIM1`;
- `k=` other than `rsa` / `ed25519` (grammatically an extension, but no verifier can use it);
- `p=` missing, not base64, or not a key of the type `k=` names: RSA as SubjectPublicKeyInfo
  DER (RFC 6376) or a bare PKCS#1 RSAPublicKey (published by some tools, accepted by common
  verifiers), Ed25519 as the raw 32-byte key (RFC 8463);
- `h=`, `s=`, `t=` not a colon-separated list of words.
An empty `p=` is not a syntax error: it is a revoked key (`record.revoked`).
Unknown tags, hash algorithms, service types and flags are ignored, as the RFC requires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

KEY_TYPES = ("rsa", "ed25519")
MIN_RSA_BITS = 1024  # RFC 8301 §3.2: verifiers MUST NOT accept smaller keys
GOOD_RSA_BITS = 2048  # RFC 8301 §3.2: signers SHOULD use at least this
MAX_VERIFIED_RSA_BITS = 4096  # RFC 8301 §3.2: verifiers MUST handle up to here, MAY beyond

_WSP = " \t\r\n"  # FWS as it appears in DNS data: spaces, tabs, folded line ends
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_WORD = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")  # RFC 6376 hyphenated-word
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/=]*")  # the characters alone (a fast pass first)
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_LOOKS_LIKE_DKIM = re.compile(r"(?:\A|;)[ \t\r\n]*(?:v[ \t\r\n]*=[ \t\r\n]*DKIM1|p[ \t\r\n]*=)")

PublicKeyObject = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class DkimKeySyntaxError(ValueError):
    """The record is not a usable DKIM key record; `tag` names the tag at fault (or None)."""

    def __init__(self, message: str, tag: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag


@dataclass(frozen=True)
class PublicKey:
    """A parsed public key: `key_type` "rsa" or "ed25519", `bits` (RSA modulus size, 256 for
    Ed25519), `encoding` ("spki", "pkcs1" or "raw") and the cryptography key object."""

    key_type: str
    bits: int
    encoding: str
    key: PublicKeyObject = field(compare=False, repr=False)

    @property
    def spki(self) -> bytes:
        """The key as SubjectPublicKeyInfo DER (whatever form it was published in)."""
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def fingerprint(self) -> str:
        """ "sha256:<hex>" of the SubjectPublicKeyInfo DER: public, safe to show."""
        return "sha256:" + hashlib.sha256(self.spki).hexdigest()

    def same_key(self, other: PublicKey | PublicKeyObject) -> bool:
        """True when `other` is the same public key (RSA: same n and e; Ed25519: same bytes)."""
        theirs = other.key if isinstance(other, PublicKey) else other
        mine = self.key
        if isinstance(mine, rsa.RSAPublicKey) and isinstance(theirs, rsa.RSAPublicKey):
            return mine.public_numbers() == theirs.public_numbers()
        if isinstance(mine, ed25519.Ed25519PublicKey) and isinstance(
            theirs, ed25519.Ed25519PublicKey
        ):
            raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
            return mine.public_bytes(*raw) == theirs.public_bytes(*raw)
        return False


@dataclass(frozen=True)
class DkimKeyRecord:
    """One parsed DKIM key record. `tags` holds every tag (values with FWS trimmed)."""

    tags: Mapping[str, str]
    version: str | None  # v=, None when absent
    key_type: str  # k=, lower-case, default "rsa"
    public_key: PublicKey | None  # None when revoked (empty p=)
    flags: tuple[str, ...] = ()  # t=, lower-case
    hash_algs: tuple[str, ...] | None = None  # h=, lower-case; None = any algorithm
    services: tuple[str, ...] = ("*",)  # s=, lower-case
    notes: str | None = None  # n=

    @property
    def revoked(self) -> bool:
        return self.public_key is None

    @property
    def testing(self) -> bool:
        """t=y: the domain is testing DKIM (RFC 6376: verifiers MUST NOT treat differently
        signed mail differently from unsigned mail)."""
        return "y" in self.flags

    @property
    def strict(self) -> bool:
        """t=s: the i= domain must be exactly d=, not a subdomain."""
        return "s" in self.flags

    @property
    def allows_sha256(self) -> bool:
        """Can sign with sha256 (RFC 8301 made sha1 signatures invalid)."""
        return self.hash_algs is None or "sha256" in self.hash_algs

    @property
    def for_email(self) -> bool:
        return "*" in self.services or "email" in self.services


def looks_like_dkim(text: str) -> bool:
    """A cheap guess: the text starts with `v=DKIM1` or has a `p=` tag (used to tell a DKIM
    record from unrelated TXT data, such as a wildcard SPF record, at a guessed selector)."""
    return bool(_LOOKS_LIKE_DKIM.search(text))


def parse_tag_list(text: str) -> dict[str, str]:
    """RFC 6376 §3.2 tag=value list -> {tag: value} (insertion order kept, FWS trimmed)."""
    tags: dict[str, str] = {}
    specs = text.split(";")
    for i, spec in enumerate(specs):
        if not spec.strip(_WSP):
            if i == len(specs) - 1:
                break  # an optional trailing ";"
            raise DkimKeySyntaxError(f"empty tag-spec (nothing between two ';') at tag {i + 1}")
        if "=" not in spec:
            raise DkimKeySyntaxError(
                f"tag-spec {_short(spec.strip(_WSP))!r} has no '='", _guess_name(spec)
            )
        name, value = spec.split("=", 1)
        name, value = name.strip(_WSP), value.strip(_WSP)
        if not _TAG_NAME.match(name):
            raise DkimKeySyntaxError(f"invalid tag name {_short(name)!r}", _guess_name(name))
        bad = _bad_char(value)
        if bad is not None:
            raise DkimKeySyntaxError(f"tag {name}= contains {bad}", name)
        if name in tags:
            raise DkimKeySyntaxError(f"tag {name}= appears more than once", name)
        tags[name] = value
    return tags


def parse(text: str) -> DkimKeyRecord:
    """Parse one DKIM key record; raises DkimKeySyntaxError (naming the tag) when unusable."""
    if not text.strip(_WSP):
        raise DkimKeySyntaxError("the record is empty (no p= tag)", "p")
    tags = parse_tag_list(text)
    version = tags.get("v")
    if version is not None:
        if next(iter(tags)) != "v":
            raise DkimKeySyntaxError("v= must be the first tag", "v")
        if version != "DKIM1":
            raise DkimKeySyntaxError(f"v={_short(version)!r} is not DKIM1", "v")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in KEY_TYPES:
        raise DkimKeySyntaxError(
            f"k={_short(tags['k'])!r} is not a known key type (rsa or ed25519)", "k"
        )
    hash_algs = _word_list(tags, "h")
    services = _word_list(tags, "s", allow_star=True)
    flags = _word_list(tags, "t")
    if "p" not in tags:
        hint = " (tag names are case-sensitive: found P=)" if "P" in tags else ""
        raise DkimKeySyntaxError("required tag p= is missing" + hint, "p")
    public_key = None
    p = "".join(tags["p"].split())
    if p:
        public_key = load_public_key(key_type, _b64decode(p))
    return DkimKeyRecord(
        tags=tags,
        version=version,
        key_type=key_type,
        public_key=public_key,
        flags=flags or (),
        hash_algs=hash_algs,
        services=services or ("*",),
        notes=tags.get("n"),
    )


def load_public_key(key_type: str, data: bytes) -> PublicKey:
    """The `p=` bytes of a `k=key_type` record as a PublicKey; DkimKeySyntaxError (tag p)."""
    if key_type == "ed25519":
        if len(data) == 44 and data.startswith(_ED25519_SPKI_PREFIX):
            raise DkimKeySyntaxError(
                "p= holds an Ed25519 SubjectPublicKeyInfo; RFC 8463 publishes the raw 32-byte key",
                "p",
            )
        if len(data) != 32:
            raise DkimKeySyntaxError(
                f"p= is {len(data)} bytes; an Ed25519 key (RFC 8463) is 32 bytes", "p"
            )
        try:
            key = ed25519.Ed25519PublicKey.from_public_bytes(data)
        except ValueError:
            raise DkimKeySyntaxError("p= is not a valid Ed25519 public key", "p") from None
        return PublicKey("ed25519", 256, "raw", key)
    try:
        loaded = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm, TypeError):
        hint = " (looks like a raw Ed25519 key: k=ed25519 missing?)" if len(data) == 32 else ""
        raise DkimKeySyntaxError(
            f"p= ({len(data)} bytes) is not a DER RSA public key{hint}", "p"
        ) from None
    if not isinstance(loaded, rsa.RSAPublicKey):
        kind = type(loaded).__name__.removeprefix("_").replace("PublicKey", "")
        raise DkimKeySyntaxError(f"k=rsa but p= holds a {kind or 'non-RSA'} key", "p")
    if data == loaded.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        encoding = "spki"
    elif data == loaded.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1):
        encoding = "pkcs1"
    else:
        encoding = "der"
    return PublicKey("rsa", loaded.key_size, encoding, loaded)


def _b64decode(p: str) -> bytes:
    for i, c in enumerate(p if not _BASE64_CHARS.fullmatch(p) else ()):  # find the bad one
        if not (c.isascii() and (c.isalnum() or c in "+/=")):
            raise DkimKeySyntaxError(f"p= is not base64 ({_describe_char(c)} at offset {i})", "p")
    if not _BASE64.match(p):
        raise DkimKeySyntaxError("p= is not base64 ('=' before the end)", "p")
    try:
        return base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        raise DkimKeySyntaxError(
            f"p= is not valid base64 ({len(p)} characters: wrong length or padding)", "p"
        ) from None


def _word_list(
    tags: Mapping[str, str], name: str, *, allow_star: bool = False
) -> tuple[str, ...] | None:
    """A colon-separated list tag (h=, s=, t=) lower-cased; None when the tag is absent."""
    if name not in tags:
        return None
    items = [item.strip(_WSP) for item in tags[name].split(":")]
    for item in items:
        if not item:
            raise DkimKeySyntaxError(f"{name}= has an empty list item", name)
        if not (_WORD.match(item) or (allow_star and item == "*")):
            raise DkimKeySyntaxError(f"{name}= item {_short(item)!r} is not a word", name)
    return tuple(item.lower() for item in items)


def _bad_char(value: str) -> str | None:
    for i, c in enumerate(value):
        if c in _WSP:
            continue
        if not ("\x21" <= c <= "\x7e"):
            return f"{_describe_char(c)} at offset {i}"
    return None


def _describe_char(c: str) -> str:
    if c == "\ufffd":
        return "a byte that is not UTF-8"
    if not c.isascii():
        return f"non-ASCII character U+{ord(c):04X}"
    if not c.isprintable():
        return f"control character 0x{ord(c):02x}"
    return f"character {c!r}"


def _guess_name(text: str) -> str | None:
    name = text.split("=", 1)[0].strip(_WSP)
    return name if len(name) <= 20 and _TAG_NAME.match(name) else None


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "GOOD_RSA_BITS",
    "KEY_TYPES",
    "MAX_VERIFIED_RSA_BITS",
    "MIN_RSA_BITS",
    "DkimKeyRecord",
    "DkimKeySyntaxError",
    "PublicKey",
    "load_public_key",
    "looks_like_dkim",
    "parse",
    "parse_tag_list",
]

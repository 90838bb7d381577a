"""The MTA-STS TXT record at `_mta-sts.<domain>` (RFC 8461 §3.1). Pure: no I/O.

    sts-text-record = sts-version 1*(*WSP field-delim *WSP sts-field) [field-delim]
    sts-field       = sts-id / sts-extension
    field-delim     = ";"
    sts-version     = %s"v=STSv1"
    sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
    sts-extension   = sts-ext-name "=" sts-ext-value
    sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)

`is_sts_record` picks the records a person meant as MTA-STS (case-insensitive "v=STSv1"
prefix), so that "v=stsv1; id=1" is reported as a syntax error rather than as no record;
`parse` then applies the grammar strictly (senders compare "v=STSv1" and "id=" case-
sensitively). One leniency: whitespace after the final field or ";" is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = "v=STSv1"
_WSP = " \t"
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")


class MtaStsSyntaxError(ValueError):
    """The record does not follow RFC 8461 §3.1; the message says where."""


@dataclass(frozen=True)
class MtaStsRecord:
    id: str
    extensions: tuple[tuple[str, str], ...] = ()


def is_sts_record(text: str) -> bool:
    """The record is meant as an MTA-STS record (starts with v=STSv1, any case)."""
    return text.lstrip(_WSP).lower().startswith(VERSION.lower())


def parse(text: str) -> MtaStsRecord:
    """Parse one MTA-STS TXT record (its strings already joined). Raises MtaStsSyntaxError."""
    for i, ch in enumerate(text):
        if not " " <= ch <= "~" and ch != "\t":
            raise MtaStsSyntaxError(f"character {ch!r} at position {i} is not printable ASCII")
    if not text.startswith(VERSION):
        raise MtaStsSyntaxError(f"the record must start with {VERSION!r} (case-sensitive)")
    rest = text[len(VERSION) :].rstrip(_WSP)
    if not rest:
        raise MtaStsSyntaxError("no id= field")
    if not rest.lstrip(_WSP).startswith(";"):
        raise MtaStsSyntaxError(f"{VERSION} must be followed by ';'")
    parts = rest.split(";")[1:]
    if parts and parts[-1] == "":
        parts.pop()  # one trailing ";" is allowed
    record_id: str | None = None
    extensions: list[tuple[str, str]] = []
    for n, raw in enumerate(parts, start=1):
        field = raw.strip(_WSP)
        if not field:
            raise MtaStsSyntaxError(f"field {n} is empty")
        name, eq, value = field.partition("=")
        if not eq:
            raise MtaStsSyntaxError(f"field {field[:40]!r} has no '='")
        if name == "id":
            if record_id is not None:
                raise MtaStsSyntaxError("id= appears more than once")
            if not _ID.fullmatch(value):
                raise MtaStsSyntaxError(f"id {value[:40]!r} must be 1 to 32 letters or digits")
            record_id = value
            continue
        if not _EXT_NAME.fullmatch(name):
            raise MtaStsSyntaxError(f"field name {name[:40]!r} is not valid")
        if not _EXT_VALUE.fullmatch(value):
            raise MtaStsSyntaxError(
                f"value of {name!r} must be non-empty, without spaces, '=' or ';'"
            )
        extensions.append((name, value))
    if record_id is None:
        raise MtaStsSyntaxError("no id= field (required)")
    return MtaStsRecord(record_id, tuple(extensions))


# -- the policy file (RFC 8461 §3.2) ---------------------------------------------------------
#
#     sts-policy-record   = *WSP sts-policy-field *WSP *(sts-policy-term *WSP sts-policy-field
#                           *WSP) [sts-policy-term]
#     sts-policy-field    = sts-policy-version / sts-policy-mode / sts-policy-max-age /
#                           sts-policy-mx / sts-policy-extension
#     sts-policy-term     = LF / CRLF
#     sts-policy-version  = "version" *WSP ":" *WSP "STSv1"
#     sts-policy-mode     = "mode" *WSP ":" *WSP ("testing" / "enforce" / "none")
#     sts-policy-mx       = "mx" *WSP ":" *WSP ["*."] 1*(label ".") label   (repeatable)
#     sts-policy-max-age  = "max_age" *WSP ":" *WSP 1*10DIGIT                (<= 31557600)
#
# Unknown keys are ignored; of a non-repeated key only the first instance counts (§3.2).

MAX_POLICY_BYTES = 64 * 1024
MAX_AGE_LIMIT = 31557600  # one year (RFC 8461 §3.2)
MODES = ("enforce", "testing", "none")
_POLICY_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class MtaStsPolicyError(ValueError):
    """The policy file does not follow RFC 8461 §3.2; the message says why (and where)."""


@dataclass(frozen=True)
class MtaStsPolicy:
    version: str
    mode: str  # enforce | testing | none
    max_age: int
    mx: tuple[str, ...]  # patterns, lower case, no trailing dot
    ignored: tuple[str, ...] = ()  # unknown keys, and repeated non-repeatable ones
    line_ends: str = "LF"  # "LF", "CRLF" or "mixed" (all allowed)

    def covers(self, host: str) -> bool:
        return any(mx_matches(pattern, host) for pattern in self.mx)


def parse_policy(data: bytes) -> MtaStsPolicy:
    """Parse a policy file as fetched (bytes). Raises MtaStsPolicyError naming the reason:
    too large, not UTF-8, a malformed line, a missing or invalid field."""
    if len(data) > MAX_POLICY_BYTES:
        raise MtaStsPolicyError(f"the policy is larger than {MAX_POLICY_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MtaStsPolicyError(f"the policy is not UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    line_ends = "mixed" if crlf and lf else "CRLF" if crlf else "LF"
    fields: dict[str, str] = {}
    mx: list[str] = []
    ignored: list[str] = []
    for n, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if "\r" in line:
            raise MtaStsPolicyError(f"line {n}: a CR that does not end the line")
        stripped = line.strip(_WSP)
        if not stripped:
            continue
        key, colon, value = stripped.partition(":")
        key, value = key.rstrip(_WSP), value.strip(_WSP)
        if not colon:
            raise MtaStsPolicyError(f"line {n}: {stripped[:60]!r} is not `key: value`")
        if not _POLICY_KEY.fullmatch(key):
            raise MtaStsPolicyError(f"line {n}: {key[:40]!r} is not a valid key")
        if any(not " " <= ch <= "~" and ch != "\t" for ch in value):
            raise MtaStsPolicyError(f"line {n}: the value of {key!r} is not printable ASCII")
        if key == "mx":
            mx.append(_mx_pattern(value, n))
        elif key in ("version", "mode", "max_age"):
            if key in fields:
                ignored.append(f"{key} (line {n}, repeated)")
            else:
                fields[key] = value
        else:
            ignored.append(key)
    version = fields.get("version")
    if version is None:
        raise MtaStsPolicyError("no `version` field (required: `version: STSv1`)")
    if version != "STSv1":
        raise MtaStsPolicyError(f"version {version[:40]!r} is not STSv1")
    mode = fields.get("mode")
    if mode is None:
        raise MtaStsPolicyError("no `mode` field (required: enforce, testing or none)")
    if mode not in MODES:
        raise MtaStsPolicyError(f"mode {mode[:40]!r} is not enforce, testing or none")
    age_text = fields.get("max_age")
    if age_text is None:
        raise MtaStsPolicyError("no `max_age` field (required: seconds, up to 31557600)")
    if not age_text.isascii() or not age_text.isdigit() or len(age_text) > 10:
        raise MtaStsPolicyError(f"max_age {age_text[:40]!r} is not 1 to 10 digits")
    max_age = int(age_text)
    if max_age > MAX_AGE_LIMIT:
        raise MtaStsPolicyError(f"max_age {max_age} is more than {MAX_AGE_LIMIT} (one year)")
    if not mx and mode != "none":
        raise MtaStsPolicyError(f"no `mx` field (at least one is required with mode {mode})")
    return MtaStsPolicy(version, mode, max_age, tuple(mx), tuple(ignored), line_ends)


def _mx_pattern(value: str, n: int) -> str:
    pattern = value.lower()
    if pattern.endswith("."):
        pattern = pattern[:-1]
    name = pattern[2:] if pattern.startswith("*.") else pattern
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise MtaStsPolicyError(
            f"line {n}: mx {value[:60]!r} is not a host name or a `*.` wildcard of one"
        )
    return pattern


def mx_matches(pattern: str, host: str) -> bool:
    """Whether an MX host name matches a policy `mx` pattern (RFC 8461 §4.1): equal names, or
    a `*.` wildcard standing for exactly one left-most label. Case and a trailing dot do not
    matter."""
    pattern = pattern.strip().lower().rstrip(".")
    host = host.strip().lower().rstrip(".")
    if not pattern or not host:
        return False
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and "*" not in first and rest == pattern[2:]
    return pattern == host

"""The SMTP TLS Reporting TXT record at `_smtp._tls.<domain>` (RFC 8460 §3). Pure: no I/O.

    tlsrpt-record     = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
    field-delim       = *WSP ";" *WSP
    tlsrpt-field      = tlsrpt-rua / tlsrpt-extension      ; rua required
    tlsrpt-version    = %s"v=TLSRPTv1"
    tlsrpt-rua        = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
    tlsrpt-uri        = URI          ; commas and "!" MUST be percent-encoded
    tlsrpt-extension  = tlsrpt-ext-name "=" tlsrpt-ext-value
    tlsrpt-ext-name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    tlsrpt-ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)

Only the "mailto" and "https" URI schemes are defined for rua (RFC 8460 §3); any other scheme
is reported as a syntax error, as is a repeated rua. `is_tlsrpt_record` picks records meant as
TLS-RPT (case-insensitive prefix) so a mis-cased version is a syntax error, not "no record".
Whitespace after the final field is accepted.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

VERSION = "v=TLSRPTv1"
SCHEMES = ("mailto", "https")
_WSP = " \t"
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
# RFC 3986 characters (unreserved, reserved, "%" escapes), "!" and "," excluded (RFC 8460).
_URI = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@$&'()*+;=]|%[0-9A-Fa-f]{2})+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class TlsRptSyntaxError(ValueError):
    """The record does not follow RFC 8460 §3; the message says where."""


@dataclass(frozen=True)
class TlsRptRecord:
    rua: tuple[str, ...]
    extensions: tuple[tuple[str, str], ...] = ()


def is_tlsrpt_record(text: str) -> bool:
    """The record is meant as a TLS-RPT record (starts with v=TLSRPTv1, any case)."""
    return text.lstrip(_WSP).lower().startswith(VERSION.lower())


def _ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hostname(host: str) -> bool:
    host = host.rstrip(".")
    return 0 < len(host) <= 253 and all(_LABEL.fullmatch(x) for x in host.split("."))


def check_uri(uri: str) -> str:
    """One rua URI checked; returns it or raises TlsRptSyntaxError."""
    if "!" in uri or "," in uri:
        raise TlsRptSyntaxError(f"rua URI {uri[:60]!r}: '!' and ',' must be percent-encoded")
    if not _URI.fullmatch(uri):
        raise TlsRptSyntaxError(f"rua URI {uri[:60]!r} contains characters not allowed in a URI")
    scheme, colon, rest = uri.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        raise TlsRptSyntaxError(f"rua URI {uri[:60]!r} has no scheme")
    if scheme.lower() not in SCHEMES:
        raise TlsRptSyntaxError(
            f"rua URI {uri[:60]!r}: scheme {scheme!r} is not mailto or https (RFC 8460 §3)"
        )
    if scheme.lower() == "mailto":
        address = unquote(rest.partition("?")[0])
        local, at, domain = address.rpartition("@")
        if not at or not local or not _hostname(domain):
            raise TlsRptSyntaxError(f"rua URI {uri[:60]!r} is not a mailto: address")
        return uri
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise TlsRptSyntaxError(f"rua URI {uri[:60]!r} is not a valid https URI") from None
    if not rest.startswith("//") or not host or not (_hostname(host) or _ip(host)):
        raise TlsRptSyntaxError(f"rua URI {uri[:60]!r} has no valid https host")
    return uri


def parse(text: str) -> TlsRptRecord:
    """Parse one TLS-RPT TXT record (its strings already joined). Raises TlsRptSyntaxError."""
    for i, ch in enumerate(text):
        if not " " <= ch <= "~" and ch != "\t":
            raise TlsRptSyntaxError(f"character {ch!r} at position {i} is not printable ASCII")
    if not text.startswith(VERSION):
        raise TlsRptSyntaxError(f"the record must start with {VERSION!r} (case-sensitive)")
    rest = text[len(VERSION) :].rstrip(_WSP)
    if not rest:
        raise TlsRptSyntaxError("no rua= field")
    if not rest.lstrip(_WSP).startswith(";"):
        raise TlsRptSyntaxError(f"{VERSION} must be followed by ';'")
    parts = rest.split(";")[1:]
    if parts and parts[-1].strip(_WSP) == "":
        parts.pop()  # one trailing ";" is allowed
    rua: tuple[str, ...] | None = None
    extensions: list[tuple[str, str]] = []
    for n, raw in enumerate(parts, start=1):
        field = raw.strip(_WSP)
        if not field:
            raise TlsRptSyntaxError(f"field {n} is empty")
        name, eq, value = field.partition("=")
        if not eq:
            raise TlsRptSyntaxError(f"field {field[:40]!r} has no '='")
        if name == "rua":
            if rua is not None:
                raise TlsRptSyntaxError("rua= appears more than once")
            uris = [u.strip(_WSP) for u in value.split(",")]
            if any(not u for u in uris):
                raise TlsRptSyntaxError("rua= has an empty URI")
            rua = tuple(check_uri(u) for u in uris)
            continue
        if not _EXT_NAME.fullmatch(name):
            raise TlsRptSyntaxError(f"field name {name[:40]!r} is not valid")
        if not _EXT_VALUE.fullmatch(value):
            raise TlsRptSyntaxError(
                f"value of {name!r} must be non-empty, without spaces, '=' or ';'"
            )
        extensions.append((name, value))
    if rua is None:
        raise TlsRptSyntaxError("no rua= field (required)")
    return TlsRptRecord(rua, tuple(extensions))

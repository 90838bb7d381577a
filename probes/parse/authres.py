"""Authentication-Results header values (RFC 8601, with RFC 8616 and RFC 8617). Pure: no I/O.

`parse(value)` takes ONE header value, without the field name (`mx.example.test; dkim=pass
header.d=example.test`), and returns `AuthResults(authserv_id, version, results)`. Every
malformed value raises `AuthResError` (a `ValueError`), never anything else, in time and memory
bounded by the input (at most `MAX_LENGTH` characters, comments nested at most
`MAX_COMMENT_DEPTH` deep). `parse_arc(value)` reads an ARC-Authentication-Results value
(`i=1; mx.example.test; arc=pass ...`, RFC 8617 §4.1.1) into `ArcAuthResults(instance,
authres)` with the same rules and the same exception.

Callers reading headers with the `email` package should use a non-compat32 policy (e.g.
`email.policy.default`) or decode the raw header as UTF-8 themselves: compat32 turns non-ASCII
bytes into U+FFFD, which parses but no longer matches the sender's value.

Grammar accepted (RFC 8601 §2.2; CFWS = folding white space and comments, allowed between
every two items below, including around ";", "=", "/" and "."):

    authres-payload = [CFWS] authserv-id [ CFWS authres-version ]
                      ( no-result / 1*resinfo ) [CFWS]
    authserv-id     = value                      ; RFC 2045 token or quoted-string
    authres-version = 1*DIGIT
    no-result       = ";" "none"
    resinfo         = ";" methodspec [ reasonspec ] *propspec
    methodspec      = method [ "/" method-version ] "=" result
    reasonspec      = "reason" "=" value
    propspec        = ptype "." property "=" pvalue
    pvalue          = value / [ [ local-part ] "@" ] domain-name
    method, result, ptype, property = Keyword    ; letters, digits, "-" (and "_")

Known ptypes are smtp, header, body and policy (RFC 8601) but any Keyword is accepted, e.g. ARC's
`header.oldest-pass` (RFC 8617) or `smtp.remote-ip`. Values may contain non-ASCII (RFC 8616).

Normalisation. `method`, `result` and the property keys (`"ptype.property"`, e.g. `"header.d"`,
`"smtp.mailfrom"`) are lower-cased: RFC 8601 makes them case-insensitive. `authserv_id`,
`reason` and property values are kept as written, except that a value written as a
quoted-string is unquoted (its backslash escapes resolved). A quoted local-part followed by
`@domain` (`"john doe"@example.com`) is an address, not a quoted value: it is kept as written,
quotes included. Comments are dropped everywhere.

Tolerance (quirks of real receivers, all accepted):
- comments anywhere, nested, with `\\(` `\\)` escapes, and a ";" inside a comment
  (Exim: `dkim=fail (body hash mismatch; body probably modified in transit)`);
- missing or extra white space around ";", "=", "/" and ".", line folds (CR, LF, tab);
- empty resinfos (`;;`) and trailing semicolons; a value with only `authserv-id;` has no
  results, like `authserv-id; none`;
- upper- or mixed-case methods, results, ptypes and properties;
- an unquoted `reason` (Microsoft `compauth=pass reason=100`); `reason` may appear among the
  properties, not only first;
- property values with characters RFC 2045 tokens forbid (`@example.com`, `<x@y>`, `1.2.3.4`,
  `2001:db8::1`, base64 `+/=`), as long as they hold no white space, "(", ")", ";" or '"';
  quote the value for anything else;
- an empty property or reason value before ";" or the end (`header.d=;`) is the empty string;
- a property without a ptype (Microsoft `dmarc=pass action=none`) is kept under its bare
  lower-cased name (`"action"`). Consequence: a missing ";" between two results
  (`dkim=pass spf=pass`) reads the second as a bare property `"spf"` of the first;
- when a reason or a property key appears twice in one resinfo, the first one is kept;
- a resinfo that is only a domain name is skipped: Microsoft 365 writes the recipient domain
  between results (`dkim=none (message not signed) header.d=none;lists.example.org;
  dmarc=none action=none header.from=contoso.com`). A bare word without a dot (`x; spf;`)
  is still an error;
- `parse(value, authserv_id_optional=True)` also accepts a value that starts directly with a
  result, as Microsoft 365 writes its `Authentication-Results` (`spf=pass (sender IP is ...)
  smtp.mailfrom=...; dkim=...`): `authserv_id` is then "". By default that is an error:
  without an authserv-id nobody can say whose verdicts these are (RFC 8601 §5).

Rejected (`AuthResError`): a value that is not a str, longer than MAX_LENGTH, or contains
C0/C1 control characters other than tab, CR and LF; nothing but white space and comments; a missing
authserv-id (the value starts with ";" or with `method=`); an authserv-id not followed by ";"
(`example.org` alone); an authres-version or method-version that is not 1-9 digits; a method
without "=" or without a result (`spf=;`); `none` next to real results; stray words (a property
without "="); an unterminated quoted-string or comment; an unbalanced ")"; comments nested
deeper than MAX_COMMENT_DEPTH.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from probes.parse.shown import shorten

MAX_LENGTH: Final = 64 * 1024  # characters of one header value
MAX_COMMENT_DEPTH: Final = 32
MAX_ARC_INSTANCE: Final = 50  # RFC 8617 §4.2.1
_MAX_VERSION_DIGITS: Final = 9

_WS: Final = frozenset(" \t\r\n")
_KEYWORD_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
)
# An unquoted value (reason, pvalue) ends at white space, a comment, ";" or a quote.
_VALUE_STOP: Final = frozenset(' \t\r\n();"')
# An unquoted authserv-id also ends at "=" (so `spf=pass; ...` is seen as a missing id).
_AUTHSERV_STOP: Final = _VALUE_STOP | {"="}
# A resinfo that is only a dotted name: Microsoft 365 repeats the recipient domain as if it were
# a result (`header.d=none;vger.kernel.org; dmarc=none ...`). A method name never holds a dot.
_BARE_DOMAIN: Final = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+\.?")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0 but HT/LF/CR, DEL, C1


class AuthResError(ValueError):
    """A malformed Authentication-Results value. `position` is the 0-based character offset
    where parsing stopped (None when the value as a whole is refused)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message if position is None else f"{message} (at offset {position})")
        self.position = position


@dataclass(frozen=True)
class AuthResult:
    """One resinfo: `dkim=pass header.d=example.test` -> method "dkim", result "pass",
    properties {"header.d": "example.test"}. `method_version` is N of `method/N=...`.

    `properties` maps lower-cased `"ptype.property"` (or a bare name for a ptype-less property,
    see the module docstring) to the value as written (unquoted). Treat it as read-only."""

    method: str
    result: str
    reason: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    method_version: int | None = None

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value of property `key` (e.g. "header.d"; matched case-insensitively)."""
        return self.properties.get(key.lower(), default)


@dataclass(frozen=True)
class AuthResults:
    """One parsed Authentication-Results value. `results` is a tuple in header order; it is
    empty for `authserv-id; none` (and for `authserv-id;`). `version` is the authres-version
    after the authserv-id (`example.org 1; ...`), None when absent."""

    authserv_id: str
    version: int | None
    results: tuple[AuthResult, ...]

    def for_method(self, method: str) -> tuple[AuthResult, ...]:
        """The results for `method` (case-insensitive), in header order."""
        wanted = method.lower()
        return tuple(r for r in self.results if r.method == wanted)


@dataclass(frozen=True)
class ArcAuthResults:
    """One ARC-Authentication-Results value (RFC 8617 §4.1.1): the ARC set's `instance` (i=)
    and the Authentication-Results payload that follows it."""

    instance: int
    authres: AuthResults


def parse(value: str, *, authserv_id_optional: bool = False) -> AuthResults:
    """Parse one Authentication-Results header value (no field name). See the module docstring
    for the grammar and tolerance rules; raises AuthResError for anything malformed."""
    return _Parser(_checked(value)).payload(authserv_id_optional)


def parse_arc(value: str, *, authserv_id_optional: bool = False) -> ArcAuthResults:
    """Parse one ARC-Authentication-Results value, `i=N; authres-payload` (RFC 8617 §4.1.1;
    N is 1 to MAX_ARC_INSTANCE). The payload follows the rules of `parse`."""
    parser = _Parser(_checked(value))
    parser.skip_cfws()
    if parser.keyword().lower() != "i":
        parser.pos = 0
        raise parser.error("ARC-Authentication-Results must start with 'i='")
    parser.skip_cfws()
    parser.expect("=", "expected '=' after 'i'")
    parser.skip_cfws()
    start = parser.pos
    instance = parser.digits("ARC instance")
    if not 1 <= instance <= MAX_ARC_INSTANCE:
        parser.pos = start
        raise parser.error(f"ARC instance {instance} is not 1 to {MAX_ARC_INSTANCE}")
    parser.skip_cfws()
    parser.expect(";", "expected ';' after the ARC instance")
    return ArcAuthResults(instance, parser.payload(authserv_id_optional))


def _checked(value: object) -> str:
    if not isinstance(value, str):
        raise AuthResError(f"header value must be str, not {type(value).__name__}")
    if len(value) > MAX_LENGTH:
        raise AuthResError(f"header value longer than {MAX_LENGTH} characters ({len(value)})")
    bad = _CONTROL.search(value)
    if bad:
        raise AuthResError(f"control character {bad.group()!r} in header value", bad.start())
    return value


class _Parser:
    """Recursive descent over the characters of one value; `pos` is the next character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- primitives -------------------------------------------------------------------------

    def error(self, message: str) -> AuthResError:
        return AuthResError(message, self.pos)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_cfws(self) -> None:
        """Skip white space and (nested) comments."""
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in _WS:
                self.pos += 1
            elif ch == "(":
                self.skip_comment()
            else:
                return

    def skip_comment(self) -> None:
        text, n = self.text, len(self.text)
        start = self.pos
        depth = 0
        while self.pos < n:
            ch = text[self.pos]
            self.pos += 1
            if ch == "\\":
                if self.pos >= n:
                    break
                self.pos += 1
            elif ch == "(":
                depth += 1
                if depth > MAX_COMMENT_DEPTH:
                    raise self.error(f"comments nested deeper than {MAX_COMMENT_DEPTH}")
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return
        self.pos = start
        raise self.error("unterminated comment")

    def quoted_string(self) -> str:
        """A quoted-string starting at `pos`, unquoted (backslash escapes resolved)."""
        text, n = self.text, len(self.text)
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while self.pos < n:
            ch = text[self.pos]
            self.pos += 1
            if ch == "\\":
                if self.pos >= n:
                    break
                out.append(text[self.pos])
                self.pos += 1
            elif ch == '"':
                return "".join(out)
            else:
                out.append(ch)
        self.pos = start
        raise self.error("unterminated quoted-string")

    def run(self, stop: frozenset[str]) -> str:
        """The longest run of characters not in `stop`."""
        text, n = self.text, len(self.text)
        start = self.pos
        while self.pos < n and text[self.pos] not in stop:
            self.pos += 1
        return text[start : self.pos]

    def keyword(self) -> str:
        text, n = self.text, len(self.text)
        start = self.pos
        while self.pos < n and text[self.pos] in _KEYWORD_CHARS:
            self.pos += 1
        return text[start : self.pos]

    def digits(self, what: str) -> int:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in "0123456789":
            self.pos += 1
        found = self.text[start : self.pos]
        if not found:
            raise self.error(f"expected a {what} (digits)")
        if len(found) > _MAX_VERSION_DIGITS:
            self.pos = start
            raise self.error(f"{what} has more than {_MAX_VERSION_DIGITS} digits")
        return int(found)

    def expect(self, ch: str, message: str) -> None:
        if self.peek() != ch:
            found = self.peek()
            raise self.error(f"{message}, found {shorten(found) if found else 'the end'}")
        self.pos += 1

    # -- grammar ----------------------------------------------------------------------------

    def payload(self, authserv_id_optional: bool) -> AuthResults:
        self.skip_cfws()
        if self.at_end():
            raise self.error("no authserv-id: the value is empty or only comments")
        start = self.pos
        quoted = self.peek() == '"'
        authserv_id = self.quoted_string() if quoted else self.run(_AUTHSERV_STOP)
        after_id = self.pos
        self.skip_cfws()
        if not quoted and (not authserv_id or self.peek() in ("=", "/")):
            if self.text[start] not in ";=" and not authserv_id:
                raise self.error(f"unexpected {shorten(self.text[start])}")
            if not authserv_id_optional:
                self.pos = start
                raise self.error("missing authserv-id (the value starts with a result)")
            self.pos = start
            return AuthResults("", None, self.resinfos(need_semicolon=self.peek() == ";"))
        if not authserv_id.strip():
            self.pos = start
            raise self.error("empty authserv-id")
        version = None
        ch = self.peek()
        if ch and ch in "0123456789" and self.pos > after_id:
            version = self.digits("authres-version")
            if self.peek() not in _WS and self.peek() not in ("(", ";", ""):
                raise self.error("authres-version must be digits only")
            self.skip_cfws()
        if self.peek() != ";":
            self.expect(";", "expected ';' after the authserv-id")
        return AuthResults(authserv_id, version, self.resinfos(need_semicolon=True))

    def resinfos(self, need_semicolon: bool) -> tuple[AuthResult, ...]:
        results: list[AuthResult] = []
        none_at: int | None = None
        while True:
            self.skip_cfws()
            if self.at_end():
                break
            if need_semicolon:
                self.expect(";", "expected ';' between results")
                self.skip_cfws()
                if self.at_end() or self.peek() == ";":
                    continue  # empty resinfo: `;;` or a trailing ";"
            need_semicolon = True
            start = self.pos
            if self.skip_bare_domain():
                continue
            result = self.resinfo()
            if result is None:
                none_at = start
            else:
                results.append(result)
        if none_at is not None and results:
            self.pos = none_at
            raise self.error("'none' next to other results")
        return tuple(results)

    def skip_bare_domain(self) -> bool:
        """Skip a resinfo that is only a domain name (Microsoft's quirk); False if it is not."""
        found = _BARE_DOMAIN.match(self.text, self.pos)
        if not found:
            return False
        start = self.pos
        self.pos = found.end()
        self.skip_cfws()
        if self.peek() in (";", ""):
            return True
        self.pos = start
        return False

    def resinfo(self) -> AuthResult | None:
        """One resinfo after its ";" (None for the no-result `none`)."""
        method = self.keyword()
        if not method:
            raise self.error("expected a method name")
        self.skip_cfws()
        if method.lower() == "none" and self.peek() in (";", ""):
            return None
        method_version = None
        if self.peek() == "/":
            self.pos += 1
            self.skip_cfws()
            method_version = self.digits("method-version")
            self.skip_cfws()
        self.expect("=", f"expected '=' after method {shorten(method, 40)!r}")
        self.skip_cfws()
        result = self.keyword()
        if not result:
            raise self.error(f"method {shorten(method, 40)!r} has no result")
        reason: str | None = None
        properties: dict[str, str] = {}
        while True:
            self.skip_cfws()
            if self.at_end() or self.peek() == ";":
                break
            name = self.keyword()
            if not name:
                found = self.peek()
                raise self.error(f"expected a property or ';', found {shorten(found)}")
            self.skip_cfws()
            if self.peek() == ".":
                self.pos += 1
                self.skip_cfws()
                prop = self.keyword()
                if not prop:
                    raise self.error(f"expected a property name after {shorten(name, 40)!r}.")
                key = f"{name}.{prop}".lower()
                self.skip_cfws()
            else:
                key = name.lower()
            self.expect("=", f"expected '=' after {shorten(key, 40)!r}")
            pvalue = self.pvalue()
            if key == "reason":
                if reason is None:
                    reason = pvalue
            else:
                properties.setdefault(key, pvalue)
        return AuthResult(method.lower(), result.lower(), reason, properties, method_version)

    def pvalue(self) -> str:
        self.skip_cfws()
        ch = self.peek()
        if ch in ("", ";"):
            return ""
        if ch == '"':
            start = self.pos
            unquoted = self.quoted_string()
            if self.peek() != "@":
                return unquoted
            self.pos += 1  # a quoted local-part: keep the address as written
            self.run(_VALUE_STOP)
            return self.text[start : self.pos]
        found = self.run(_VALUE_STOP)
        if not found:
            raise self.error(f"expected a value, found {shorten(ch)}")
        return found

"""Finding codes as probes declare them: code, one-line meaning, default severity (and a fix).

Every probe class carries `codes`, a read-only mapping code -> Code of every code it can
emit, built with `declare()`:

    MX_MISSING = Code("MX_MISSING", "no MX and no usable A/AAAA fallback", Severity.FAIL)

    class DnsMx(BaseProbe):
        codes = declare(MX_MISSING, Code("MX_NULL", "RFC 7505 null MX", Severity.INFO))

A code several probes emit (the TLS and certificate codes of the shared endpoint flow, the
message codes) is one Code object, declared in the module that emits it and included in each
probe's declaration (`declare(TLS_CODES, ...)`): one meaning per code across the registry.

`severity` is the default: a probe may emit a code at another severity where its meaning says
so (e.g. PORT_CLOSED is info when another port serves the same purpose). `fix` says how to fix
what the code reports (a `Fix`: what to change, and the concrete lines for each system
mailprobe knows, keyed by SYSTEMS); every code that can be warn or fail carries one. Its
section in the docs is `docs_anchor(code)` of DOCS_PAGE.

Emitting a code the probe does not declare is a bug (UndeclaredCode): BaseProbe.finding and
the runner refuse it, so the run ends ERROR/BUG naming the code (docs/contract.md).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from probes.model import Severity

CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
MAX_MEANING = 200  # characters of a meaning: one line, not an essay


# The systems a fix can give concrete lines for, by key, as a report names them.
SYSTEMS: Mapping[str, str] = MappingProxyType(
    {
        "zone": "DNS zone (BIND syntax)",
        "exim": "Exim",
        "postfix": "Postfix",
        "sendmail": "sendmail",
        "opendkim": "OpenDKIM",
        "opendmarc": "OpenDMARC",
        "dovecot": "Dovecot",
        "perdition": "Perdition",
        "openssl": "OpenSSL / certificates",
        "web": "web server (nginx) and the files it serves (MTA-STS policy, BIMI logo)",
        "shell": "shell",
    }
)
DOCS_PAGE = "docs/codes.md"  # one section per code, anchor docs_anchor(code)


def docs_anchor(code: str) -> str:
    """The anchor of a code's section in DOCS_PAGE (GitHub-style: the heading lower-cased)."""
    return code.lower()


def docs_link(code: str) -> str:
    """Where a code is explained: DOCS_PAGE#anchor."""
    return f"{DOCS_PAGE}#{docs_anchor(code)}"


@dataclass(frozen=True)
class Fix:
    """How to fix what a code reports: what to change (`what`, plain sentences) and, for the
    systems it applies to, the concrete configuration lines (`lines`: SYSTEMS key -> text, may
    span lines; placeholders in <angle brackets>, e.g. <domain>)."""

    what: str
    lines: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", MappingProxyType(dict(self.lines)))

    def problem(self) -> str | None:
        if not isinstance(self.what, str) or not self.what.strip():
            return "fix.what must be non-empty text"
        for system, text in self.lines.items():
            if system not in SYSTEMS:
                return f"fix.lines: unknown system {system!r} (one of {', '.join(SYSTEMS)})"
            if not isinstance(text, str) or not text.strip():
                return f"fix.lines[{system!r}] must be non-empty text"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "lines": dict(self.lines)}


@dataclass(frozen=True)
class Code:
    """One finding code a probe can emit."""

    code: str  # stable, UPPER_SNAKE_CASE; dashboards and scenario `expect` key on it
    meaning: str  # one line: what a finding with this code says
    severity: Severity  # the usual severity (a probe may raise or lower it, as documented)
    fix: Fix | None = None  # how to fix it (every code that can be warn or fail has one)
    # An info code saying an optional feature is not deployed (no MTA-STS record, no TLSA):
    # the area's posture is "absent", not "pass".
    absent: bool = False
    # Codes that, found in the same run, are this one's cause: the reports show this finding
    # with that one ("explains: …") instead of as a problem of its own (DANE_TLSA_UNVERIFIABLE
    # follows DNSSEC_BOGUS: the bogus zone is what to fix).
    follows: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = code_problem(self)
        if problem:
            raise ValueError(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "meaning": self.meaning,
            "severity": self.severity.value,
            "fix": self.fix.to_json() if self.fix is not None else None,
            "docs": docs_link(self.code),
        }


def code_problem(code: Any) -> str | None:
    """Why `code` is not a well-formed Code declaration, or None when it is."""
    if not isinstance(code, Code):
        return f"{code!r} is a {type(code).__name__}, not a probes.codes.Code"
    name = code.code
    if not isinstance(name, str) or not CODE_RE.match(name):
        return f"code {name!r} is not UPPER_SNAKE_CASE (e.g. 'SPF_MISSING')"
    meaning = code.meaning
    if not isinstance(meaning, str) or not meaning.strip() or "\n" in meaning.strip():
        return f"{name}: the meaning must be one non-empty line of text"
    if len(meaning) > MAX_MEANING:
        return f"{name}: the meaning is {len(meaning)} characters (at most {MAX_MEANING})"
    if not isinstance(code.severity, Severity):
        return f"{name}: severity {code.severity!r} is not a probes.model.Severity"
    for other in code.follows:
        if not isinstance(other, str) or not CODE_RE.match(other):
            return f"{name}: follows {other!r}, not a code"
    if code.absent and code.severity is not Severity.INFO:
        return f"{name}: only an info code can say a feature is absent"
    if code.fix is not None:
        if not isinstance(code.fix, Fix):
            return f"{name}: fix must be None or a probes.codes.Fix"
        problem = code.fix.problem()
        if problem:
            return f"{name}: {problem}"
    return None


Codes = Mapping[str, Code]


def declare(*parts: Code | Iterable[Code] | Mapping[str, Code]) -> Mapping[str, Code]:
    """A probe's declaration: a read-only mapping code -> Code, sorted by code.

    Each part is a Code, an iterable of Codes, or another declaration. The same Code may come
    in twice (a shared group included by two routes); two different Codes of one name are a
    ValueError.
    """
    found: dict[str, Code] = {}
    for part in parts:
        items: Iterable[Any]
        if isinstance(part, Code):
            items = (part,)
        elif isinstance(part, Mapping):
            items = part.values()
        else:
            items = part
        for item in items:
            problem = code_problem(item)
            if problem:
                raise ValueError(problem)
            known = found.get(item.code)
            if known is not None and known != item:
                raise ValueError(f"{item.code} is declared twice, differently: {known} / {item}")
            found[item.code] = item
    return MappingProxyType(dict(sorted(found.items())))


def codes_problem(codes: Any) -> str | None:
    """Why `codes` is not a valid probe declaration (a non-empty mapping code -> Code)."""
    if codes is None:
        return "declares no finding codes (class attribute `codes = declare(Code(...), ...)`)"
    if not isinstance(codes, Mapping):
        return f"`codes` is a {type(codes).__name__}, not a mapping code -> Code (use declare())"
    if not codes:
        return "`codes` is empty: declare every code the probe can emit"
    for key, value in codes.items():
        problem = code_problem(value)
        if problem:
            return f"`codes`: {problem}"
        if key != value.code:
            return f"`codes`: key {key!r} holds the declaration of {value.code!r}"
    return None


def declared(probe: Any) -> Mapping[str, Code]:
    """The codes `probe` (a class or an instance) declares; empty when it declares none."""
    codes = getattr(probe, "codes", None)
    return codes if isinstance(codes, Mapping) else {}


class UndeclaredCode(Exception):
    """A probe emitted a code it does not declare: a bug in the probe (outcome ERROR/BUG)."""

    def __init__(self, probe_id: str, code: str, codes: Mapping[str, Code]) -> None:
        self.probe_id = probe_id
        self.code = code
        if not codes:
            hint = "it declares no codes"
        else:
            close = closest(code, codes)
            hint = f"closest declared: {', '.join(close)}" if close else f"{len(codes)} declared"
        super().__init__(f"probe {probe_id} emitted {code}, a code it does not declare ({hint})")


def closest(code: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known codes most like `code` (difflib), best first."""
    return difflib.get_close_matches(code, list(known), n=n, cutoff=0.6)

"""Warn and fail findings grouped by root cause: one entry per code and cause, listing the
subjects it affects, so one expired certificate is one entry, not eight.

- Findings of one code are one cause when they say the same thing once their subject is taken
  out of the message and the evidence (`mx:25 accepts TLSv1` and `mx:465 accepts TLSv1`), and
  their other stable evidence agrees (the same certificate, the same protocol version).
- Causes of one code that affect exactly the same subjects merge into one entry (TLSv1 and
  TLSv1.1 accepted on the same eight endpoints: one entry, two lines).
- What another cause explains is attached to it as a consequence rather than listed again: a
  swaks transaction or a probe that stopped because the certificate did not verify belongs to
  the certificate finding of that endpoint (or host, or, when it names none, the first one).

Pure: a RunReport in, Causes out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from probes.codes import Code
from probes.model import Finding, Outcome, ProbeResult, Severity
from probes.report.posture import is_endpoint, split_endpoint
from probes.report.run import RunReport

# Codes whose finding is the reason a TLS client refuses the certificate: a failure elsewhere
# that says "certificate verify failed" is their consequence.
CERTIFICATE_CAUSES = (
    "CERT_EXPIRED",
    "CERT_NOT_YET_VALID",
    "CERT_HOSTNAME_MISMATCH",
    "CERT_SELF_SIGNED",
    "CERT_UNTRUSTED",
)
_VERIFY_FAILED = re.compile(
    r"certificate verify failed|CERTIFICATE_VERIFY_FAILED|certificate has expired"
    r"|certificate is not yet valid|self[- ]signed certificate|unable to get local issuer"
    r"|Hostname mismatch|IP address mismatch",
    re.IGNORECASE,
)
# The verify message that points at one certificate code in particular.
_VERIFY_HINT = (
    (re.compile(r"has expired", re.I), "CERT_EXPIRED"),
    (re.compile(r"not yet valid", re.I), "CERT_NOT_YET_VALID"),
    (re.compile(r"self[- ]signed", re.I), "CERT_SELF_SIGNED"),
    (re.compile(r"mismatch", re.I), "CERT_HOSTNAME_MISMATCH"),
)


@dataclass(frozen=True)
class Consequence:
    """A failure another cause explains: a finding, or a probe that ended ERROR."""

    probe_id: str
    text: str  # "SWAKS_STAGE_FAILED mx.example.test:587" or "message.roundtrip: TLS error"
    finding: Finding | None = None
    result: ProbeResult | None = None


@dataclass
class Cause:
    code: str
    severity: Severity
    summaries: list[str]  # what it says, subject taken out (one line per merged cause)
    findings: list[Finding]
    subjects: list[str] = field(default_factory=list)
    consequences: list[Consequence] = field(default_factory=list)
    new: bool = False  # some finding is new or changed since the previous comparable run
    changed_only: bool = True  # ... and each such finding is changed, none new (if `new`)

    @property
    def brand_new(self) -> bool:
        """New since the previous comparable run, not merely changed."""
        return self.new and not self.changed_only

    @property
    def mark(self) -> str:
        """ "NEW", "CHANGED" or "" (how the reports flag it)."""
        if not self.new:
            return ""
        return "CHANGED" if self.changed_only else "NEW"

    @property
    def probes(self) -> list[str]:
        return list(dict.fromkeys(f.probe_id for f in self.findings))

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def summary(self) -> str:
        return "; ".join(self.summaries)

    @property
    def headline(self) -> list[str]:
        """What it says: with one subject the finding's own message (naming the subject), else
        the message without the subject, one line per merged cause."""
        if len(self.subjects) == 1:
            return list(dict.fromkeys(f.message for f in self.findings))
        return self.summaries

    @property
    def named_subjects(self) -> list[str]:
        """The subjects worth listing, endpoints sorted by host and port (a finding without a
        subject is about the domain: nothing to list)."""
        real = [s for s in self.subjects if s not in self.probes]
        return sorted(real, key=_subject_order)


def _strip_subject(text: str, subject: str | None) -> str:
    """`text` without the subject it starts with (`mx:25: certificate expired` -> `certificate
    expired`), so that findings of several subjects compare equal; otherwise `text`."""
    if not subject or not text.startswith(subject):
        return text
    rest = text[len(subject) :]
    if rest and rest[0] not in " :,;":
        return text  # the subject is only the start of a longer word (`old` of `old._domainkey`)
    return re.sub(r"^[\s:,;-]+", "", rest).strip() or text


def _key(finding: Finding) -> tuple[object, ...]:
    evidence = tuple(
        sorted((k, _strip_subject(v, finding.subject)) for k, v in finding.stable_evidence.items())
    )
    return (
        finding.code,
        finding.severity,
        _strip_subject(finding.message, finding.subject),
        evidence,
    )


def _subject_order(subject: str) -> tuple[str, int, str]:
    if is_endpoint(subject):
        host, port = split_endpoint(subject)
        return host, port, ""
    return "", 0, subject


def _subject(finding: Finding) -> str:
    return finding.subject or finding.probe_id


def group(report: RunReport, declarations: Mapping[str, Code] | None = None) -> list[Cause]:
    """The run's warn and fail findings, one Cause per code and cause; fail first, then warn,
    new ones first within a severity, otherwise in the report's order. `declarations` (code
    -> Code, default the installed probes'): which code follows which (Code.follows)."""
    by_key: dict[tuple[object, ...], Cause] = {}
    order: list[Cause] = []
    for result in report.results:
        for finding in result.findings:
            if finding.severity is Severity.INFO:
                continue
            key = _key(finding)
            cause = by_key.get(key)
            if cause is None:
                summary = _strip_subject(finding.message, finding.subject)
                cause = Cause(finding.code, finding.severity, [summary], [])
                by_key[key] = cause
                order.append(cause)
            cause.findings.append(finding)
            if _subject(finding) not in cause.subjects:
                cause.subjects.append(_subject(finding))
            if report.is_new(finding):
                cause.new = True
                cause.changed_only = cause.changed_only and report.is_changed(finding)
    merged = _merge_same_subjects(order)
    causes = _attach_consequences(merged, report)
    causes = _attach_followers(causes, declarations)
    return sorted(causes, key=lambda c: (-c.severity.rank, not c.brand_new, causes.index(c)))


def _merge_same_subjects(causes: list[Cause]) -> list[Cause]:
    out: list[Cause] = []
    seen: dict[tuple[str, Severity, tuple[str, ...]], Cause] = {}
    for cause in causes:
        key = (cause.code, cause.severity, tuple(cause.subjects))
        into = seen.get(key)
        if into is None:
            seen[key] = cause
            out.append(cause)
            continue
        into.summaries += [s for s in cause.summaries if s not in into.summaries]
        into.findings += cause.findings
        into.changed_only = (into.changed_only or not into.new) and (
            cause.changed_only or not cause.new
        )
        into.new = into.new or cause.new
    return out


def _mentions_verify_failure(texts: list[str]) -> str | None:
    for text in texts:
        if _VERIFY_FAILED.search(text):
            return text
    return None


def _host(subject: str) -> str | None:
    return split_endpoint(subject)[0] if is_endpoint(subject) else None


def _certificate_cause(causes: list[Cause], subject: str | None, text: str) -> Cause | None:
    candidates = [c for c in causes if c.code in CERTIFICATE_CAUSES]
    if not candidates:
        return None
    if subject:
        for cause in candidates:  # the same endpoint
            if subject in cause.subjects:
                return cause
        host = _host(subject)
        for cause in candidates:  # the same host, another port
            if host and any(_host(s) == host for s in cause.subjects):
                return cause
    for pattern, code in _VERIFY_HINT:  # what the client's error says
        if pattern.search(text):
            for cause in candidates:
                if cause.code == code:
                    return cause
    return candidates[0]


def _attach_consequences(causes: list[Cause], report: RunReport) -> list[Cause]:
    kept: list[Cause] = []
    roots = [c for c in causes if c.code in CERTIFICATE_CAUSES]
    for cause in causes:
        if cause in roots:
            kept.append(cause)
            continue
        moved = False
        remaining: list[Finding] = []
        for finding in cause.findings:
            text = _mentions_verify_failure([finding.message, *finding.evidence.values()])
            root = _certificate_cause(roots, finding.subject, text) if text else None
            if root is None:
                remaining.append(finding)
                continue
            root.consequences.append(
                Consequence(finding.probe_id, f"{finding.code} {_subject(finding)}", finding)
            )
            moved = True
        if not moved:
            kept.append(cause)
        elif remaining:
            cause.findings = remaining
            cause.subjects = list(dict.fromkeys(_subject(f) for f in remaining))
            kept.append(cause)
    for result in report.results:
        if result.outcome is not Outcome.ERROR:
            continue
        detail = result.error_detail or ""
        root = _certificate_cause(roots, None, detail) if _VERIFY_FAILED.search(detail) else None
        if root is not None:
            reason = result.error.value if result.error else "error"
            root.consequences.append(
                Consequence(
                    result.probe_id, f"{result.probe_id} ended ERROR ({reason})", None, result
                )
            )
    return kept


def _attach_followers(causes: list[Cause], declarations: Mapping[str, Code] | None) -> list[Cause]:
    """A cause whose code follows another code present in the run (Code.follows) goes with
    the first cause of that code, as what it explains."""
    if declarations is None:
        from probes.registry import installed_declarations

        declarations = installed_declarations()
    by_code: dict[str, Cause] = {}
    for cause in causes:
        by_code.setdefault(cause.code, cause)
    kept = []
    for cause in causes:
        declared = declarations.get(cause.code)
        root = (
            next((by_code[c] for c in declared.follows if c in by_code), None) if declared else None
        )
        if root is None or root is cause:
            kept.append(cause)
            continue
        for finding in cause.findings:
            root.consequences.append(
                Consequence(finding.probe_id, f"{finding.code} {_subject(finding)}", finding)
            )
    return kept


def explained_errors(causes: list[Cause]) -> set[str]:
    """The probes whose ERROR a cause explains (shown with it, not again on their own)."""
    return {c.probe_id for cause in causes for c in cause.consequences if c.result is not None}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class Verdict:
    """A run's verdict as every report for people words it: problems are causes."""

    status: str  # "fail", "warn", "error", "pass"; "nothing" when no probe ran
    fails: int  # fail causes
    warns: int  # warn causes
    errors: int  # probes that ended ERROR

    @property
    def problems(self) -> str:
        """ "3 problems to fix (2 fail, 1 warn)", or "" when there is none."""
        if not self.fails + self.warns:
            return ""
        n = self.fails + self.warns
        return f"{_plural(n, 'problem')} to fix ({self.fails} fail, {self.warns} warn)"

    @property
    def ended_in_error(self) -> str:
        """ "2 probes ended in error", or "" when none did."""
        return f"{_plural(self.errors, 'probe')} ended in error" if self.errors else ""

    @property
    def words(self) -> str:
        if self.status == "nothing":
            return "nothing checked (no probes installed or selected)"
        return ", ".join(p for p in (self.problems, self.ended_in_error) if p) or "nothing to fix"


def verdict(report: RunReport, causes: list[Cause]) -> Verdict:
    fails = sum(1 for c in causes if c.severity is Severity.FAIL)
    warns = sum(1 for c in causes if c.severity is Severity.WARN)
    errors = report.count(Outcome.ERROR)
    if not report.results:
        status = "nothing"
    else:
        status = "fail" if fails else "warn" if warns else "error" if errors else "pass"
    return Verdict(status, fails, warns, errors)

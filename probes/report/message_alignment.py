"""The test message's DMARC alignment, pure, from the message probes' evidence.

message.roundtrip's OWN_VERDICTS (subject: the header From domain; evidence `dkim`
"pass(d=example.test s=mail) ...", `spf` "pass (example.test)", `dmarc`) and message.receiver's
RECEIVER_REPORT (`header_from`, `mail_from`, `spf_domain`, `dkim`, `spf`, `dmarc`). Both carry
`dkim_aligned` (the d= of the passing, aligned signatures, "none") and `spf_aligned` ("yes" /
"no"). A report written before those keys existed: a DMARC_NOT_ALIGNED finding of the same
probe means nothing aligned; otherwise a name equal to the From domain aligns (in either mode)
and any other alignment is unknown (None): relaxed alignment needs the Organizational Domain,
which a renderer does not ask the DNS for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from probes.report.run import RunReport

_DKIM = re.compile(r"(\w+)\(d=([^\s)]+) s=([^\s)]+)[^)]*\)")
_SPF = re.compile(r"^\s*(\w+)(?:\s*\(([^)]*)\))?")


@dataclass(frozen=True)
class Identifier:
    """One identifier compared with the header From domain."""

    kind: str  # "dkim" or "spf"
    domain: str  # d= or the SPF (MAIL FROM / HELO) domain; "" unknown
    result: str  # its own result: pass, fail, none, ...
    aligned: bool | None  # None: not known from the report
    selector: str = ""


@dataclass(frozen=True)
class MessageAlignment:
    probe_id: str
    header_from: str
    identifiers: tuple[Identifier, ...]
    dmarc: str  # the DMARC result

    @property
    def passing_aligned(self) -> tuple[Identifier, ...]:
        return tuple(i for i in self.identifiers if i.aligned and i.result == "pass")


def dkim_signatures(text: str) -> list[tuple[str, str, str]]:
    """`pass(d=a s=b) fail(d=c s=d t=y)` -> [(result, d, s), ...]."""
    return [(m.group(1), m.group(2), m.group(3)) for m in _DKIM.finditer(text or "")]


def spf_verdict(text: str) -> tuple[str, str]:
    """`pass (example.test)` -> ("pass", "example.test"); `pass` -> ("pass", "")."""
    m = _SPF.match(text or "")
    if not m:
        return "", ""
    return m.group(1), (m.group(2) or "").strip()


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip("<> ").lower() if "@" in address else ""


def _same(a: str, b: str) -> bool:
    return bool(a) and a.rstrip(".").lower() == b.rstrip(".").lower()


def alignment_of(
    probe_id: str,
    header_from: str,
    evidence: dict[str, str],
    spf_domain: str,
    not_aligned: bool,
) -> MessageAlignment:
    """The alignment of one message from a verdict finding's evidence (see the module doc)."""
    aligned_d = evidence.get("dkim_aligned")
    aligned_set = (
        None if aligned_d is None else {d.lower() for d in aligned_d.split() if d != "none"}
    )
    spf_result, spf_named = spf_verdict(evidence.get("spf", ""))
    spf_domain = spf_named or spf_domain

    def judge(kind: str, domain: str, result: str) -> bool | None:
        if kind == "dkim" and aligned_set is not None:
            return domain.lower() in aligned_set
        if kind == "spf" and "spf_aligned" in evidence:
            return evidence["spf_aligned"] == "yes"
        if not_aligned:
            return False
        if _same(domain, header_from):
            return True
        return None

    identifiers = [
        Identifier("dkim", d, result, judge("dkim", d, result), s)
        for result, d, s in dkim_signatures(evidence.get("dkim", ""))
    ]
    if spf_result:
        identifiers.append(Identifier("spf", spf_domain, spf_result, judge("spf", spf_domain, "")))
    return MessageAlignment(probe_id, header_from, tuple(identifiers), evidence.get("dmarc", ""))


def message_alignments(report: RunReport) -> list[MessageAlignment]:
    """The alignment of each test message of the run (round trip, receiver), in report order."""
    out = []
    for result in report.results:
        codes = {f.code for f in result.findings}
        for f in result.findings:
            if f.code == "OWN_VERDICTS":
                header_from = f.subject or ""
                spf_domain = ""
            elif f.code == "RECEIVER_REPORT":
                header_from = f.evidence.get("header_from", "")
                spf_domain = f.evidence.get("spf_domain") or _domain_of(
                    f.evidence.get("mail_from", "")
                )
            else:
                continue
            out.append(
                alignment_of(
                    result.probe_id,
                    header_from,
                    dict(f.evidence),
                    spf_domain,
                    "DMARC_NOT_ALIGNED" in codes,
                )
            )
    return out

"""JUnit XML renderer: one <testsuite> per run, one <testcase> per probe and subject.

CI systems show a run as a test suite:
- a probe that ran and found something at severity fail: a <failure> (type = the first fail
  code; the text lists every fail finding with its evidence and reproduce command);
- warn and info findings do not fail the test case (CI stays green on warnings): they are
  listed in <system-out>, and every finding is a <property name=CODE value=severity>;
- a probe that ended in ERROR: one <error type=REASON>; SKIPPED: one <skipped message=...>.

A completed probe gets one test case per subject its findings name (a selector, host:port, an
IP); findings without a subject, and a probe without findings, go to a test case named after
the probe. The probe's duration is given to its first test case, so the times add up.

Characters XML 1.0 cannot carry (control characters other than tab, newline and carriage
return; U+FFFE, U+FFFF, lone surrogates) are replaced by a visible "\\xNN" / "\\uNNNN"
spelling, then text and attribute values are escaped (attributes keep newlines and tabs as
character references), so hostile input still yields valid XML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from probes.model import Finding, Outcome, ProbeResult, Severity
from probes.report.run import RunReport, iso_utc


def _spelled(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# Characters XML 1.0 cannot carry: spelled out before escaping.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """`value` as text XML 1.0 can carry: forbidden characters spelled out as escapes."""
    text = str(value)
    if _NOT_XML.search(text) is None:
        return text
    return _NOT_XML.sub(lambda m: _spelled(ord(m.group())), text)


def _escape_text(value: str) -> str:
    text = xml_text(value)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _escape_attr(value: str) -> str:
    text = _escape_text(value).replace('"', "&quot;")
    return text.replace("\n", "&#10;").replace("\t", "&#9;")


@dataclass
class _Element:
    """Just enough of an XML element, written out directly (faster than ElementTree)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    children: list[_Element] = field(default_factory=list)

    def get(self, key: str, default: str = "") -> str:
        return self.attrs.get(key, default)

    def set(self, key: str, value: str) -> None:
        self.attrs[key] = value

    def write(self, out: list[str], indent: str = "") -> None:
        attrs = "".join(f' {k}="{_escape_attr(v)}"' for k, v in self.attrs.items())
        if self.children:
            out.append(f"{indent}<{self.tag}{attrs}>\n")
            for child in self.children:
                child.write(out, indent + "  ")
            out.append(f"{indent}</{self.tag}>\n")
        elif self.text:
            out.append(f"{indent}<{self.tag}{attrs}>{_escape_text(self.text)}</{self.tag}>\n")
        else:
            out.append(f"{indent}<{self.tag}{attrs} />\n")


def _finding_text(finding: Finding, new: bool = False) -> str:
    mark = ", new" if new else ""
    lines = [f"[{finding.severity.value}{mark}] {finding.code}: {finding.message}"]
    if finding.subject:
        lines.append(f"  subject: {finding.subject}")
    for key, value in finding.evidence.items():
        lines.append(f"  {key}: {value}")
    if finding.reproduce:
        lines.append(f"  reproduce: {finding.reproduce}")
    return "\n".join(lines)


def _cases(result: ProbeResult) -> list[tuple[str, list[Finding]]]:
    """(test case name, its findings) for a completed probe, in first-seen order."""
    groups: dict[str, list[Finding]] = {}
    for finding in result.findings:
        groups.setdefault(finding.subject or result.probe_id, []).append(finding)
    return list(groups.items()) or [(result.probe_id, [])]


def _sub(parent: _Element, tag: str, text: str | None = None, **attrs: str) -> _Element:
    element = _Element(tag, attrs, text)
    parent.children.append(element)
    return element


def _fill_case(
    case: _Element,
    findings: list[Finding],
    can_fail: bool,
    is_new: Callable[[Finding], bool] = lambda f: False,
) -> bool:
    """Add properties, a failure and system-out for `findings`; True if the case failed.

    With `can_fail` false (the case already has an <error> or <skipped>) fail findings go to
    <system-out> with the rest: a test case has one result.
    """
    if findings:
        properties = _sub(case, "properties")
        for finding in findings:
            _sub(properties, "property", name=finding.code, value=finding.severity.value)
        new = [f.code for f in findings if is_new(f)]
        if new:  # new since the previous comparable run in the history
            _sub(properties, "property", name="new", value=" ".join(new))
    failed = [f for f in findings if f.severity is Severity.FAIL] if can_fail else []
    if failed:
        message = (
            failed[0].message
            if len(failed) == 1
            else f"{len(failed)} fail findings: " + ", ".join(f.code for f in failed)
        )
        _sub(
            case,
            "failure",
            "\n\n".join(_finding_text(f, is_new(f)) for f in failed),
            type=failed[0].code,
            message=message,
        )
    others = [f for f in findings if not (can_fail and f.severity is Severity.FAIL)]
    if others:
        _sub(case, "system-out", "\n\n".join(_finding_text(f, is_new(f)) for f in others))
    return bool(failed)


def build(report: RunReport) -> _Element:
    """The <testsuites> element for `report` (one <testsuite>)."""
    suites = _Element("testsuites")
    suite = _sub(
        suites,
        "testsuite",
        name=f"mailprobe {report.target.domain}",
        timestamp=iso_utc(report.started),
        time=f"{report.duration_s:.3f}",
    )
    properties = _sub(suite, "properties")
    _sub(properties, "property", name="run_id", value=report.run_id)
    _sub(properties, "property", name="domain", value=report.target.domain)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in report.results:
        if result.outcome is Outcome.COMPLETED:
            cases = _cases(result)
        else:
            cases = [(result.probe_id, list(result.findings))]
        for index, (name, findings) in enumerate(cases):
            counts["tests"] += 1
            duration = result.duration_s if index == 0 else 0.0
            case = _sub(
                suite, "testcase", classname=result.probe_id, name=name, time=f"{duration:.3f}"
            )
            if result.outcome is Outcome.ERROR:
                counts["errors"] += 1
                reason = result.error.value if result.error else "ERROR"
                detail = result.error_detail or "the probe could not run"
                _sub(case, "error", detail, type=reason, message=detail)
            elif result.outcome is Outcome.SKIPPED:
                counts["skipped"] += 1
                _sub(case, "skipped", message=result.error_detail or "skipped")
            completed = result.outcome is Outcome.COMPLETED
            if _fill_case(case, findings, completed, report.is_new):
                counts["failures"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    for key in ("tests", "failures", "errors", "skipped", "time"):
        suites.set(key, suite.get(key, "0"))
    suites.set("name", suite.get("name", "mailprobe"))
    return suites


def render(report: RunReport, stream: TextIO) -> None:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    build(report).write(out)
    stream.write("".join(out))

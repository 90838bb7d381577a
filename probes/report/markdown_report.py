"""Markdown renderer, for a CI comment or a ticket (GitHub/GitLab flavoured Markdown).

Layout, to paste into a ticket: a heading with the verdict and a summary line (target, findings
by severity, probe outcomes); the posture (probes.report.posture: each DNS policy, endpoint and
the message with its status); probes that could not run; a table of what to fix, one row per
root cause (probes.report.causes: the code, the subjects it affects); one collapsible <details>
per cause with what it explains, the fix (per system, fenced), the docs link, the evidence and
the reproduce command in a fenced code block; info findings in one collapsed table.

Every value from a report is treated as hostile: in table cells and text, Markdown
punctuation (`\\`, backtick, `*`, `_`, `[`, `]`, `|`, `#`, ...) is backslash-escaped, `<`, `>`
and `&` become HTML entities, newlines become <br>; inside <summary> (HTML, no Markdown) text is
html.escape'd; the fenced code block uses a fence longer than any backtick run in the command.
Control characters are spelled out as "\\xNN".
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import TextIO

from probes.codes import SYSTEMS, Code, docs_link
from probes.model import Outcome, Severity
from probes.report.causes import Cause, group
from probes.report.posture import areas, changes
from probes.report.run import RunReport, iso_utc

SEVERITY_ORDER = (Severity.FAIL, Severity.WARN, Severity.INFO)
_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d+(?=[.)](?:\s|$)))")
_ICON = {Severity.FAIL: "❌", Severity.WARN: "⚠️", Severity.INFO: "ℹ️"}


def _spelled(code: int) -> str:
    return f"\\x{code:02x}"


# One str.translate each: control characters (not tab or newline) spelled out as "\\xNN";
# for inline Markdown also HTML's & < >, Markdown punctuation backslash-escaped, newline <br>.
_VISIBLE = {c: _spelled(c) for c in (*range(0x09), *range(0x0B, 0x20), 0x7F)}
_INLINE = {c: "\\" + s for c, s in _VISIBLE.items()} | {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord("\t"): " ",
    ord("\n"): "<br>",
    **{ord(ch): "\\" + ch for ch in "\\`*_[]|~"},
}
_MAY_START_BLOCK = frozenset(" #+-=0123456789")
_PLAIN = re.compile(r"[^\x00-\x1f\x7f&<>\\`*_\[\]|~]*")  # nothing for _INLINE to change


def _newlines(value: object) -> str:
    text = str(value)
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _visible(value: object) -> str:
    """Control characters (not tab or newline) spelled out, CRLF/CR made newlines."""
    return _newlines(value).translate(_VISIBLE)


def _escape_line_start(match: re.Match[str]) -> str:
    lead, marker = match.groups()
    # "1. x" would start a list: escape the "." after the digits; "# x", "- x", "+ x", "="
    # would start a heading, a list or a setext underline: escape the marker itself.
    return lead + marker + "\\" if marker[0].isdigit() else lead + "\\" + marker


def md(value: object) -> str:
    """`value` as inline Markdown text that renders literally (also inside a table cell)."""
    text = str(value)
    if not _PLAIN.fullmatch(text):
        text = _newlines(text).translate(_INLINE)
    if text[:1] in _MAY_START_BLOCK:
        text = _LINE_START.sub(_escape_line_start, text)
    return text


def prose(value: object) -> str:
    """Text we wrote (a fix), where `backticks` mark commands and settings: those become code,
    the rest is escaped as `md` does."""
    parts = str(value).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: nothing is code
        return md(value)
    return "".join(code(p, in_table=False) if i % 2 else md(p) for i, p in enumerate(parts))


def _html(value: object) -> str:
    return html.escape(_visible(value)).replace("\n", " ")


def code(value: object, in_table: bool = True) -> str:
    """`value` as inline code: HTML <code> (a Markdown code span cannot hold entities)."""
    text = html.escape(_visible(value)).replace("\n", " ")
    if in_table:  # GFM splits table cells on "|" before anything else, even in HTML
        text = text.replace("|", "\\|")
    return f"<code>{text}</code>"


def fenced(code: str, lang: str = "sh") -> str:
    """A fenced code block holding `code` verbatim, whatever backticks it contains."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{_visible(code)}\n{fence}"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _summary(report: RunReport) -> str:
    findings = ", ".join(f"{_ICON[s]} {report.count_findings(s)} {s.value}" for s in SEVERITY_ORDER)
    outcomes = ", ".join(
        f"{report.count(o)} {o.value.lower()}"
        for o in (Outcome.COMPLETED, Outcome.ERROR, Outcome.SKIPPED)
    )
    return (
        f"**Target** {md(report.target.domain)} · **findings** {findings} · "
        f"**{len(report.results)} probes** {outcomes} · took {report.duration_s:.1f} s"
    )


_NEW = " **new**"


def _subjects(cause: Cause) -> str:
    return ", ".join(cause.named_subjects)


def _details(cause: Cause, declaration: Code | None) -> list[str]:
    finding = cause.first
    subjects = _subjects(cause)
    where = f" · {subjects}" if subjects else ""
    out = [
        "<details>",
        f"<summary>{_ICON[cause.severity]} {code(cause.code, in_table=False)} "
        f"{_html(', '.join(cause.probes) + where)}"
        f"{f' <b>{cause.mark.lower()}</b>' if cause.mark else ''}</summary>",
        "",
    ]
    out += [md(line) + "<br>" for line in cause.headline[:-1]] + [md(cause.headline[-1]), ""]
    if cause.consequences:
        out += ["Explains: " + md(", ".join(c.text for c in cause.consequences)), ""]
    if declaration is not None and declaration.fix is not None:
        out += [f"**Fix:** {prose(declaration.fix.what)}", ""]
        for system, text in declaration.fix.lines.items():
            out += [f"{md(SYSTEMS[system])}:", "", fenced(text, ""), ""]
    if declaration is not None:
        out += [
            f"Docs: [{md(cause.code)}]({docs_link(cause.code)}) in mailprobe's repository; "
            f"every system's lines: {code('mailprobe probes --explain ' + cause.code, False)}",
            "",
        ]
    if finding.evidence:
        out += [_row("evidence", "value"), _row("---", "---")]
        out += [_row(md(k), md(v)) for k, v in finding.evidence.items()]
        out.append("")
    if finding.reproduce:
        out += ["Reproduce:", "", fenced(finding.reproduce), ""]
    out += ["</details>", ""]
    return out


def _verdict(report: RunReport, causes: list[Cause]) -> str:
    if any(c.severity is Severity.FAIL for c in causes):
        return "❌ FAIL"
    if causes:
        return "⚠️ WARN"
    if report.count(Outcome.ERROR):
        return "ERROR"
    return "✅ PASS"


def render(
    report: RunReport, stream: TextIO, *, declarations: Mapping[str, Code] | None = None
) -> None:
    if declarations is None:
        from probes.registry import installed_declarations

        declarations = installed_declarations()
    causes = group(report, declarations)
    out = [
        f"## mailprobe: {md(report.target.domain)}: {_verdict(report, causes)}",
        "",
        _summary(report),
        "",
        f"Run {code(report.run_id, in_table=False)} started {iso_utc(report.started)}.",
        "",
    ]
    since = changes(report)
    if since:
        out += [md(since[0].upper() + since[1:]) + ".", ""]
    if not report.results:
        out += ["No probes installed or selected: nothing was checked.", ""]
    else:
        out += ["### Posture", "", _row("area", "", "status", "to fix"), _row(*["---"] * 4)]
        for area in areas(report, declarations):
            out.append(
                _row(
                    area.kind.value,
                    md(area.name),
                    area.status.value + (f" ({area.new} new)" if area.new else ""),
                    ", ".join(code(c) for c in area.codes),
                )
            )
        out.append("")
    broken = [r for r in report.results if r.outcome is not Outcome.COMPLETED]
    if broken:
        out += ["### Probes that did not run to completion", ""]
        out += [_row("probe", "outcome", "reason", "detail"), _row("---", "---", "---", "---")]
        for r in broken:
            reason = r.error.value if r.error else ""
            out.append(_row(md(r.probe_id), r.outcome.value, reason, md(r.error_detail or "")))
        out.append("")
    if causes:
        out += ["### What to fix", ""]
        out += [
            _row("code", "severity", "probe", "subject", "message"),
            _row("---", "---", "---", "---", "---"),
        ]
        for c in causes:
            out.append(
                _row(
                    code(c.code) + (f" **{c.mark.lower()}**" if c.mark else ""),
                    f"{_ICON[c.severity]} {c.severity.value}",
                    md(", ".join(c.probes)),
                    md(_subjects(c)),
                    md("; ".join(c.headline)),
                )
            )
        out += ["", "### Details", ""]
        for c in causes:
            out += _details(c, declarations.get(c.code))
    elif report.results:
        out += ["No fail or warn findings.", ""]
    findings = [f for r in report.results for f in r.findings]
    info = [f for f in findings if f.severity is Severity.INFO]
    if info:
        out += [
            "<details>",
            f"<summary>{len(info)} info finding{'s' if len(info) != 1 else ''}</summary>",
            "",
            _row("code", "probe", "subject", "message"),
            _row("---", "---", "---", "---"),
        ]
        out += [
            _row(
                code(f.code) + (_NEW if report.is_new(f) else ""),
                md(f.probe_id),
                md(f.subject or ""),
                md(f.message),
            )
            for f in info
        ]
        out += ["", "</details>", ""]
    stream.write("\n".join(out).rstrip("\n") + "\n")

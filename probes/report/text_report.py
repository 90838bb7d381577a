"""The report for people at a terminal: the verdict, the posture per area, then what to fix.

1. A headline (the verdict and the counts) and one line about the run.
2. The posture (probes.report.posture): DNS, each endpoint, the message, each with its worst
   status and the warn/fail codes it has; what is new since the last comparable run.
3. Problems (probes.report.causes): warn/fail findings grouped by root cause, fail first, each
   with the subjects it affects, what it explains, the evidence, the fix and how to reproduce.
   The fix's lines are those for the software that answered on those endpoints (its greeting,
   probes.report.systems) and the zone; the others are named (`--explain`), or all with
   `verbose`.
4. Probes that could not run and that no problem explains.
5. With `verbose`: every probe's outcome and the info findings (the configuration seen).

Every line fits `width` (the terminal's on a TTY): prose wraps with a hanging indent, reproduce
commands break only where the shell allows. A clean run fits on one screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from probes.codes import SYSTEMS, Code, docs_link
from probes.model import Finding, Outcome, ProbeResult, Severity
from probes.report.causes import Cause, explained_errors, group, verdict
from probes.report.posture import Area, Kind, Status, areas, changes
from probes.report.run import RunReport, iso_utc
from probes.report.seen import seen as area_words
from probes.report.systems import relevant, split_lines, systems_seen
from probes.report.wrap import visible, wrap, wrap_command

SEVERITY_ORDER = (Severity.FAIL, Severity.WARN, Severity.INFO)
DEFAULT_WIDTH = 100  # a file, a pipe: no terminal to ask
MAX_VALUE = 100  # characters of one evidence value in the short report (all of it with -v)
MAX_SUBJECTS = 12  # subjects listed per problem before "and N more"


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def tally(report: RunReport) -> str:
    """E.g. "3 probes: 2 completed, 1 error, 0 skipped; findings: 1 fail, 2 warn, 0 info"."""
    outcomes = ", ".join(
        f"{report.count(o)} {o.value.lower()}"
        for o in (Outcome.COMPLETED, Outcome.ERROR, Outcome.SKIPPED)
    )
    findings = ", ".join(f"{report.count_findings(s)} {s.value}" for s in SEVERITY_ORDER)
    return f"{_plural(len(report.results), 'probe')}: {outcomes}; findings: {findings}"


def _verdict(report: RunReport, causes: list[Cause]) -> str:
    said = verdict(report, causes)
    if said.status == "nothing":
        return "NOTHING CHECKED (no probes installed or selected)"
    return f"{said.status.upper()}: {said.words}"


def _run_line(report: RunReport) -> str:
    bits = [
        f"run {report.run_id}",
        f"started {iso_utc(report.started.replace(microsecond=0))}",
        f"took {report.duration_s:.2f}s",
        _plural(len(report.results), "probe"),
    ]
    if report.dns is not None:
        bits.append(
            f"{_plural(report.dns.get('queries', 0), 'DNS query')} "
            f"({report.dns.get('cache_hits', 0)} from the run's cache)"
        )
    return ", ".join(bits)


def _changes_lines(report: RunReport, width: int) -> list[str]:
    text = changes(report)
    return wrap(text, width, "", "  ") if text else []


# ----- the posture --------------------------------------------------------------------------
_SHOWN_STATUS = {
    Status.FAIL: "FAIL",
    Status.ERROR: "ERROR",
    Status.WARN: "WARN",
    Status.PASS: "pass",
    Status.ABSENT: "absent",
    Status.SKIPPED: "skipped",
}


def _area_note(area: Area, said: str) -> str:
    bits: list[str] = []
    if said and area.status in (Status.PASS, Status.WARN):
        bits.append(said)
    if area.codes:
        bits.append(", ".join(area.codes))
    if area.errors:
        bits.append("could not check: " + ", ".join(area.errors))
    if area.new - area.changed:
        bits.append(f"{area.new - area.changed} new")
    if area.changed:
        bits.append(f"{area.changed} changed")
    return "; ".join(bits)


def _posture_lines(
    found: list[Area], width: int, said: Mapping[tuple[Kind, str], str]
) -> list[str]:
    if not found:
        return []
    name_w = min(max(len(a.name) for a in found), max(width - 20, 8), 40)
    lines: list[str] = []
    last: Kind | None = None
    for area in found:
        if area.kind is not last:
            lines.append(area.kind.value)
            last = area.kind
        head = f"  {area.name:<{name_w}}  {_SHOWN_STATUS[area.status]:<7}"
        note = _area_note(area, said.get((area.kind, area.name), ""))
        if len(head) + 12 > width:  # no room beside it: the note goes below
            lines += wrap(head.rstrip(), width, "", "    ")
            if note:
                lines += wrap(note, width, "    ")
        elif note:
            lines += wrap(note, width, head + "  ", " " * (len(head) + 2))
        else:
            lines.append(head.rstrip())
    return lines


# ----- the problems -------------------------------------------------------------------------
def _subjects_text(subjects: list[str]) -> str:
    """`mx.example.test:25, :465, :587, mailbox.example.test:143` (the host said once)."""
    out: list[str] = []
    last_host = None
    for subject in subjects[:MAX_SUBJECTS]:
        host, sep, port = subject.rpartition(":")
        if sep and port.isdigit() and host == last_host:
            out.append(f":{port}")
        else:
            out.append(subject)
            last_host = host if sep and port.isdigit() else None
    more = len(subjects) - MAX_SUBJECTS
    return ", ".join(out) + (f" and {more} more" if more > 0 else "")


def _value(value: str, verbose: bool) -> str:
    value = visible(value)
    if not verbose and len(value) > MAX_VALUE:
        return value[: MAX_VALUE - 1] + "…"
    return value


def _evidence_lines(finding: Finding, width: int, indent: str, verbose: bool) -> list[str]:
    if not finding.evidence:
        return []
    text = ", ".join(f"{k}={_value(v, verbose)}" for k, v in finding.evidence.items())
    return wrap(text, width, f"{indent}evidence: ", indent + "  ")


def _fix_lines(
    code: Code | None, width: int, indent: str, systems: frozenset[str] | None
) -> list[str]:
    if code is None or code.fix is None:
        return []
    lines = wrap(code.fix.what, width, f"{indent}fix: ", indent + "  ")
    shown, others = split_lines(code.fix, systems)
    for system, text in shown.items():
        lines.append(f"{indent}  {SYSTEMS[system]}:")
        for line in text.splitlines():
            lines += wrap_command(line, width, indent + "    ")
    if others:
        names = ", ".join(SYSTEMS[s] for s in others)
        more = f"{names}: mailprobe probes --explain {code.code}"
        lines += wrap(more, width, f"{indent}  for ", indent + "    ")
    return lines


def _problem_lines(
    cause: Cause,
    width: int,
    verbose: bool,
    declarations: Mapping[str, Code],
    seen: Mapping[str, set[str]],
) -> list[str]:
    indent = "      "
    mark = f"{cause.mark} " if cause.mark else ""
    head = f"{cause.severity.value.upper():<4}  {mark}{cause.code}  "
    said = cause.headline
    lines = wrap(said[0], width, head, indent)
    for extra in said[1:]:
        lines += wrap(extra, width, indent + "and: ", indent + "  ")
    subjects = cause.named_subjects
    if subjects and not (len(subjects) == 1 and subjects[0] in said[0]):
        lines += wrap(_subjects_text(subjects), width, f"{indent}on: ", indent + "    ")
    if cause.consequences:
        also = ", ".join(c.text for c in cause.consequences)
        lines += wrap(also, width, f"{indent}explains: ", indent + "  ")
    lines += _evidence_lines(cause.first, width, indent, verbose)
    systems = None if verbose else relevant(seen, cause.subjects)
    lines += _fix_lines(declarations.get(cause.code), width, indent, systems)
    if cause.code in declarations:
        lines.append(f"{indent}docs: {docs_link(cause.code)}")
    if cause.first.reproduce:
        lines += wrap_command(cause.first.reproduce, width, f"{indent}reproduce: ", indent + "  ")
    return lines


def _error_lines(result: ProbeResult, width: int) -> list[str]:
    reason = result.error.value if result.error else "error"
    text = f"{result.probe_id}: {reason}" + (
        f": {result.error_detail}" if result.error_detail else ""
    )
    return wrap(text, width, "ERROR ", "      ")


# ----- verbose: everything ------------------------------------------------------------------
def _result_line(result: ProbeResult, width: int) -> str:
    line = f"  {result.probe_id:<{width}}  {result.outcome.value:<9}  {result.duration_s:7.3f}s"
    if result.outcome is Outcome.ERROR and result.error is not None:
        line += f"  {result.error.value}"
    return line


def _info_lines(report: RunReport, width: int) -> list[str]:
    lines: list[str] = []
    for result in report.results:
        for finding in result.findings:
            if finding.severity is not Severity.INFO:
                continue
            mark = report.newness(finding).upper() + " " if report.is_new(finding) else ""
            where = finding.probe_id + (f" {finding.subject}" if finding.subject else "")
            lines += wrap(
                f"{mark}{finding.code} [{where}] {finding.message}", width, "  ", "      "
            )
            lines += _evidence_lines(finding, width, "      ", True)
            if finding.reproduce:
                lines += wrap_command(finding.reproduce, width, "      reproduce: ", "        ")
    return lines


def render(
    report: RunReport,
    stream: TextIO,
    *,
    verbose: bool = False,
    width: int | None = None,
    declarations: Mapping[str, Code] | None = None,
) -> None:
    """Write the report. `width`: the terminal's columns (default DEFAULT_WIDTH); `verbose`:
    also every probe's outcome and the info findings; `declarations` (code -> Code, default
    the installed probes'): the fixes and which codes mean "absent"."""
    width = width or DEFAULT_WIDTH
    if declarations is None:
        from probes.registry import installed_declarations

        declarations = installed_declarations()
    causes = group(report, declarations)
    found = areas(report, declarations)
    seen = systems_seen(report)
    out = wrap(
        f"mailprobe check of {report.target.domain}: {_verdict(report, causes)}", width, "", "  "
    )
    out += wrap(_run_line(report), width, "", "  ")
    out += _changes_lines(report, width)
    out.append("")
    if not report.results:
        out += ["no probes installed/selected: nothing was checked", ""]
    else:
        out += _posture_lines(found, width, area_words(report))
        out.append("")
    if causes:
        out.append("Problems, worst first:")
        for cause in causes:
            out += _problem_lines(cause, width, verbose, declarations, seen)
            out.append("")
    explained = explained_errors(causes)
    errors = [
        r for r in report.results if r.outcome is Outcome.ERROR and r.probe_id not in explained
    ]
    if errors:
        out.append("Could not check:")
        for result in errors:
            out += _error_lines(result, width)
        out.append("")
    infos = report.count_findings(Severity.INFO)
    if verbose and report.results:
        name_w = max(len(r.probe_id) for r in report.results)
        out.append("Probes:")
        for r in report.results:
            out += wrap(_result_line(r, name_w).strip(), width, "  ", "    ")
        out.append("")
        if infos:
            out.append("What was seen (info):")
            out += _info_lines(report, width)
            out.append("")
    out += wrap(tally(report), width, "", "  ")
    if infos and not verbose:
        hidden = f"{_plural(infos, 'info finding')} not shown: -v shows them (and report.json)"
        out += wrap(hidden, width, "", "  ")
    stream.write("\n".join(out) + "\n")

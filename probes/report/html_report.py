"""HTML renderer: one self-contained file (inline CSS, SVG and JS, nothing loaded from
elsewhere), what to fix first and the scorecard after it.

Sections, in order: the verdict (problems, as the text report counts them), what changed, and
cards counting findings by severity and probes by outcome; the posture grid (each area of the
run with its status, what it showed, probes.report.seen, and its codes, each a link to its
problem, probes.report.posture); the problems to fix, fail then warn, each cause with an id
(`cause-<code>-<n>`), its subjects, what it explains, the code's fix collapsed and its findings
with their evidence and a reproduce command with a "copy" button (probes.report.causes); the
probes that did not run to completion and that no problem explains; the endpoint matrix (port ×
STARTTLS / implicit TLS × TLS versions × certificate × auth, probes.report.endpoint_matrix);
the test message's alignment drawn (header From, DKIM d=, SPF MAIL FROM domain, which pairs
align, probes.report.message_alignment); the SPF include tree (probes.report.spf_tree); the
trend over the target's previous runs (findings by severity, certificate days left,
probes.report.trend; drawn when the report carries RunReport.trend, i.e. written by `check`
with its history); the info findings, collapsed; every probe with its outcome and duration. A
run without problems has nothing to fix first: its empty fail and warn sections follow the
trend.

The page works without JavaScript; the script only adds the copy buttons' behaviour
(navigator.clipboard, falling back to a hidden textarea and execCommand) and the severity
filter, and marks <body data-js="ready"> once it has run. Layout is responsive: at 400 px the
matrix rows become cards and the drawings scale, nothing scrolls sideways.

Every value from the report goes through html.escape (quotes included) after control
characters are spelled out as "\\xNN"; a Content-Security-Policy meta tag forbids loading
anything, so a hostile finding cannot pull in a script even if escaping were bypassed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from functools import cache
from typing import TextIO

from probes.codes import SYSTEMS, Code, Fix, docs_link
from probes.model import Finding, Outcome, ProbeResult, Severity
from probes.report.causes import Cause, explained_errors, group, verdict
from probes.report.endpoint_matrix import endpoint_rows
from probes.report.html_charts import alignment_svg, alignment_text, trend_charts
from probes.report.html_scorecard import breakable, endpoint_matrix, spf_tree_html
from probes.report.html_text import chip, esc
from probes.report.message_alignment import message_alignments
from probes.report.posture import Area, Kind, Status, area_key, areas, changes
from probes.report.run import RunReport, iso_utc
from probes.report.seen import seen
from probes.report.spf_tree import spf_tree

SEVERITY_ORDER = (Severity.FAIL, Severity.WARN, Severity.INFO)
_TITLES = {Severity.FAIL: "Fail", Severity.WARN: "Warn", Severity.INFO: "Info"}

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --fail:#c62828; --warn:#a15c00; --info:#1565c0; --ok:#2e7d32; --line:#d0d7de;
        --bg:#f6f8fa; --fg:#1f2328; --muted:#59636e; --new:#5b3cc4; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1200px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
.meta { color: var(--muted); margin: 0 0 12px; overflow-wrap: anywhere; }
.verdict { font-size: 16px; margin: 8px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 96px;
        background: var(--bg); }
.card b { display: block; font-size: 22px; }
.card.fail b { color: var(--fail); } .card.warn b { color: var(--warn); }
.card.info b { color: var(--info); } .card.error b { color: var(--fail); }
.chip { display: inline-block; font-size: 12px; font-weight: 600; border-radius: 10px;
        padding: 0 8px; border: 1px solid; white-space: nowrap; margin: 1px 0; }
.chip.fail { color: var(--fail); background: #fdecea; }
.chip.warn { color: var(--warn); background: #fff4e0; }
.chip.pass { color: var(--ok); background: #e8f5e9; }
.chip.info { color: var(--info); background: #e3f2fd; }
.chip.muted { color: var(--muted); background: var(--bg); }
.muted { color: var(--muted); }
.posture { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
           gap: 8px; margin: 8px 0; padding: 0; list-style: none; }
.posture li { border: 1px solid var(--line); border-left: 6px solid var(--line);
              border-radius: 6px; padding: 6px 10px; background: #fff; min-width: 0; }
.posture li.fail, .posture li.error { border-left-color: var(--fail); }
.posture li.warn { border-left-color: var(--warn); }
.posture li.pass { border-left-color: var(--ok); }
.posture .area { font-weight: 600; overflow-wrap: anywhere; }
.posture .detail { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.posture .seen { display: block; color: var(--fg); font-size: 12px; overflow-wrap: anywhere; }
a.code { color: inherit; text-decoration: underline dotted; text-underline-offset: 2px; }
a.code:hover, a.code:focus { text-decoration-style: solid; }
.posture .detail .code { font-size: 12px; }
table.matrix .problems a { color: inherit; }
.finding.cause:target { outline: 3px solid var(--info); outline-offset: 2px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left;
         vertical-align: top; }
th { background: var(--bg); }
.scroll { max-width: 100%; overflow-x: auto; }
table.matrix { width: 100%; }
table.aligned td { overflow-wrap: anywhere; }
table.matrix .endpoint { overflow-wrap: anywhere; }
table.matrix td:first-child { min-width: 12em; }
table.matrix .problems { font: 11px ui-monospace, SFMono-Regular, Menlo, monospace;
                         color: var(--muted); }
.ver { display: inline-block; font-size: 12px; border-radius: 4px; padding: 0 5px;
       margin: 1px 0; border: 1px solid var(--line); white-space: nowrap; }
.ver.pass { color: var(--ok); } .ver.warn { color: var(--warn); font-weight: 600; }
.ver.off { color: var(--muted); text-decoration: line-through; }
.where { overflow-wrap: anywhere; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 18px; }
ul.tree { padding-left: 0; }
ul.tree ul li { border-left: 1px solid var(--line); padding-left: 12px; position: relative; }
ul.tree ul li::before { content: ""; position: absolute; left: 0; top: 11px; width: 9px;
                        border-top: 1px solid var(--line); }
ul.tree li { margin: 2px 0; overflow-wrap: anywhere; }
ul.tree .via { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace;
               color: var(--muted); }
ul.tree .lookups { color: var(--muted); font-size: 12px; }
.message-align { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.message-align > div { flex: 1 1 320px; min-width: 0; }
svg.align { width: 100%; max-width: 520px; height: auto; display: block; }
svg.align rect { fill: #fff; stroke: var(--line); stroke-width: 1.5; }
svg.align .from rect { fill: var(--bg); stroke: var(--fg); }
svg.align .ident.aligned rect { stroke: var(--ok); }
svg.align .ident.unaligned rect { stroke: var(--fail); }
svg.align text { font: 13px system-ui, sans-serif; fill: var(--fg); }
svg.align text.head { font-weight: 600; }
svg.align .link { stroke-width: 2.5; fill: none; }
svg.align .link.aligned { stroke: var(--ok); }
svg.align .link.unaligned { stroke: var(--fail); stroke-dasharray: 7 5; }
svg.align .link.unknown { stroke: var(--muted); stroke-dasharray: 2 4; }
svg.align circle.mark { fill: #fff; stroke-width: 2; }
svg.align circle.mark.aligned { stroke: var(--ok); }
svg.align circle.mark.unaligned { stroke: var(--fail); }
svg.align circle.mark.unknown { stroke: var(--muted); }
svg.align text.mark { text-anchor: middle; font-weight: 700; }
figure.trend { margin: 8px 0 16px; max-width: 640px; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .grid.zero { stroke: var(--fg); }
svg.chart text.axis { font: 15px system-ui, sans-serif; fill: var(--muted); }
svg.chart .series { fill: none; stroke-width: 2.5; }
svg.chart .band.expired, svg.key .band.expired { fill: #fdecea; }
svg.chart .band.soon { fill: #fff4e0; }
.s-fail { stroke: var(--fail); } .dot.s-fail { fill: var(--fail); }
.s-warn { stroke: var(--warn); } .dot.s-warn { fill: var(--warn); }
.s-error { stroke: #6a1b9a; } .dot.s-error { fill: #6a1b9a; }
.c-0 { stroke: #1565c0; } .dot.c-0 { fill: #1565c0; }
.c-1 { stroke: #00838f; } .dot.c-1 { fill: #00838f; }
.c-2 { stroke: #6d4c41; } .dot.c-2 { fill: #6d4c41; }
.c-3 { stroke: #ad1457; } .dot.c-3 { fill: #ad1457; }
.c-4 { stroke: #558b2f; } .dot.c-4 { fill: #558b2f; }
.c-5 { stroke: #37474f; } .dot.c-5 { fill: #37474f; }
ul.legend { list-style: none; padding: 0; margin: 4px 0; display: flex; flex-wrap: wrap;
            gap: 4px 16px; }
ul.legend li { overflow-wrap: anywhere; }
svg.key { width: 30px; height: 12px; vertical-align: middle; margin-right: 4px; }
svg.key .series { fill: none; stroke-width: 2.5; }
figcaption { color: var(--muted); font-size: 13px; }
.filters { margin: 8px 0; color: var(--muted); }
.filters label { margin-right: 12px; cursor: pointer; }
.finding { border: 1px solid var(--line); border-left: 5px solid var(--info);
           border-radius: 6px; padding: 8px 12px; margin: 8px 0; background: #fff; }
.finding.fail { border-left-color: var(--fail); }
.finding.warn { border-left-color: var(--warn); }
.finding header { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline; }
.code { font: 600 13px ui-monospace, SFMono-Regular, Menlo, monospace;
        overflow-wrap: anywhere; }
.badge { font-size: 11px; font-weight: 600; text-transform: uppercase; color: #fff;
         border-radius: 10px; padding: 1px 8px; background: var(--info); }
.badge.fail { background: var(--fail); } .badge.warn { background: var(--warn); }
.badge.new { background: var(--new); }
.message { margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
table.evidence { max-width: 100%; table-layout: fixed; }
table.evidence td { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace;
                    white-space: pre-wrap; overflow-wrap: anywhere; }
table.evidence td:first-child { color: var(--muted); white-space: nowrap; width: 10em; }
.reproduce { display: flex; gap: 6px; align-items: flex-start; margin: 6px 0 2px; }
.reproduce pre, .fix pre { flex: 1; margin: 0; padding: 6px 8px; background: #0d1117;
                 color: #e6edf3; border-radius: 6px; white-space: pre-wrap;
                 overflow-wrap: anywhere; min-width: 0;
                 font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.fix { margin: 6px 0 2px; }
.fix p { margin: 4px 0; }
.fix h4 { font-size: 12px; margin: 6px 0 2px; color: var(--muted); }
button.copy { font: inherit; font-size: 12px; padding: 4px 10px; cursor: pointer;
              border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
button.copy.done { color: var(--ok); border-color: var(--ok); }
.outcome-COMPLETED { color: var(--ok); } .outcome-ERROR { color: var(--fail); font-weight: 600; }
.outcome-SKIPPED { color: var(--muted); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
details > summary { cursor: pointer; }
.empty { color: var(--muted); }
body.hide-fail .finding.fail, body.hide-warn .finding.warn,
body.hide-info .finding.info { display: none; }
@media (max-width: 700px) {
  body { padding: 8px 10px 32px; }
  .cards { gap: 6px; }
  .card { flex: 1 1 28%; min-width: 0; padding: 4px 8px; font-size: 12px; }
  .card b { font-size: 18px; }
  table.matrix, table.matrix tbody, table.matrix tr, table.matrix td { display: block;
    width: 100%; }
  table.matrix thead { display: none; }
  table.matrix tr { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0;
                    padding: 4px 0; }
  table.matrix td { border: none; padding: 2px 8px; overflow-wrap: anywhere; }
  table.matrix td:first-child { min-width: 0; }
  table.matrix td::before { content: attr(data-label) ": "; color: var(--muted);
                            font-size: 12px; }
  .reproduce { flex-direction: column; }
  table.evidence td:first-child { width: 7em; }
}
"""

SCRIPT = """
(function () {
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  function flash(button, text) {
    button.textContent = text;
    button.classList.add("done");
    setTimeout(function () { button.textContent = "copy"; button.classList.remove("done"); },
               1500);
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var pre = document.getElementById(button.getAttribute("data-target"));
      var text = pre ? pre.textContent : "";
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { flash(button, "copied"); },
          function () { flash(button, fallbackCopy(text) ? "copied" : "copy failed"); });
      } else {
        flash(button, fallbackCopy(text) ? "copied" : "copy failed");
      }
    });
  });
  document.querySelectorAll("input[data-severity]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.body.classList.toggle("hide-" + box.getAttribute("data-severity"), !box.checked);
    });
  });
  document.querySelectorAll(".filters").forEach(function (f) { f.hidden = false; });
  document.body.setAttribute("data-js", "ready");
})();
"""


def _declarations() -> Mapping[str, Code]:
    from probes.registry import installed_declarations

    return installed_declarations()


@cache
def _fixes() -> dict[str, Fix]:
    return {c: d.fix for c, d in _declarations().items() if d.fix is not None}


def fix_html(code: str, fix: Fix | None) -> str:
    """A code's fix, collapsed: what to change, the lines per system, where it is explained."""
    if fix is None:
        return ""
    systems = "".join(
        f"<h4>{esc(SYSTEMS.get(system, system))}</h4><pre>{esc(text)}</pre>"
        for system, text in fix.lines.items()
    )
    return (
        f'<details class="fix"><summary>how to fix {esc(code)}</summary>'
        f"<p>{esc(fix.what)}</p>{systems}"
        f'<p class="muted">explained in {esc(docs_link(code))}</p></details>'
    )


def _finding(finding: Finding, index: int, new: bool = False) -> str:
    sev = finding.severity.value
    where = esc(finding.probe_id) + (f" · {esc(finding.subject)}" if finding.subject else "")
    badge = '<span class="badge new">new</span>' if new else ""
    parts = [
        f'<article class="finding {sev}{" new" if new else ""}" id="finding-{index}">',
        f'<header><span class="badge {sev}">{sev}</span>{badge}'
        f'<span class="code">{esc(finding.code)}</span><span class="where">{where}</span>'
        "</header>",
        f'<p class="message">{esc(finding.message)}</p>',
    ]
    if finding.evidence:
        rows = "".join(
            f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in finding.evidence.items()
        )
        parts.append(f'<table class="evidence"><tbody>{rows}</tbody></table>')
    if finding.reproduce:
        parts.append(
            f'<div class="reproduce"><pre id="reproduce-{index}">{esc(finding.reproduce)}</pre>'
            f'<button type="button" class="copy" data-target="reproduce-{index}" hidden>'
            "copy</button></div>"
        )
    parts.append("</article>")
    return "\n".join(parts)


def _cause(cause: Cause, index: int, report: RunReport, anchor: str) -> str:
    """One problem (`anchor`: its id, which the posture grid and the endpoint matrix link to):
    what it says, the subjects it affects, what it explains, its fix, and its findings (the
    first open, the others collapsed), each with evidence, reproduce and its own "new" mark."""
    sev = cause.severity.value
    new = '<span class="badge new">new</span>' if cause.new else ""
    said = "".join(f'<p class="message">{esc(line)}</p>' for line in cause.headline)
    subjects = cause.named_subjects
    parts = [
        f'<article class="finding cause {sev}{" new" if cause.new else ""}" id="{esc(anchor)}">',
        f'<header><span class="badge {sev}">{sev}</span>{new}'
        f'<span class="code">{esc(cause.code)}</span>'
        f'<span class="where">{esc(", ".join(cause.probes))}</span></header>',
        said,
    ]
    if subjects and not (len(subjects) == 1 and subjects[0] in cause.headline[0]):
        parts.append(
            '<p class="subjects">on: '
            + ", ".join(f'<b class="where">{breakable(s)}</b>' for s in subjects)
            + "</p>"
        )
    if cause.consequences:
        parts.append(
            '<p class="explains">explains: '
            + esc(", ".join(c.text for c in cause.consequences))
            + "</p>"
        )
    parts.append(fix_html(cause.code, _fixes().get(cause.code)))
    first, *rest = cause.findings
    parts.append(_finding(first, index, report.is_new(first)))
    if rest:
        more = "".join(_finding(f, index + 1 + k, report.is_new(f)) for k, f in enumerate(rest))
        parts.append(
            f'<details class="more"><summary>{_plural(len(rest), "more finding")} of this cause'
            f"</summary>{more}</details>"
        )
    parts.append("</article>")
    return "\n".join(parts)


def _probe_row(result: ProbeResult) -> str:
    counts = Counter(f.severity for f in result.findings)
    reason = result.error.value if result.error else ""
    detail = result.error_detail or ""
    cells = [
        f"<td>{esc(result.probe_id)}</td>",
        f'<td class="outcome-{result.outcome.value}">{result.outcome.value}</td>',
        f'<td class="num">{result.duration_s:.3f} s</td>',
        *(f'<td class="num">{counts.get(s, 0)}</td>' for s in SEVERITY_ORDER),
        f"<td>{esc(' '.join(p for p in (reason, detail) if p))}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _summary(report: RunReport) -> str:
    """Findings by severity and probes by outcome; each card says what it counts (the verdict
    and the problem sections count problems, probes.report.causes)."""
    cards = [
        f'<div class="card {s.value}"><b>{report.count_findings(s)}</b>{s.value} findings</div>'
        for s in SEVERITY_ORDER
    ]
    cards += [
        f'<div class="card{" error" if o is Outcome.ERROR and report.count(o) else ""}">'
        f"<b>{report.count(o)}</b>probes {_OUTCOME_WORDS[o]}</div>"
        for o in (Outcome.COMPLETED, Outcome.ERROR, Outcome.SKIPPED)
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


_OUTCOME_WORDS = {
    Outcome.COMPLETED: "completed",
    Outcome.ERROR: "in error",
    Outcome.SKIPPED: "skipped",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _verdict(report: RunReport, found: list[Cause]) -> str:
    """The text report's verdict (probes.report.causes.verdict), the problems a link."""
    said = verdict(report, found)
    if said.status == "nothing":
        return f'<p class="verdict">{chip("skipped", "nothing checked")}</p>'
    parts = []
    if said.problems:
        # the words link to the first problem section (it follows the posture grid)
        count, _, rest = said.problems.partition(" (")
        parts.append(f'<a href="#{"fail" if said.fails else "warn"}">{esc(count)}</a> ({esc(rest)}')
    if said.ended_in_error:
        parts.append(esc(said.ended_in_error))
    words = ", ".join(parts) or "nothing to fix"
    return f'<p class="verdict">{chip(said.status)} {words}</p>'


def _changes(report: RunReport) -> str:
    """What changed since the previous comparable run, as the text report says it."""
    text = changes(report)
    return f'<p class="changes">{esc(text)}</p>' if text else ""


def _section(id_: str, title: str, body: str) -> str:
    return f'<section id="{id_}"><h2>{esc(title)}</h2>\n{body}\n</section>'


_SLUG = re.compile(r"[^a-z0-9]+")


def cause_ids(found: list[Cause]) -> list[str]:
    """One id per cause, from its code and its place among the causes of that code
    ("cause-cert-expired-1"): the same run gives the same ids, whatever else it found."""
    counts: Counter[str] = Counter()
    out = []
    for cause in found:
        slug = _SLUG.sub("-", cause.code.lower()).strip("-") or "code"
        counts[slug] += 1
        out.append(f"cause-{slug}-{counts[slug]}")
    return out


CodeLinks = Mapping[tuple[Kind, str, str], str]


def code_links(found: list[Cause], ids: list[str]) -> dict[tuple[Kind, str, str], str]:
    """(area kind, area name, code) -> the id of the problem that code is in, for that area:
    the cause of its finding, or the cause that explains it (a consequence); and
    (Kind.OTHER, "", code) -> the first cause of the code, for anything else."""
    out: dict[tuple[Kind, str, str], str] = {}
    for cause, anchor in zip(found, ids, strict=True):
        out.setdefault((Kind.OTHER, "", cause.code), anchor)
        for finding in cause.findings:
            out.setdefault((*area_key(finding), finding.code), anchor)
    for cause, anchor in zip(found, ids, strict=True):
        for consequence in cause.consequences:
            if consequence.finding is not None:
                f = consequence.finding
                out.setdefault((*area_key(f), f.code), anchor)
                out.setdefault((Kind.OTHER, "", f.code), anchor)
    return out


def code_link(code: str, anchor: str | None) -> str:
    """`code` as a link to its problem's entry (plain text when no problem has it)."""
    if anchor is None:
        return f'<span class="code">{esc(code)}</span>'
    return f'<a class="code" href="#{esc(anchor)}">{esc(code)}</a>'


def _area_link(area: Area, code: str, links: CodeLinks) -> str:
    anchor = links.get((area.kind, area.name, code)) or links.get((Kind.OTHER, "", code))
    return code_link(code, anchor)


def posture_html(
    found: list[Area],
    links: CodeLinks | None = None,
    said: Mapping[tuple[Kind, str], str] | None = None,
) -> str:
    """The posture grid (probes.report.posture): each area with its status as a word and a
    colour, grouped DNS / Endpoints / Message, what it showed (probes.report.seen, for a
    passing or warning area, as the text report says it) and what makes it so: each warn/fail
    code a link to its problem (`links`, from code_links)."""
    if not found:
        return '<p class="empty">Nothing was checked.</p>'
    links = links or {}
    said = said or {}
    out = []
    for kind in Kind:
        items = []
        for area in (a for a in found if a.kind is kind):
            status = area.status.value
            words = said.get((area.kind, area.name), "")
            shown = ""
            if words and area.status in (Status.PASS, Status.WARN):
                shown = f'<span class="seen">{esc(words)}</span>'
            bits = []
            if area.codes:
                bits.append(" ".join(_area_link(area, c, links) for c in area.codes))
            if area.errors:
                bits.append(esc("could not check: " + ", ".join(area.errors)))
            fresh, changed = area.new - area.changed, area.changed
            new = f' <span class="badge new">{fresh} new</span>' if fresh else ""
            if changed:
                new += f' <span class="badge new">{changed} changed</span>'
            name = "test message" if kind is Kind.MESSAGE else area.name
            items.append(
                f'<li class="{status}"><div class="area">{breakable(name)}</div>'
                f'{chip(status)}{new} {shown}<span class="detail">{"; ".join(bits)}</span></li>'
            )
        if items:
            out.append(f'<h3>{esc(kind.value)}</h3><ul class="posture">{"".join(items)}</ul>')
    return "\n".join(out)


def alignment_html(report: RunReport) -> str:
    found = message_alignments(report)
    if not found:
        return (
            '<p class="empty">No test message was verified in this run (message.roundtrip '
            "and message.receiver did not complete, or were not selected).</p>"
        )
    parts = []
    for i, alignment in enumerate(found):
        rows = "".join(
            f"<tr><td>{esc(ident.kind.upper())} {esc(ident.domain or '?')}"
            f"{' s=' + esc(ident.selector) if ident.selector else ''}</td>"
            f"<td>{esc(ident.result)}</td><td>{_aligned_chip(ident.aligned)}</td></tr>"
            for ident in alignment.identifiers
        )
        parts.append(
            f"<h3>{esc(alignment.probe_id)}</h3>"
            '<div class="message-align"><div>' + alignment_svg(alignment, i) + "</div><div>"
            f"<p>{esc(alignment_text(alignment))}</p>"
            '<table class="aligned"><thead><tr><th>identifier</th><th>result</th>'
            "<th>aligned with From</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div></div>"
        )
    return "\n".join(parts)


def _aligned_chip(aligned: bool | None) -> str:
    if aligned is None:
        return chip("unknown")
    return chip("pass", "✓ aligned") if aligned else chip("fail", "✗ not aligned")


def trend_html(report: RunReport) -> str:
    """The trend charts; a sentence instead when there is nothing before this run (no trend
    handed over, or the first run of the target): the same page either way, so that
    `mailprobe render` of a first run's report.json gives back the file `check` wrote."""
    if report.trend is None or len(report.trend) < 2:
        return (
            '<p class="empty">No earlier runs to draw a trend from. <code>mailprobe check</code> '
            "draws it from its history once the target (with the same probes) has been checked "
            "before; <code>mailprobe render --history PATH</code> draws it from a history "
            "file.</p>"
        )
    return trend_charts(report.trend)


def problems_html(report: RunReport, found: list[Cause], ids: list[str]) -> list[str]:
    """The fail and the warn section: each cause with its id (ids[i] for found[i]); each
    heading counts as the verdict does, "Fail: 7 problems (15 findings)"."""
    out = []
    index = 0
    for severity in (Severity.FAIL, Severity.WARN):
        of_severity = [(c, a) for c, a in zip(found, ids, strict=True) if c.severity is severity]
        title = (
            f"{_TITLES[severity]}: {_plural(len(of_severity), 'problem')} "
            f"({_plural(report.count_findings(severity), 'finding')})"
        )
        articles = []
        for cause, anchor in of_severity:
            articles.append(_cause(cause, index, report, anchor))
            index += len(cause.findings)
        body = "\n".join(articles) or '<p class="empty">none</p>'
        sub = ""
        if of_severity:
            sub = (
                '<p class="muted">a problem is one cause: findings that say the same thing about '
                "several subjects are one entry, and a finding another problem explains is listed "
                "with it (explains: …)</p>"
            )
        out.append(f'<section id="{severity.value}"><h2>{title}</h2>{sub}\n{body}\n</section>')
    return out


def incomplete_html(report: RunReport, found: list[Cause]) -> str:
    """The probes that did not complete, but for those a problem explains (shown with it)."""
    explained = explained_errors(found)
    broken = [
        r
        for r in report.results
        if r.outcome is not Outcome.COMPLETED and r.probe_id not in explained
    ]
    if not broken:
        return ""
    items = "".join(
        f'<li><b>{esc(r.probe_id)}</b> <span class="outcome-{r.outcome.value}">'
        f"{r.outcome.value}</span> {esc(r.error.value if r.error else '')} "
        f"{esc(r.error_detail or '')}</li>"
        for r in broken
    )
    return (
        '<section id="incomplete"><h2>Probes that did not run to completion '
        f"({len(broken)})</h2><ul>{items}</ul></section>"
    )


def render(report: RunReport, stream: TextIO) -> None:
    """Top to bottom: the verdict and the counts, the posture grid, what to fix (fail, then
    warn problems), the probes that did not complete, then the endpoint matrix, alignment,
    SPF tree, trend, info findings and probes. A run without problems has nothing to fix
    first: its (empty) fail and warn sections come after the trend."""
    domain = esc(report.target.domain)
    found_causes = group(report)
    found_areas = areas(report, _declarations())
    ids = cause_ids(found_causes)
    links = code_links(found_causes, ids)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>mailprobe: {domain}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        '<body data-js="off">',
        f"<h1>mailprobe: {domain}</h1>",
        f'<p class="meta">run {esc(report.run_id)} · started {esc(iso_utc(report.started))}'
        f" · took {report.duration_s:.3f} s · {len(report.results)} probes</p>",
        _verdict(report, found_causes),
        _changes(report),
        _summary(report),
    ]
    filters = (
        '<div class="filters" hidden>show: '
        + "".join(
            f'<label><input type="checkbox" data-severity="{s.value}" checked> {s.value}</label>'
            for s in SEVERITY_ORDER
        )
        + "</div>"
    )
    problems = [filters, *problems_html(report, found_causes, ids)]
    if report.results:
        out.append(_section("posture", "Posture", posture_html(found_areas, links, seen(report))))
    else:
        out.append('<p class="empty">No probes installed or selected: nothing was checked.</p>')
    if found_causes:
        out += problems
    out.append(incomplete_html(report, found_causes))
    if report.results:
        endpoint_links = {(n, c): a for (k, n, c), a in links.items() if k is Kind.ENDPOINT}
        out += [
            _section(
                "endpoints",
                "Endpoints",
                endpoint_matrix(
                    endpoint_rows(report),
                    {a.name: a.status.value for a in found_areas if a.kind is Kind.ENDPOINT},
                    endpoint_links,
                ),
            ),
            _section("alignment", "Test message alignment", alignment_html(report)),
            _section("spf-tree", "SPF include tree", spf_tree_html(spf_tree(report))),
            _section("trend", "Trend", trend_html(report)),
        ]
    if not found_causes:
        out += problems
    findings = [f for r in report.results for f in r.findings]
    index = sum(len(c.findings) for c in found_causes)
    infos = [f for f in findings if f.severity is Severity.INFO]
    articles = []
    for finding in infos:
        articles.append(_finding(finding, index, report.is_new(finding)))
        index += 1
    body = "\n".join(articles) or '<p class="empty">none</p>'
    out.append(
        f'<section id="info"><h2>Info findings ({len(infos)})</h2>'
        f"<details><summary>show {len(infos)} info findings</summary>\n{body}\n"
        "</details></section>"
    )
    if report.results:
        out += [
            '<section id="probes"><h2>Probes</h2><div class="scroll">',
            "<table><thead><tr><th>probe</th><th>outcome</th><th>duration</th>"
            + "".join(f"<th>{s.value}</th>" for s in SEVERITY_ORDER)
            + "<th>error</th></tr></thead><tbody>",
            *(_probe_row(r) for r in report.results),
            "</tbody></table></div></section>",
        ]
    if report.dns is not None:
        out.append(
            f'<p class="meta">DNS: {esc(report.dns.get("queries", 0))} queries sent, '
            f"{esc(report.dns.get('cache_hits', 0))} answered from the run's cache</p>"
        )
    out += [f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    stream.write("\n".join(out) + "\n")

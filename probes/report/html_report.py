"""HTML renderer: one self-contained file (inline CSS and JS, nothing loaded from elsewhere).

Sections: a summary (target, findings by severity, probe outcomes), probes that did not run to
completion, findings grouped by severity (fail, warn, then info collapsed), each with its
evidence table and reproduce command with a "copy" button, and every probe with its outcome and
duration. The page works without JavaScript; the script only adds the copy buttons' behaviour
(navigator.clipboard, falling back to a hidden textarea and execCommand) and the severity
filter, and marks <body data-js="ready"> once it has run.

Every value from the report goes through html.escape (quotes included) after control
characters are spelled out as "\\xNN"; a Content-Security-Policy meta tag forbids loading
anything, so a hostile finding cannot pull in a script even if escaping were bypassed.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from typing import TextIO

from probes.model import Finding, Outcome, ProbeResult, Severity
from probes.report.run import RunReport, iso_utc

SEVERITY_ORDER = (Severity.FAIL, Severity.WARN, Severity.INFO)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TITLES = {Severity.FAIL: "Fail", Severity.WARN: "Warn", Severity.INFO: "Info"}

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --fail:#c62828; --warn:#b26a00; --info:#1565c0; --ok:#2e7d32; --line:#d0d7de;
        --bg:#f6f8fa; --fg:#1f2328; --muted:#59636e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1200px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; word-break: break-all; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; }
.meta { color: var(--muted); margin: 0 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 110px;
        background: var(--bg); }
.card b { display: block; font-size: 22px; }
.card.fail b { color: var(--fail); } .card.warn b { color: var(--warn); }
.card.info b { color: var(--info); } .card.error b { color: var(--fail); }
.filters { margin: 8px 0; color: var(--muted); }
.filters label { margin-right: 12px; cursor: pointer; }
.finding { border: 1px solid var(--line); border-left: 5px solid var(--info);
           border-radius: 6px; padding: 8px 12px; margin: 8px 0; background: #fff; }
.finding.fail { border-left-color: var(--fail); }
.finding.warn { border-left-color: var(--warn); }
.finding header { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline; }
.code { font: 600 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
.badge { font-size: 11px; font-weight: 600; text-transform: uppercase; color: #fff;
         border-radius: 10px; padding: 1px 8px; background: var(--info); }
.badge.fail { background: var(--fail); } .badge.warn { background: var(--warn); }
.badge.new { background: #5b3cc4; }
.where { color: var(--muted); word-break: break-all; }
.message { margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left;
         vertical-align: top; }
th { background: var(--bg); }
table.evidence td { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace;
                    white-space: pre-wrap; overflow-wrap: anywhere; }
table.evidence td:first-child { color: var(--muted); white-space: nowrap; }
.reproduce { display: flex; gap: 6px; align-items: flex-start; margin: 6px 0 2px; }
.reproduce pre { flex: 1; margin: 0; padding: 6px 8px; background: #0d1117; color: #e6edf3;
                 border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere;
                 font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
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


def esc(value: object) -> str:
    """`value` as HTML text or attribute value: control characters spelled out, escaped."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    return html.escape(text, quote=True)


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
    cards = [
        f'<div class="card {s.value}"><b>{report.count_findings(s)}</b>{s.value}</div>'
        for s in SEVERITY_ORDER
    ]
    cards += [
        f'<div class="card{" error" if o is Outcome.ERROR and report.count(o) else ""}">'
        f"<b>{report.count(o)}</b>{o.value.lower()}</div>"
        for o in (Outcome.COMPLETED, Outcome.ERROR, Outcome.SKIPPED)
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def render(report: RunReport, stream: TextIO) -> None:
    domain = esc(report.target.domain)
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
        _summary(report),
    ]
    if not report.results:
        out.append('<p class="empty">No probes installed or selected: nothing was checked.</p>')
    broken = [r for r in report.results if r.outcome is not Outcome.COMPLETED]
    if broken:
        items = "".join(
            f'<li><b>{esc(r.probe_id)}</b> <span class="outcome-{r.outcome.value}">'
            f"{r.outcome.value}</span> {esc(r.error.value if r.error else '')} "
            f"{esc(r.error_detail or '')}</li>"
            for r in broken
        )
        out.append(
            '<section id="incomplete"><h2>Probes that did not run to completion '
            f"({len(broken)})</h2><ul>{items}</ul></section>"
        )
    findings = [f for r in report.results for f in r.findings]
    out.append(
        '<div class="filters" hidden>show: '
        + "".join(
            f'<label><input type="checkbox" data-severity="{s.value}" checked> {s.value}</label>'
            for s in SEVERITY_ORDER
        )
        + "</div>"
    )
    index = 0
    for severity in SEVERITY_ORDER:
        group = [f for f in findings if f.severity is severity]
        title = f"{_TITLES[severity]} findings ({len(group)})"
        articles = []
        for finding in group:
            articles.append(_finding(finding, index, report.is_new(finding)))
            index += 1
        body = "\n".join(articles) or '<p class="empty">none</p>'
        if severity is Severity.INFO:
            out.append(
                f'<section id="{severity.value}"><h2>{title}</h2>'
                f"<details><summary>show {len(group)} info findings</summary>\n{body}\n"
                "</details></section>"
            )
        else:
            out.append(f'<section id="{severity.value}"><h2>{title}</h2>\n{body}\n</section>')
    if report.results:
        out += [
            '<section id="probes"><h2>Probes</h2>',
            "<table><thead><tr><th>probe</th><th>outcome</th><th>duration</th>"
            + "".join(f"<th>{s.value}</th>" for s in SEVERITY_ORDER)
            + "<th>error</th></tr></thead><tbody>",
            *(_probe_row(r) for r in report.results),
            "</tbody></table></section>",
        ]
    if report.dns is not None:
        out.append(
            f'<p class="meta">DNS: {esc(report.dns.get("queries", 0))} queries sent, '
            f"{esc(report.dns.get('cache_hits', 0))} answered from the run's cache</p>"
        )
    out += [f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    stream.write("\n".join(out) + "\n")

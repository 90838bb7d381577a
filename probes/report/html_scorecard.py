"""The HTML scorecard's sections that are tables and lists: the endpoint matrix and the SPF
include tree (the drawings are in html_charts). Each takes the pure model of its module
(endpoint_matrix, spf_tree) and returns HTML; every value is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from probes.model import Severity
from probes.report.endpoint_matrix import EndpointRow
from probes.report.html_text import chip, esc
from probes.report.spf_tree import SpfNode, SpfTree

MODERN = ("TLSv1.2", "TLSv1.3")


def breakable(name: str) -> str:
    """`name` escaped, with a line-break opportunity after each dot and before the port."""
    return esc(name).replace(".", ".<wbr>").replace(":", "<wbr>:")


def severity_status(worst: Severity | None) -> str:
    return "pass" if worst is None or worst is Severity.INFO else worst.value


def _versions(row: EndpointRow) -> str:
    if not row.accepted and not row.refused:
        return '<span class="muted">not tested</span>'
    out = []
    for v in row.accepted:
        legacy = v in row.legacy or v not in MODERN
        cls = "warn" if legacy else "pass"
        mark = "✗ accepted (legacy)" if legacy else "✓"
        out.append(f'<span class="ver {cls}">{esc(v)} {mark}</span>')
    for v in row.refused:
        out.append(f'<span class="ver off">{esc(v)} refused</span>')
    return " ".join(out)


def _cert(row: EndpointRow) -> str:
    if row.cert == "none seen":
        return '<span class="muted">none seen</span>'
    days = ""
    if row.cert_days is not None:
        n = abs(row.cert_days)
        plural = "s" if n != 1 else ""
        days = f" expired {n} day{plural} ago" if row.cert_days < 0 else f" {n} day{plural} left"
    if row.cert == "ok":
        return chip("pass", "valid") + esc(days)
    return " ".join(chip("fail", code) for code in row.cert.split()) + esc(days)


def _auth(row: EndpointRow) -> str:
    parts = []
    if row.auth_mechanisms:
        parts.append(esc(row.auth_mechanisms))
    if row.auth:
        status = {"login accepted": "pass", "login refused": "fail"}.get(row.auth, "muted")
        parts.append(chip(status, row.auth))
    if row.auth_before_tls:
        parts.append(chip("fail", "offered before TLS"))
    return " ".join(parts) or '<span class="muted">none</span>'


def _code(code: str, anchor: str | None) -> str:
    if anchor is None:
        return esc(code)
    return f'<a href="#{esc(anchor)}">{esc(code)}</a>'


def _tls(row: EndpointRow) -> str:
    status = "pass" if row.tls in ("STARTTLS", "implicit TLS", "TLS") else "fail"
    if row.tls == "?" or (row.tls == "closed" and severity_status(row.worst) == "pass"):
        status = "unknown"  # closed, but another port serves the purpose (PORT_CLOSED info)
    text = chip(status, row.tls)
    if row.negotiated:
        text += f' <span class="muted">{esc(row.negotiated)}</span>'
    return text


def endpoint_matrix(
    rows: Sequence[EndpointRow],
    statuses: Mapping[str, str],
    links: Mapping[tuple[str, str], str] | None = None,
) -> str:
    """The endpoint matrix; on a narrow screen each row becomes a card (CSS). `statuses`:
    the posture of each endpoint (probes.report.posture), so the grid and the matrix agree;
    an endpoint without one shows its worst severity. `links`: (endpoint, code) -> the id of
    the problem entry the status column's code links to (plain text without one)."""
    links = links or {}
    if not rows:
        return '<p class="empty">No transport probe reported on an endpoint.</p>'
    head = ("endpoint", "status", "TLS", "versions", "certificate", "auth", "probes")
    body = []
    for r in rows:
        status = statuses.get(r.subject, severity_status(r.worst))
        problems = ""
        if r.problems:
            codes = (_code(code, links.get((r.subject, code))) for code in r.problems)
            problems = '<div class="problems">' + " ".join(codes) + "</div>"
        cells = (
            f'<b class="endpoint">{breakable(r.subject)}</b>',
            chip(status) + problems,
            _tls(r),
            _versions(r),
            _cert(r),
            _auth(r),
            f'<span class="muted">{esc(", ".join(r.probes))}</span>',
        )
        body.append(
            f'<tr class="row-{status}">'
            + "".join(f'<td data-label="{h}">{c}</td>' for h, c in zip(head, cells, strict=True))
            + "</tr>"
        )
    return (
        '<table class="matrix"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


# --- SPF include tree ------------------------------------------------------------------------


def _spf_node(node: SpfNode) -> str:
    if node.status:
        status = "absent" if node.status.startswith("not ") else "fail"
        count = chip(status, node.status)
    else:
        total = node.total()
        own = node.lookups or 0
        count = f'<span class="lookups">{own} lookup{"s" if own != 1 else ""}'
        if node.children:
            count += f", {total} with includes"
        count += "</span>"
    kids = ""
    if node.children:
        kids = "<ul>" + "".join(_spf_node(c) for c in node.children) + "</ul>"
    via = f'<span class="via">{esc(node.via)}</span> ' if node.via != "apex" else ""
    return f'<li>{via}<b class="where">{esc(node.domain)}</b> {count}{kids}</li>'


def spf_tree_html(tree: SpfTree | None) -> str:
    if tree is None:
        return (
            '<p class="empty">No SPF include tree in this run (dns.spf did not walk a complete '
            "record).</p>"
        )
    if tree.root is None:
        return '<p class="empty">The SPF tree could not be read from the report.</p>'
    status = severity_status(tree.severity)
    summary = (
        f"<p>{chip(status, tree.code)} DNS-querying terms: <b>{esc(tree.count)}</b>"
        f"{' of ' + esc(tree.limit) + ' allowed' if tree.limit else ''}</p>"
    )
    cut = '<p class="muted">The tree was cut short in the report (…).</p>' if tree.truncated else ""
    return f'{summary}<ul class="tree">{_spf_node(tree.root)}</ul>{cut}'

"""The HTML report's drawings, as inline SVG (nothing loaded, no script): the test message's
alignment and the trend charts. Each drawing has a <title> and a text version next to it (a
table), and tells its states by line style and symbol as well as by colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from probes.report.html_text import chip, clip, esc
from probes.report.message_alignment import Identifier, MessageAlignment
from probes.report.run import TrendPoint
from probes.report.trend import Series, cert_series, severity_series

# --- alignment -------------------------------------------------------------------------------

_ALIGN_W = 460
_BOX_W = 236
_FROM_X = 300
_ROW_H = 50
_GAP = 12


def _align_word(ident: Identifier) -> tuple[str, str, str]:
    """(class, symbol, words) of an identifier's alignment."""
    if ident.aligned is None:
        return "unknown", "?", "alignment unknown"
    if ident.aligned:
        return "aligned", "✓", "aligned"
    return "unaligned", "✗", "not aligned"


def _ident_lines(ident: Identifier) -> tuple[str, str]:
    if ident.kind == "dkim":
        head = f"DKIM d={ident.domain or '?'}"
        tail = f"s={ident.selector} · {ident.result}"
    else:
        head = f"SPF MAIL FROM {ident.domain or '?'}"
        tail = ident.result
    return head, tail


def alignment_svg(alignment: MessageAlignment, index: int) -> str:
    """Identifiers (DKIM d=, SPF domain) on the left, the header From domain on the right, a
    line from each to it: solid ✓ aligned, dashed ✗ not aligned, dotted ? unknown."""
    idents = alignment.identifiers or ()
    n = max(len(idents), 1)
    height = n * _ROW_H + (n - 1) * _GAP + 8
    from_h = 74
    from_y = max((height - from_h) / 2, 4)
    title_id = f"align-title-{index}"
    parts = [
        f'<svg class="align" viewBox="0 0 {_ALIGN_W} {height}" role="img" '
        f'aria-labelledby="{title_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">{esc(alignment_text(alignment))}</title>',
    ]
    from_mid = from_y + from_h / 2
    for i, ident in enumerate(idents):
        y = 4 + i * (_ROW_H + _GAP)
        mid = y + _ROW_H / 2
        cls, symbol, words = _align_word(ident)
        head, tail = _ident_lines(ident)
        x1, x2 = _BOX_W, _FROM_X
        parts.append(
            f'<line class="link {cls}" x1="{x1}" y1="{mid:.1f}" x2="{x2}" y2="{from_mid:.1f}"/>'
        )
        cx, cy = (x1 + x2) / 2, (mid + from_mid) / 2
        parts.append(
            f'<circle class="mark {cls}" cx="{cx:.1f}" cy="{cy:.1f}" r="10"/>'
            f'<text class="mark" x="{cx:.1f}" y="{cy + 4.5:.1f}">{symbol}</text>'
        )
        parts.append(
            f'<g class="ident {cls}"><title>{esc(head)} {esc(tail)}: {words}</title>'
            f'<rect x="1" y="{y}" width="{_BOX_W - 2}" height="{_ROW_H}" rx="6"/>'
            f'<text x="10" y="{y + 20}" class="head">{esc(clip(head, 27))}</text>'
            f'<text x="10" y="{y + 39}">{esc(clip(tail, 16))} · {words}</text></g>'
        )
    if not idents:
        parts.append(
            f'<text x="10" y="{from_mid + 4:.1f}">no DKIM signature and no SPF verdict</text>'
        )
    dmarc = alignment.dmarc or "?"
    parts.append(
        f'<g class="from dmarc-{esc(dmarc)}"><title>header From {esc(alignment.header_from)}, '
        f"DMARC {esc(dmarc)}</title>"
        f'<rect x="{_FROM_X}" y="{from_y:.1f}" width="{_ALIGN_W - _FROM_X - 1}" '
        f'height="{from_h}" rx="6"/>'
        f'<text x="{_FROM_X + 10}" y="{from_y + 20:.1f}" class="head">header From</text>'
        f'<text x="{_FROM_X + 10}" y="{from_y + 40:.1f}">'
        f"{esc(clip(alignment.header_from or '?', 18))}</text>"
        f'<text x="{_FROM_X + 10}" y="{from_y + 62:.1f}" class="head">DMARC {esc(dmarc)}</text>'
        "</g>"
    )
    parts.append("</svg>")
    return "".join(parts)


def alignment_text(alignment: MessageAlignment) -> str:
    """One sentence: what aligns with the From domain."""
    aligned = [
        f"{i.kind.upper()} {i.domain}" for i in alignment.identifiers if i.aligned and i.domain
    ]
    return (
        f"header From {alignment.header_from or '?'}: DMARC {alignment.dmarc or '?'}; "
        f"aligned: {', '.join(aligned) or 'none'}"
    )


# --- trend -----------------------------------------------------------------------------------

_W, _H = 560, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 14, 14, 40
# marker shapes and dash patterns, so that series differ without colour
_SHAPES = ("circle", "square", "triangle", "diamond")
_DASHES = ("", "6 4", "2 4", "10 3 2 3")
SEVERITY_DRAWN = ("fail", "warn", "error")


def ticks(low: float, high: float) -> tuple[int, int, int]:
    """A round axis for values from `low` to `high`: (bottom, top, step), about 4 steps."""
    raw = max((high - low) / 4, 1)
    step = next(
        (s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000) if s >= raw),
        10000,
    )
    bottom = math.floor(low / step) * step
    top = math.ceil(high / step) * step
    if top == bottom:
        top = bottom + step
    return bottom, top, step


def _marker(shape: str, x: float, y: float, cls: str) -> str:
    if shape == "square":
        return f'<rect class="{cls}" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8"/>'
    if shape == "triangle":
        return (
            f'<polygon class="{cls}" points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} '
            f'{x - 5:.1f},{y + 4:.1f}"/>'
        )
    if shape == "diamond":
        return (
            f'<polygon class="{cls}" points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} '
            f'{x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"/>'
        )
    return f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="4"/>'


def legend_key(index: int, cls: str) -> str:
    """The small inline SVG in a legend entry: the series' marker and dash."""
    shape, dash = _SHAPES[index % len(_SHAPES)], _DASHES[index % len(_DASHES)]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<svg class="key" viewBox="0 0 30 12" aria-hidden="true">'
        f'<line class="series {cls}" x1="1" y1="6" x2="29" y2="6"{dash_attr}/>'
        f"{_marker(shape, 15, 6, 'dot ' + cls)}</svg>"
    )


def _x_labels(points: Sequence[TrendPoint]) -> list[tuple[int, str]]:
    n = len(points)
    wanted = {0, n - 1} | ({n // 2} if n > 4 else set())
    out = []
    for i in sorted(wanted):
        label = "this run" if i == n - 1 else points[i].started[5:10]
        out.append((i, label))
    return out


def line_chart(
    points: Sequence[TrendPoint],
    series: Sequence[Series],
    classes: Sequence[str],
    title: str,
    chart_id: str,
    *,
    floor: int = 0,
    ceiling: int = 1,
    bands: Sequence[tuple[int, int, str]] = (),
) -> str:
    """A line chart of `series` over the runs `points`, y from min(`floor`, the lowest value)
    to a round top (at least `ceiling`); `bands` are (low, high, class) strips drawn behind
    (e.g. expired)."""
    values = [v for s in series for v in s.values if v is not None]
    low, top, step = ticks(min([floor, *values]), max([ceiling, *values]))
    span = top - low
    n = len(points)
    plot_w = _W - _LEFT - _RIGHT
    plot_h = _H - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(v: float) -> float:
        return _TOP + plot_h * (top - v) / span

    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-labelledby="{chart_id}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}">{esc(title)}</title>',
    ]
    for lo, hi, cls in bands:
        lo_c, hi_c = max(lo, low), min(hi, top)
        if lo_c < hi_c:
            parts.append(
                f'<rect class="band {cls}" x="{_LEFT}" y="{y(hi_c):.1f}" width="{plot_w}" '
                f'height="{y(lo_c) - y(hi_c):.1f}"/>'
            )
    for tick in range(low, top + 1, step):
        parts.append(
            f'<line class="grid{" zero" if tick == 0 else ""}" x1="{_LEFT}" y1="{y(tick):.1f}" '
            f'x2="{_W - _RIGHT}" y2="{y(tick):.1f}"/>'
            f'<text class="axis" x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{tick}</text>"
        )
    for i, label in _x_labels(points):
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        parts.append(
            f'<text class="axis" x="{x(i):.1f}" y="{_H - _BOTTOM + 20}" '
            f'text-anchor="{anchor}">{esc(label)}</text>'
        )
    for k, (s, cls) in enumerate(zip(series, classes, strict=True)):
        dash = _DASHES[k % len(_DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        segment: list[str] = []
        segments = []
        for i, v in enumerate(s.values):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(v):.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                parts.append(
                    f'<polyline class="series {cls}" points="{" ".join(seg)}"{dash_attr}/>'
                )
        shape = _SHAPES[k % len(_SHAPES)]
        for i, v in enumerate(s.values):
            if v is not None:
                parts.append(
                    f"<g>{_marker(shape, x(i), y(v), 'dot ' + cls)}"
                    f"<title>{esc(s.name)}: {v} ({esc(points[i].started)})</title></g>"
                )
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: Sequence[Series], classes: Sequence[str], last: bool = True) -> str:
    items = []
    for k, (s, cls) in enumerate(zip(series, classes, strict=True)):
        now = s.values[-1] if s.values else None
        value = f": {now} now" if last and now is not None else ""
        items.append(f"<li>{legend_key(k, cls)}{esc(s.name)}{esc(value)}</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def trend_charts(points: Sequence[TrendPoint]) -> str:
    """The two trend charts with their legends and the numbers as a table."""
    sev = [s for s in severity_series(points) if s.name in SEVERITY_DRAWN]
    sev_cls = [f"s-{s.name}" for s in sev]
    sev_names = [
        Series({"error": "probes in error"}.get(s.name, f"{s.name} findings"), s.values)
        for s in sev
    ]
    if any(v for s in sev for v in s.values):
        out = [
            '<figure class="trend">',
            line_chart(
                points, sev_names, sev_cls, "Findings by severity per run", "trend-findings"
            ),
            "<figcaption>Findings by severity per run (oldest left)"
            f"{_legend(sev_names, sev_cls)}</figcaption></figure>",
        ]
    else:  # a flat line at zero says less than a sentence
        out = [
            f'<p class="steady">{chip("pass", "steady")} No warn or fail findings and no probe '
            f"errors in the last {len(points)} runs.</p>"
        ]
    certs = cert_series(points)
    if certs:
        cert_cls = [f"c-{k % 6}" for k in range(len(certs))]
        out += [
            '<figure class="trend">',
            line_chart(
                points,
                certs,
                cert_cls,
                "Certificate days left per host",
                "trend-certs",
                ceiling=30,
                bands=((-100000, 0, "expired"), (0, 21, "soon")),
            ),
            "<figcaption>Certificate days left per host (the fewest among its ports); the "
            "shaded strips are expired (below 0) and expiring within 21 days"
            f"{_legend(certs, cert_cls)}</figcaption></figure>",
        ]
    return "\n".join(out) + trend_table(points, certs)


def trend_table(points: Sequence[TrendPoint], certs: Sequence[Series]) -> str:
    head = "".join(f"<th>{esc(s.name)} days</th>" for s in certs)
    rows = []
    for i, p in enumerate(points):
        cells = "".join(
            f'<td class="num">{p.counts.get(k, 0)}</td>' for k in ("fail", "warn", "info", "error")
        )
        days = "".join(
            f'<td class="num">{"" if s.values[i] is None else s.values[i]}</td>' for s in certs
        )
        rows.append(f"<tr><td>{esc(p.run_id)}</td>{cells}{days}</tr>")
    return (
        f'<details class="numbers"><summary>the numbers ({len(points)} runs)</summary>'
        '<div class="scroll"><table><thead><tr><th>run</th><th>fail</th><th>warn</th>'
        f"<th>info</th><th>probes in error</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></details>"
    )

"""The HTML report in headless Chromium (Debian's `chromium` package), and all four renderers
on a real run against the lab.

The Chromium tests are skipped where no `chromium` is installed. The first needs no lab: it
renders a report built in code (with a hostile finding message) and checks, in the DOM Chromium
built, that the page loaded, its script ran and the hostile text stayed text. The lab test
renders a real run's report and checks the same, plus what JUnit and Prometheus make of it.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scorecard_sample import scorecard_report

from probes import registry
from probes.model import Finding, Outcome, ProbeResult, Severity, Target
from probes.net import Net
from probes.report import html_report, junit_report, prometheus_report
from probes.report.run import RunReport, new_run_id
from probes.runner import run_probes

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium not installed")
SCRIPT = "<script>alert(1)</script>"


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM headless Chromium built for `page`, after its scripts ran."""
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def render_html(report: RunReport, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as stream:
        html_report.render(report, stream)
    return path


@needs_chromium
def test_chromium_loads_the_page_runs_its_script_and_shows_hostile_text_as_text(tmp_path):
    findings = (
        Finding("dns.dkim", "DKIM_KEY_WEAK", Severity.WARN, SCRIPT, {"bits": "1024"}, "dig x"),
        Finding("dns.spf", "SPF_MISSING", Severity.FAIL, "no SPF record", {}, None),
        Finding("dns.mx", "MX_PRESENT", Severity.INFO, 'Grüße "quoted" | `tick`'),
    )
    report = RunReport(
        "20261122T020000Z-abc123",
        Target("example.test"),
        datetime(2026, 11, 22, tzinfo=UTC),
        1.0,
        (ProbeResult("dns.dkim", Outcome.COMPLETED, findings, duration_s=0.5),),
    )
    dom = dump_dom(render_html(report, tmp_path / "report.html"), tmp_path / "profile")
    assert 'data-js="ready"' in dom  # the page's script ran to its end
    for code in ("DKIM_KEY_WEAK", "SPF_MISSING", "MX_PRESENT"):
        assert code in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # text, not an element
    assert dom.count("<script>") == 1
    # the script un-hid the copy button and the severity filter
    assert re.search(r'<button type="button" class="copy" data-target="reproduce-\d+">', dom)
    assert '<div class="filters">' in dom
    assert "Grüße" in dom


# Appended to a copy of the page: opens every <details>, then reports the viewport width, the
# document's scroll width and the elements reaching past the right edge (outside the .scroll
# boxes, which scroll on their own) to the page around it.
MEASURE = """<script>
document.querySelectorAll("details").forEach(function (d) { d.open = true; });
var width = document.documentElement.clientWidth, over = [];
document.querySelectorAll("body *").forEach(function (e) {
  if (e.closest(".scroll")) { return; }
  var box = e.getBoundingClientRect();
  if (box.width > 0 && box.right > width + 0.5) {
    over.push(e.tagName.toLowerCase() + "." + (e.getAttribute("class") || ""));
  }
});
var ids = Array.prototype.map.call(document.querySelectorAll("section[id]"),
                                   function (s) { return s.id; });
parent.postMessage({width: width, scroll: document.documentElement.scrollWidth,
                    over: over.slice(0, 20), sections: ids,
                    svgs: document.querySelectorAll("svg.align, svg.chart").length,
                    js: document.body.getAttribute("data-js")}, "*");
</script>"""
# Chromium's headless window is at least 500 px wide: the page goes into an iframe of the width
# wanted, and its measurement comes back by postMessage.
FRAME = """<!DOCTYPE html><html><body data-result="none" style="margin:0">
<iframe src="{page}" style="width:{width}px;height:900px;border:0"></iframe>
<script>window.addEventListener("message", function (e) {{
  document.body.setAttribute("data-result", JSON.stringify(e.data)); }});</script>
</body></html>"""


def measure(page: Path, width: int, profile: Path) -> dict:
    """What MEASURE reports for `page` laid out `width` CSS pixels wide in headless Chromium."""
    probe = page.with_name(f"measured-{page.name}")
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8"
    )
    frame = page.with_name(f"frame-{width}.html")
    frame.write_text(FRAME.format(page=probe.name, width=width), encoding="utf-8")
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1000,1000",
            "--virtual-time-budget=10000",
            "--dump-dom",
            frame.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = re.search(r'<body data-result="([^"]*)"', done.stdout)
    assert found, done.stdout[:500]
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, width: int, profile: Path) -> Path:
    """A PNG of the top of `page` at `width` px (for a person to look at; kept in tmp)."""
    shot = page.with_name(f"{page.stem}-{width}.png")
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},2400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return shot


@needs_chromium
@pytest.mark.parametrize("width", [400, 1400])
def test_chromium_shows_the_scorecard_without_horizontal_overflow(tmp_path, width):
    domain = '"><img src=x onerror=alert(1)>.very-long-subdomain-name-of-a-mail-domain.example'
    page = render_html(scorecard_report(domain, trend_runs=8), tmp_path / "scorecard.html")
    seen = measure(page, width, tmp_path / "profile")
    assert seen["width"] == width
    assert seen["js"] == "ready"
    assert seen["scroll"] <= width and seen["over"] == [], seen
    # what to fix right after the posture grid, the rest of the scorecard after it
    sections = ["posture", "fail", "warn", "incomplete", "endpoints", "alignment", "spf-tree"]
    sections += ["trend", "info", "probes"]
    assert seen["sections"] == sections
    assert seen["svgs"] == 3  # the alignment drawing and the two trend charts
    shot = screenshot(page, width, tmp_path / "profile")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == width


@pytest.mark.lab
def test_lab_run_renders_in_every_format(lab_target, tmp_path):
    # one selector the lab does not publish, so the run has a fail finding to show
    target = lab_target(selectors=(*lab_target().selectors, "absent"))
    probes = [
        cls() for cls in registry.select_probes(registry.load_probes(), ["dns.dkim", "smtp.mx"])
    ]
    started = datetime.now(UTC)
    results = run_probes(probes, target, Net.for_target(target))
    duration = (datetime.now(UTC) - started).total_seconds()
    report = RunReport(new_run_id(started), target, started, duration, tuple(results))
    codes = {f.code for r in results for f in r.findings}
    assert {"DKIM_KEY_MISSING", "DKIM_KEY_OK", "CERT_OK"} <= codes

    junit = tmp_path / "report.xml"
    with junit.open("w", encoding="utf-8") as stream:
        junit_report.render(report, stream)
    suite = ET.parse(junit).getroot().find("testsuite")
    failures = [c.find("failure") for c in suite if c.find("failure") is not None]
    assert [f.get("type") for f in failures] == ["DKIM_KEY_MISSING"]

    prom = tmp_path / "report.prom"
    with prom.open("w", encoding="utf-8") as stream:
        prometheus_report.render(report, stream)
    text = prom.read_text(encoding="utf-8")
    domain = target.domain
    assert (
        f'mailprobe_dkim_key_size{{domain="{domain}",selector="mail",key_type="rsa"}} 2048' in text
    )
    expiry = re.search(
        rf'mailprobe_certificate_expiry_timestamp_seconds\{{domain="{re.escape(domain)}",'
        rf'probe="smtp.mx",subject="mx\.{re.escape(domain)}:25"\}} (\d+)',
        text,
    )
    assert expiry and int(expiry.group(1)) > started.timestamp()
    promtool = shutil.which("promtool")  # Debian's `prometheus`, installed by ./run-tests
    if promtool is not None:
        lint = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint

    if CHROMIUM is None:
        pytest.skip("Debian's chromium not installed: the HTML was not loaded in a browser")
    dom = dump_dom(render_html(report, tmp_path / "report.html"), tmp_path / "profile")
    assert 'data-js="ready"' in dom
    for code in codes:
        assert code in dom

"""The JUnit XML, Markdown, HTML and Prometheus renderers, on RunReports built in code.

The reports carry hostile text (control characters, markup, pipes, backticks, quotes,
newlines, non-ASCII) to check that each format stays well-formed and shows it literally.
"""

from __future__ import annotations

import dataclasses
import html
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target
from probes.report import html_report, junit_report, markdown_report, prometheus_report
from probes.report.run import RunReport

HOSTILE = 'bad <b>&amp;</b> | `tick` "quoted" \x1b[31m\x00 line1\nline2 — Grüße ✉'
SCRIPT = "<script>alert(1)</script>"
STARTED = datetime(2026, 11, 22, 2, 0, 0, tzinfo=UTC)


def _finding(probe, code, severity, message="msg", evidence=None, reproduce=None, subject=None):
    return Finding(probe, code, severity, message, evidence or {}, reproduce, subject)


def sample_report(domain: str = "example.test") -> RunReport:
    """Every outcome, every severity, findings with and without subjects, hostile text."""
    results = (
        ProbeResult(
            "dns.spf",
            Outcome.COMPLETED,
            (
                _finding(
                    "dns.spf",
                    "SPF_TOO_MANY_LOOKUPS",
                    Severity.FAIL,
                    "12 DNS-querying terms; the limit is 10",
                    {"count": "12", "record": "v=spf1 include:a include:b -all"},
                    "dig +short TXT example.test @127.0.0.53",
                ),
                _finding("dns.spf", "SPF_PTR_MECHANISM", Severity.WARN, HOSTILE),
            ),
            duration_s=0.25,
        ),
        ProbeResult(
            "dns.dkim",
            Outcome.COMPLETED,
            (
                _finding(
                    "dns.dkim",
                    "DKIM_KEY_WEAK",
                    Severity.WARN,
                    SCRIPT,
                    {"selector": "s1024", "bits": "1024", "key_type": "rsa", "odd": HOSTILE},
                    "dig +short TXT s1024._domainkey.example.test | grep '`p=`'",
                    subject="s1024",
                ),
                _finding(
                    "dns.dkim",
                    "DKIM_KEY_OK",
                    Severity.INFO,
                    "RSA key, 2048 bits",
                    {"selector": "mail", "bits": "2048"},
                    subject="mail",
                ),
                _finding(
                    "dns.dkim",
                    "DKIM_KEY_TOO_SHORT",
                    Severity.FAIL,
                    "RSA key of 512 bits",
                    {"selector": "mail", "bits": "512", "record_index": "1"},
                    subject="mail",
                ),
            ),
            duration_s=0.125,
        ),
        ProbeResult(
            "smtp.mx",
            Outcome.COMPLETED,
            (
                _finding(
                    "smtp.mx",
                    "CERT_EXPIRING_SOON",
                    Severity.WARN,
                    "certificate expires in 9 day(s)",
                    {"days_left": "9", "not_after": "2026-12-01T00:00:00Z"},
                    subject="mx.example.test:25",
                ),
                _finding(
                    "smtp.mx",
                    "CERT_EXPIRED",
                    Severity.FAIL,
                    "certificate expired 3 day(s) ago",
                    {"days_left": "-3"},
                    subject='mx2.example.test:25 "q"\\',
                ),
            ),
            duration_s=1.5,
        ),
        ProbeResult(
            "imap.tls",
            Outcome.COMPLETED,
            (
                _finding(
                    "imap.tls",
                    "CERT_OK",
                    Severity.INFO,
                    "certificate valid",
                    {"days_left": "89"},
                    subject="mailbox.example.test:993",
                ),
            ),
            duration_s=0.5,
        ),
        ProbeResult(
            "pop3.tls",
            Outcome.ERROR,
            error=ErrorReason.TIMEOUT,
            error_detail="no answer within 10 s <from> \x07 server",
            duration_s=10.0,
        ),
        ProbeResult(
            "message.roundtrip",
            Outcome.SKIPPED,
            error_detail="no credentials configured",
        ),
        ProbeResult("dns.mx", Outcome.COMPLETED, duration_s=0.0625),
    )
    return RunReport("20261122T020000Z-abc123", Target(domain), STARTED, 12.5, results)


def rendered(module, report: RunReport) -> str:
    stream = io.StringIO()
    module.render(report, stream)
    return stream.getvalue()


# --- JUnit XML -------------------------------------------------------------------------------


def junit_root(report: RunReport | None = None) -> ET.Element:
    text = rendered(junit_report, report or sample_report())
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.encode("utf-8"))


def test_junit_has_one_suite_named_after_the_domain_with_counts_time_and_timestamp():
    root = junit_root()
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "mailprobe example.test"
    assert suite.get("timestamp") == "2026-11-22T02:00:00Z"
    assert suite.get("time") == "12.500"
    cases = suite.findall("testcase")
    assert suite.get("tests") == str(len(cases)) == "9"
    assert suite.get("failures") == "3"  # dns.spf, dns.dkim mail, smtp.mx mx2
    assert suite.get("errors") == "1"
    assert suite.get("skipped") == "1"
    assert root.get("tests") == "9" and root.get("failures") == "3"


def test_junit_has_one_testcase_per_probe_and_subject():
    suite = junit_root().find("testsuite")
    names = [(c.get("classname"), c.get("name")) for c in suite.findall("testcase")]
    assert names == [
        ("dns.spf", "dns.spf"),
        ("dns.dkim", "s1024"),
        ("dns.dkim", "mail"),
        ("smtp.mx", "mx.example.test:25"),
        ("smtp.mx", 'mx2.example.test:25 "q"\\'),
        ("imap.tls", "mailbox.example.test:993"),
        ("pop3.tls", "pop3.tls"),
        ("message.roundtrip", "message.roundtrip"),
        ("dns.mx", "dns.mx"),
    ]  # a probe without findings still is a test case (dns.mx)
    times = {(c.get("classname"), c.get("name")): c.get("time") for c in suite}
    assert times[("smtp.mx", "mx.example.test:25")] == "1.500"
    assert times[("smtp.mx", 'mx2.example.test:25 "q"\\')] == "0.000"


def test_junit_fail_findings_are_failures_and_warnings_stay_green():
    suite = junit_root().find("testsuite")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    spf = cases[("dns.spf", "dns.spf")]
    failure = spf.find("failure")
    assert failure.get("type") == "SPF_TOO_MANY_LOOKUPS"
    assert failure.get("message") == "12 DNS-querying terms; the limit is 10"
    assert "count: 12" in failure.text
    assert "reproduce: dig +short TXT example.test @127.0.0.53" in failure.text
    assert "SPF_PTR_MECHANISM" in spf.find("system-out").text
    props = {p.get("name"): p.get("value") for p in spf.find("properties")}
    assert props == {"SPF_TOO_MANY_LOOKUPS": "fail", "SPF_PTR_MECHANISM": "warn"}
    weak = cases[("dns.dkim", "s1024")]
    assert weak.find("failure") is None
    assert "DKIM_KEY_WEAK" in weak.find("system-out").text
    expiring = cases[("smtp.mx", "mx.example.test:25")]
    assert expiring.find("failure") is None and expiring.find("error") is None


def test_junit_error_and_skipped_outcomes():
    suite = junit_root().find("testsuite")
    cases = {c.get("classname"): c for c in suite.findall("testcase")}
    error = cases["pop3.tls"].find("error")
    assert error.get("type") == "TIMEOUT"
    assert error.get("message").startswith("no answer within 10 s <from> \\x07")
    skipped = cases["message.roundtrip"].find("skipped")
    assert skipped.get("message") == "no credentials configured"


def test_junit_stays_valid_xml_with_hostile_text():
    suite = junit_root().find("testsuite")
    spf = next(c for c in suite if c.get("classname") == "dns.spf")
    out = spf.find("system-out").text
    # control characters spelled out; markup, quotes, newlines and non-ASCII kept literally
    assert "\\x1b[31m\\x00 line1\nline2 — Grüße ✉" in out
    assert '<b>&amp;</b> | `tick` "quoted"' in out


def test_junit_for_a_run_without_probes_is_an_empty_suite():
    empty = RunReport("r", Target("a.test"), STARTED, 0.0, ())
    suite = junit_root(empty).find("testsuite")
    assert suite.get("tests") == "0" and suite.findall("testcase") == []


# --- Markdown --------------------------------------------------------------------------------


def test_markdown_summary_line_counts_severities_and_outcomes():
    text = rendered(markdown_report, sample_report())
    summary = next(line for line in text.splitlines() if line.startswith("**Target**"))
    assert "example.test" in summary
    assert "3 fail" in summary and "3 warn" in summary and "2 info" in summary
    assert "7 probes** 5 completed, 1 error, 1 skipped" in summary


def test_markdown_table_lists_fail_and_warn_findings_in_that_order():
    text = rendered(markdown_report, sample_report())
    rows = [line for line in text.splitlines() if line.startswith("| <code>")]
    serious = [re.search(r"<code>(\w+)</code>", r).group(1) for r in rows[:6]]
    assert serious == [
        "SPF_TOO_MANY_LOOKUPS",
        "DKIM_KEY_TOO_SHORT",
        "CERT_EXPIRED",
        "SPF_PTR_MECHANISM",
        "DKIM_KEY_WEAK",
        "CERT_EXPIRING_SOON",
    ]
    # the info findings are in a collapsed table after them
    assert "<summary>2 info findings</summary>" in text
    assert text.index("<summary>2 info findings</summary>") < text.index("DKIM_KEY_OK")


def test_markdown_table_cells_escape_pipes_backticks_markup_and_newlines():
    text = rendered(markdown_report, sample_report())
    row = next(line for line in text.splitlines() if line.startswith("| <code>SPF_PTR_MECHANISM"))
    # unescaped pipes are exactly the 6 cell borders of a 5-column row
    assert len(re.findall(r"(?<!\\)\|", row)) == 6
    assert "\\`tick\\`" in row and "\\|" in row
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in row
    assert "line1<br>line2 — Grüße ✉" in row and "\\x1b" in row and "\x00" not in text
    assert SCRIPT not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_markdown_details_hold_evidence_and_the_reproduce_command_fenced():
    text = rendered(markdown_report, sample_report())
    block = text[text.index("<code>DKIM_KEY_WEAK</code> dns.dkim · s1024</summary>") :]
    block = block[: block.index("</details>")]
    assert "| bits | 1024 |" in block
    # a command with a backtick run is fenced with a longer fence, verbatim
    assert "```sh\ndig +short TXT s1024._domainkey.example.test | grep '`p=`'\n```" in block


def test_markdown_lists_probes_that_did_not_complete():
    text = rendered(markdown_report, sample_report())
    assert (
        "| pop3.tls | ERROR | TIMEOUT | no answer within 10 s &lt;from&gt; \\\\x07 server |" in text
    )
    assert "| message.roundtrip | SKIPPED |  | no credentials configured |" in text


def test_markdown_escapes_what_would_start_a_list_or_heading():
    assert markdown_report.md("1. one") == "1\\. one"
    assert markdown_report.md("# title") == "\\# title"
    assert markdown_report.md("127.0.0.1") == "127.0.0.1"
    assert markdown_report.fenced("a ```` b") == "`````sh\na ```` b\n`````"


# --- HTML ------------------------------------------------------------------------------------


def test_html_is_one_self_contained_file():
    text = rendered(html_report, sample_report())
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert "default-src 'none'" in text  # CSP: nothing may be loaded
    assert "<style>" in text and "navigator.clipboard" in text and "execCommand" in text


def test_html_escapes_a_script_in_a_finding_message():
    text = rendered(html_report, sample_report())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert SCRIPT not in text
    assert text.count("<script>") == 1  # only the page's own script


def test_html_escapes_hostile_text_everywhere():
    hostile = sample_report(domain='"><img src=x onerror=alert(1)>')
    text = rendered(html_report, hostile)
    assert "<img" not in text
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt; | `tick` &quot;quoted&quot;" in text
    assert "\\x1b[31m\\x00 line1\nline2 — Grüße ✉" in text and "\x00" not in text


def test_html_groups_findings_by_severity_with_evidence_and_copy_buttons():
    text = rendered(html_report, sample_report())
    fail, warn, info = (text.index(f'<section id="{s}">') for s in ("fail", "warn", "info"))
    # (the scorecard above the findings names codes too: look from the first section on)
    assert fail < text.index("SPF_TOO_MANY_LOOKUPS", fail) < warn
    assert warn < text.index("DKIM_KEY_WEAK", fail) < info < text.index("DKIM_KEY_OK", fail)
    # the headings count problems as the verdict does, and findings as the cards do
    assert "<h2>Fail: 3 problems (3 findings)</h2>" in text
    assert "<h2>Warn: 3 problems (3 findings)</h2>" in text
    assert "<tr><td>count</td><td>12</td></tr>" in text
    commands = re.findall(r'<pre id="(reproduce-\d+)">', text)
    buttons = re.findall(r'<button type="button" class="copy" data-target="(reproduce-\d+)"', text)
    assert commands == buttons and len(commands) == 2
    assert "grep &#x27;`p=`&#x27;" in text


def test_html_lists_every_probe_with_outcome_and_duration():
    text = rendered(html_report, sample_report())
    probes = text[text.index('<section id="probes">') :]
    for probe_id in ("dns.spf", "dns.dkim", "smtp.mx", "pop3.tls", "message.roundtrip"):
        assert f"<td>{probe_id}</td>" in probes
    assert '<td class="outcome-ERROR">ERROR</td><td class="num">10.000 s</td>' in probes
    assert "TIMEOUT no answer within 10 s &lt;from&gt; \\x07 server" in probes


# --- Prometheus ------------------------------------------------------------------------------

SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})?'
    r" (?P<value>[-+]?(?:\d+(?:\.\d+)?(?:e[-+]?\d+)?|NaN|Inf))$"
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def prometheus_samples(report: RunReport) -> dict[tuple[str, frozenset], float]:
    """Parse the exposition strictly: every line a comment or a valid sample, HELP and TYPE
    before each metric's samples, no sample twice."""
    text = rendered(prometheus_report, report)
    assert text.endswith("\n")
    samples: dict[tuple[str, frozenset], float] = {}
    typed: set[str] = set()
    helped: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge"
            typed.add(name)
            continue
        match = SAMPLE.match(line)
        assert match, f"not a valid sample line: {line!r}"
        name = match.group("name")
        assert name in typed and name in helped
        labels = frozenset((k, _unescape(v)) for k, v in LABEL.findall(match.group("labels")))
        assert ("domain", report.target.domain) in labels
        key = (name, labels)
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(match.group("value"))
    return samples


def _value(samples, name, **labels):
    wanted = {(k, v) for k, v in labels.items()}
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_prometheus_counts_findings_by_code_severity_and_probe():
    samples = prometheus_samples(sample_report())
    assert _value(samples, "mailprobe_findings", code="DKIM_KEY_WEAK", severity="warn") == 1
    assert _value(samples, "mailprobe_findings", code="CERT_OK", probe="imap.tls") == 1
    assert _value(samples, "mailprobe_findings_by_severity", severity="fail") == 3
    assert _value(samples, "mailprobe_findings_by_severity", severity="info") == 2


def test_prometheus_probe_durations_outcomes_and_run_figures():
    samples = prometheus_samples(sample_report())
    assert _value(samples, "mailprobe_probe_duration_seconds", probe="smtp.mx") == 1.5
    assert _value(samples, "mailprobe_probe_outcome", probe="pop3.tls", outcome="ERROR") == 1
    assert _value(samples, "mailprobe_probe_outcome", probe="pop3.tls", outcome="COMPLETED") == 0
    assert _value(samples, "mailprobe_run_duration_seconds") == 12.5
    assert _value(samples, "mailprobe_run_timestamp_seconds") == STARTED.timestamp()


def test_prometheus_certificate_expiry_timestamp_from_cert_findings():
    samples = prometheus_samples(sample_report())
    expiry = {
        dict(ls)["subject"]: v
        for (n, ls), v in samples.items()
        if n == "mailprobe_certificate_expiry_timestamp_seconds"
    }
    # Only findings with a notAfter (`not_after` evidence) give a sample.
    assert expiry == {"mx.example.test:25": datetime(2026, 12, 1, tzinfo=UTC).timestamp()}


def test_prometheus_dkim_key_size_per_selector_and_key_type_keeps_the_smallest():
    samples = prometheus_samples(sample_report())
    sizes = {
        (dict(ls)["selector"], dict(ls)["key_type"]): v
        for (n, ls), v in samples.items()
        if n == "mailprobe_dkim_key_size"
    }
    assert sizes == {("s1024", "rsa"): 1024, ("mail", ""): 512}


def test_prometheus_up_and_last_run_and_success_timestamps():
    samples = prometheus_samples(sample_report())
    ended = STARTED.timestamp() + 12.5
    assert _value(samples, "mailprobe_up") == 0  # pop3.tls ended in ERROR
    assert _value(samples, "mailprobe_last_run_timestamp_seconds") == ended
    assert not [n for n, _ in samples if n == "mailprobe_last_success_timestamp_seconds"]
    fine = sample_report()
    fine = dataclasses.replace(
        fine, results=tuple(r for r in fine.results if r.outcome is not Outcome.ERROR)
    )
    samples = prometheus_samples(fine)
    assert _value(samples, "mailprobe_up") == 1
    assert _value(samples, "mailprobe_last_success_timestamp_seconds") == ended


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [('a"b', 'a\\"b'), ("a\\b", "a\\\\b"), ("a\nb", "a\\nb"), ("Grüße", "Grüße")],
)
def test_prometheus_label_values_are_escaped(raw, escaped):
    assert prometheus_report.label_value(raw) == escaped


def test_prometheus_hostile_domain_and_subject_stay_parseable():
    samples = prometheus_samples(sample_report(domain='ex"am\\ple\n.test'))
    assert _value(samples, "mailprobe_run_duration_seconds") == 12.5


def test_html_names_probes_that_did_not_complete_after_the_problems_to_fix():
    text = rendered(html_report, sample_report())
    assert text.index('<section id="warn">') < text.index('<section id="incomplete">')
    start = text.index('<section id="incomplete">')
    incomplete = text[start : text.index('<section id="endpoints">')]
    assert "did not run to completion (2)" in incomplete
    assert "<b>pop3.tls</b>" in incomplete and "TIMEOUT" in incomplete
    assert "<b>message.roundtrip</b>" in incomplete and "no credentials configured" in incomplete


def test_markdown_renders_hostile_text_literally_in_a_commonmark_table():
    markdown_it = pytest.importorskip("markdown_it")
    parser = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")
    page = parser.render(rendered(markdown_report, sample_report()))
    assert "<script>" not in page and "<b>" not in page
    cells = re.findall(r"<td>(.*?)</td>", page, flags=re.S)
    shown = [html.unescape(c.replace("<br>", "\n")) for c in cells]
    visible = HOSTILE.replace("\x1b", "\\x1b").replace("\x00", "\\x00")
    assert visible in shown
    assert SCRIPT in shown  # shown as text, after the HTML entities are read
    assert 'mx2.example.test:25 "q"\\' in shown


def test_junit_attributes_and_text_round_trip_newlines_quotes_and_odd_code_points():
    message = 'two\nlines\r\n"quoted" <&> \ud800 \ufffe\ttab'
    failing = ProbeResult(
        "dns.spf",
        Outcome.COMPLETED,
        (_finding("dns.spf", "SPF_MISSING", Severity.FAIL, message),),
    )
    report = RunReport("r", Target("a.test"), STARTED, 1.0, (failing,))
    failure = junit_root(report).find("testsuite/testcase/failure")
    spelled = 'two\nlines\r\n"quoted" <&> \\ud800 \\ufffe\ttab'
    assert failure.get("message") == spelled
    assert failure.text.startswith(f"[fail] SPF_MISSING: {spelled}")


def test_markdown_fix_prose_shows_backticked_commands_as_code():
    assert markdown_report.prose("run `openssl s_client -connect <h>:25` then a_b") == (
        "run <code>openssl s_client -connect &lt;h&gt;:25</code> then a\\_b"
    )
    assert markdown_report.prose("an ` unpaired one") == markdown_report.md("an ` unpaired one")

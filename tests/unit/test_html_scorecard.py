"""The HTML scorecard's pure pieces (endpoint matrix, message alignment, SPF tree, trend) and
the sections the HTML report draws from them, on reports built in code (tests/scorecard_sample.py,
evidence copied from real lab runs). The page in Chromium: tests/lab/test_lab_html_report.py.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re

from scorecard_sample import HOSTILE, INFO, TREE, f, scorecard_report

from probes import cli
from probes.codes import Fix
from probes.history import HistoryDB
from probes.model import Severity
from probes.report import html_report
from probes.report.endpoint_matrix import endpoint_rows, split_subject
from probes.report.html_charts import ticks
from probes.report.message_alignment import alignment_of, message_alignments
from probes.report.run import RunReport
from probes.report.spf_tree import parse_tree, spf_tree
from probes.report.trend import cert_series, point_of, severity_series


def rendered(report: RunReport) -> str:
    stream = io.StringIO()
    html_report.render(report, stream)
    return stream.getvalue()


def section(text: str, id_: str) -> str:
    start = text.index(f'<section id="{id_}">')
    return text[start : text.index("</section>", start)]


# --- endpoint matrix -------------------------------------------------------------------------


def test_split_subject_keeps_ipv6_hosts_and_refuses_subjects_without_a_port():
    assert split_subject("mx.example.test:25") == ("mx.example.test", 25)
    assert split_subject("[2001:db8::1]:465") == ("2001:db8::1", 465)
    assert split_subject("example.test") == ("example.test", None)
    assert split_subject("127.0.0.1") == ("127.0.0.1", None)


def test_endpoint_rows_read_tls_versions_certificate_and_auth_from_the_evidence():
    rows = {r.subject: r for r in endpoint_rows(scorecard_report())}
    assert list(rows) == [
        "mailbox.example.test:143",
        "mx.example.test:25",
        "mx.example.test:465",
        "outbound.example.test:465",
    ]
    mx = rows["mx.example.test:25"]
    assert (mx.tls, mx.negotiated) == ("STARTTLS", "TLSv1.3")
    assert mx.accepted == ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3") and mx.refused == ()
    assert mx.legacy == ("TLSv1", "TLSv1.1")
    assert (mx.cert, mx.cert_days) == ("CERT_EXPIRED", -3)
    assert mx.worst is Severity.FAIL
    # smtp.relay's finding about the same endpoint counts too, worst first
    assert mx.problems == ("CERT_EXPIRED", "SMTP_OPEN_RELAY", "TLS_LEGACY_PROTOCOL")
    assert mx.probes == ("smtp.mx", "smtp.relay")
    sub = rows["mx.example.test:465"]
    assert (sub.tls, sub.cert, sub.cert_days) == ("implicit TLS", "ok", 12)
    assert sub.refused == ("TLSv1", "TLSv1.1") and sub.legacy == ()
    assert (sub.auth_mechanisms, sub.auth, sub.worst) == ("PLAIN LOGIN", "login accepted", INFO)
    imap = rows["mailbox.example.test:143"]
    assert (imap.auth, imap.worst) == ("login refused", Severity.FAIL)
    closed = rows["outbound.example.test:465"]
    assert (closed.tls, closed.cert, closed.cert_days, closed.accepted) == (
        "closed",
        "none seen",
        None,
        (),
    )


def test_a_finding_without_a_port_or_of_another_probe_is_no_endpoint():
    report = scorecard_report()
    banner = f("smtp.mx", "SMTP_BANNER_PTR_MISMATCH", Severity.WARN, "mx.example.test")
    dns = f("dns.dane", "DANE_TLSA_MISSING", INFO, "mx.example.test:25")
    extra = dataclasses.replace(report.results[4], findings=(banner, dns))
    report = dataclasses.replace(report, results=(*report.results, extra), new=None)
    rows = {r.subject: r for r in endpoint_rows(report)}
    assert "mx.example.test" not in rows
    assert rows["mx.example.test:25"].probes == ("smtp.mx", "smtp.relay")


# --- message alignment -----------------------------------------------------------------------


def test_alignment_of_the_round_trip_uses_the_aligned_evidence_keys():
    (found,) = message_alignments(scorecard_report())
    assert (found.probe_id, found.header_from, found.dmarc) == (
        "message.roundtrip",
        "example.test",
        "pass",
    )
    shown = [(i.kind, i.domain, i.selector, i.result, i.aligned) for i in found.identifiers]
    assert shown == [
        ("dkim", "example.test", "mail", "pass", True),
        ("dkim", "esp.example", "k1", "fail", False),
        ("spf", "bounces.esp.example", "", "pass", False),
    ]
    assert [i.domain for i in found.passing_aligned] == ["example.test"]


def test_alignment_from_an_older_report_infers_only_what_equal_names_say():
    evidence = {
        "dkim": "pass(d=example.test s=mail) pass(d=mail.example.test s=s2)",
        "spf": "pass (example.test)",
        "dmarc": "pass",
    }
    found = alignment_of("message.roundtrip", "example.test", evidence, "", not_aligned=False)
    assert [i.aligned for i in found.identifiers] == [True, None, True]
    # DMARC_NOT_ALIGNED of the same probe: nothing aligned
    found = alignment_of("message.roundtrip", "example.test", evidence, "", not_aligned=True)
    assert [i.aligned for i in found.identifiers] == [False, False, False]


def test_alignment_of_a_receiver_report_takes_the_spf_domain_from_the_envelope():
    evidence = {
        "spf": "pass",
        "dkim": "none",
        "dmarc": "pass",
        "mail_from": "bounce@Example.TEST",
        "header_from": "example.test",
        "dkim_aligned": "none",
        "spf_aligned": "yes",
    }
    found = alignment_of(
        "message.receiver", "example.test", evidence, "example.test", not_aligned=False
    )
    assert [(i.kind, i.domain, i.aligned) for i in found.identifiers] == [
        ("spf", "example.test", True)
    ]


# --- SPF tree --------------------------------------------------------------------------------


def test_spf_tree_text_parses_back_into_nodes_with_counts_and_statuses():
    root, truncated = parse_tree(TREE)
    assert not truncated
    assert (root.domain, root.via, root.lookups, root.total()) == ("example.test", "apex", 2, 9)
    provider, gone, macro = root.children
    assert (provider.label, provider.lookups, provider.total()) == (
        "include:_spf.provider.test",
        3,
        7,
    )
    assert provider.children[0].label == "include:_netblocks.provider.test"
    assert (gone.via, gone.status, gone.lookups) == ("include", "NO SPF RECORD", None)
    assert (macro.label, macro.status) == ("redirect=_macro.test", "not followed (macro)")


def test_a_tree_cut_short_by_dns_spf_keeps_the_nodes_read_before_the_cut():
    root, truncated = parse_tree("example.com=2 (include:a.test=6, include:b.tes…")
    assert truncated
    assert [c.domain for c in root.children] == ["a.test"]
    assert parse_tree("") == (None, True)
    assert parse_tree("example.com=LOOP")[0].status == "LOOP"


def test_spf_tree_of_a_report_comes_from_the_lookup_count_finding():
    tree = spf_tree(scorecard_report())
    assert (tree.code, tree.count, tree.limit, tree.severity) == (
        "SPF_LOOKUP_COUNT",
        "9",
        "10",
        Severity.INFO,
    )
    assert tree.root.domain == "example.test"


# --- trend -----------------------------------------------------------------------------------


def test_point_of_a_report_counts_findings_and_errors_and_reads_certificate_days():
    point = point_of(scorecard_report())
    assert dict(point.counts) == {"info": 17, "warn": 2, "fail": 4, "error": 1}
    assert dict(point.cert_days) == {
        "mailbox.example.test:143": 89,
        "mx.example.test:25": -3,
        "mx.example.test:465": 12,
    }


def test_trend_series_per_severity_and_per_host_with_the_fewest_days():
    points = scorecard_report(trend_runs=3).trend
    sev = {s.name: s.values for s in severity_series(points)}
    assert sev["fail"] == (0, 1, 2) and sev["error"] == (0, 0, 0)
    certs = {s.name: s.values for s in cert_series(points)}
    assert certs == {"mailbox.example.test": (89, 89, 89), "mx.example.test": (30, 25, 20)}
    # a host not seen in a run is a gap, not a zero
    gap = dataclasses.replace(points[1], cert_days={})
    assert cert_series((points[0], gap))[1].values == (30, None)


def test_ticks_are_round_and_include_zero():
    assert ticks(0, 3) == (0, 3, 1)
    assert ticks(-3, 89) == (-25, 100, 25)
    assert ticks(0, 0) == (0, 1, 1)


def test_history_trend_gives_earlier_runs_of_the_same_target_oldest_first(tmp_path):
    base = scorecard_report()
    older = []
    for k in range(3):
        when = base.started.replace(day=base.started.day - 3 + k)
        older.append(
            dataclasses.replace(base, run_id=f"run-{k}", started=when, new=None, trend=None)
        )
    other = dataclasses.replace(
        older[0], run_id="other", target=dataclasses.replace(base.target, domain="other.test")
    )
    with HistoryDB(tmp_path / "h.sqlite") as db:
        for r in (*older, other):
            db.add(r, what="probes:*")
        trend = db.trend(base, "probes:*", runs=3)
    assert [p.run_id for p in trend] == ["run-1", "run-2", base.run_id]
    assert dict(trend[0].counts) == {"fail": 4, "warn": 2, "info": 17, "error": 1}
    assert trend[0].cert_days["mx.example.test:25"] == -3


# --- the page --------------------------------------------------------------------------------


def test_the_page_has_the_scorecard_sections_before_the_findings():
    text = rendered(scorecard_report(trend_runs=5))
    order = [
        text.index(f'<section id="{s}">')
        for s in ("posture", "endpoints", "alignment", "spf-tree", "trend", "fail", "warn", "info")
    ]
    assert order == sorted(order)
    endpoints = section(text, "endpoints")
    assert endpoints.count("<tr class=") == 4
    assert "TLSv1 ✗ accepted (legacy)" in endpoints and "TLSv1.1 refused" in endpoints
    assert "expired 3 days ago" in endpoints and "12 days left" in endpoints
    assert "login refused" in endpoints
    alignment = section(text, "alignment")
    assert alignment.count('<line class="link aligned"') == 1
    assert alignment.count('<line class="link unaligned"') == 2
    assert "✓ aligned" in alignment and "✗ not aligned" in alignment
    tree = section(text, "spf-tree")
    assert "_netblocks.provider.test" in tree and "NO SPF RECORD" in tree
    trend = section(text, "trend")
    assert trend.count('<svg class="chart"') == 2 and "the numbers (5 runs)" in trend
    assert "mx.example.test: 10 now" in trend  # the fewest days of the host, this run


def test_the_page_marks_new_findings_and_keeps_info_collapsed():
    text = rendered(scorecard_report())
    fail = section(text, "fail")
    assert re.search(
        r'<span class="badge new">new</span><span class="code">SPF_PERMISSIVE_ALL', fail
    )
    assert '<p class="changes">since the previous comparable run: 1 new, 0 changed</p>' in text
    info = text[text.index('<section id="info">') :]
    assert info.index("<details>") < info.index("CERT_OK")


def test_a_first_run_and_a_report_without_history_show_the_same_sentence():
    first = rendered(dataclasses.replace(scorecard_report(), trend=(point_of(scorecard_report()),)))
    none = rendered(scorecard_report())
    assert first == none
    assert "No earlier runs to draw a trend from" in section(none, "trend")
    assert '<svg class="chart"' not in none


def test_hostile_names_stay_text_in_every_section():
    domain = '"><img src=x onerror=alert(1)>'
    text = rendered(scorecard_report(domain, trend_runs=3))
    assert "<img" not in text
    for id_ in ("alignment", "trend", "fail"):
        assert "&lt;img src=x onerror=alert(1)&gt;" in section(text, id_)
    assert HOSTILE not in text and "\x1b" not in text
    assert text.count("<script>") == 1
    report = scorecard_report()
    spf = report.results[0]
    hostile_tree = f("dns.spf", "SPF_LOOKUP_COUNT", INFO, "x", tree="<b>x=1 (include:<i>y=2)")
    report = dataclasses.replace(
        report, results=(dataclasses.replace(spf, findings=(hostile_tree,)),), new=None
    )
    tree = section(rendered(report), "spf-tree")
    assert "&lt;b&gt;x" in tree and "&lt;i&gt;y" in tree and "<b>x" not in tree


def test_a_warn_or_fail_finding_shows_its_code_fix_collapsed(monkeypatch):
    fix = Fix("Remove <old> ciphers.", {"postfix": "smtpd_tls_protocols = >=TLSv1.2"})
    monkeypatch.setattr(html_report, "_fixes", lambda: {"TLS_LEGACY_PROTOCOL": fix})
    text = rendered(scorecard_report())
    warn = section(text, "warn")
    # TLSv1 and TLSv1.1 accepted on the same endpoint: one cause, one fix
    assert warn.count('<details class="fix"><summary>how to fix TLS_LEGACY_PROTOCOL') == 1
    assert "Remove &lt;old&gt; ciphers." in warn
    assert "<h4>Postfix</h4><pre>smtpd_tls_protocols = &gt;=TLSv1.2</pre>" in warn
    assert "docs/codes.md#tls_legacy_protocol" in warn
    assert '<details class="fix">' not in section(text, "fail")  # no fix declared


def test_render_with_history_draws_the_trend_the_check_run_had(tmp_path, capsys):
    report = scorecard_report()
    history = tmp_path / "h.sqlite"
    with HistoryDB(history) as db:
        for k in range(2):
            earlier = dataclasses.replace(
                report, run_id=f"run-{k}", started=report.started.replace(day=k + 1), new=None
            )
            db.add(earlier, what="probes:*")
    stored = tmp_path / "report.json"
    stored.write_text(json.dumps(report.to_json()), encoding="utf-8")
    assert cli.main(["render", str(stored), "--format", "html"]) == 0
    assert '<svg class="chart"' not in capsys.readouterr().out  # the history is not read
    assert cli.main(["render", str(stored), "--format", "html", "--history", str(history)]) == 0
    trend = section(capsys.readouterr().out, "trend")
    assert "the numbers (3 runs)" in trend and "run-0" in trend and report.run_id in trend
    assert cli.main(["render", str(stored), "--history", str(tmp_path / "none.sqlite")]) == 2
    assert "no such history file" in capsys.readouterr().err


def test_the_trend_is_neither_in_the_json_nor_in_equality():
    report = scorecard_report(trend_runs=3)
    assert report.to_json() == dataclasses.replace(report, trend=None).to_json()
    assert report == dataclasses.replace(report, trend=None)


def test_a_trend_without_problems_is_a_sentence_and_the_certificate_chart():
    report = scorecard_report(trend_runs=4)
    calm = tuple(
        dataclasses.replace(p, counts={"fail": 0, "warn": 0, "info": 50, "error": 0})
        for p in report.trend
    )
    trend = section(rendered(dataclasses.replace(report, trend=calm)), "trend")
    assert "No warn or fail findings and no probe errors in the last 4 runs." in trend
    assert trend.count('<svg class="chart"') == 1 and 'id="trend-certs"' in trend

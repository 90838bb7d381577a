"""The HTML scorecard's pure pieces (endpoint matrix, message alignment, SPF tree, trend) and
the sections the HTML report draws from them, on reports built in code (tests/scorecard_sample.py,
evidence copied from real lab runs). The page in Chromium: tests/lab/test_lab_html_report.py.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re

from scorecard_sample import FAIL, HOSTILE, INFO, STARTED, TREE, WARN, f, scorecard_report

from probes import cli
from probes.codes import Fix
from probes.history import HistoryDB
from probes.model import ErrorReason, Outcome, ProbeResult, Severity, Target
from probes.report import html_report
from probes.report.causes import Cause
from probes.report.endpoint_matrix import endpoint_rows, split_subject
from probes.report.html_charts import ticks
from probes.report.html_scorecard import breakable
from probes.report.message_alignment import alignment_of, message_alignments
from probes.report.posture import areas
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


PROBLEMS_FIRST = ("posture", "fail", "warn", "incomplete", "endpoints", "alignment", "spf-tree")
PROBLEMS_FIRST += ("trend", "info", "probes")


def test_the_page_has_what_to_fix_after_the_posture_and_the_scorecard_after_it():
    text = rendered(scorecard_report(trend_runs=5))
    order = [text.index(f'<section id="{s}">') for s in PROBLEMS_FIRST]
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


def card(text: str, name: str) -> str:
    """The posture card of area `name` in the page."""
    start = text.index(f'<div class="area">{breakable(name)}</div>', text.index('id="posture"'))
    return text[start : text.index("</li>", start)]


def without_problems(report: RunReport) -> RunReport:
    """`report` with only its info findings, every probe completed."""
    results = tuple(
        dataclasses.replace(
            r,
            outcome=Outcome.COMPLETED,
            error=None,
            error_detail=None,
            findings=tuple(x for x in r.findings if x.severity is INFO),
        )
        for r in report.results
    )
    return dataclasses.replace(report, results=results, new=None)


def test_a_run_without_problems_keeps_the_scorecard_after_the_posture():
    text = rendered(without_problems(scorecard_report(trend_runs=5)))
    ids = ("posture", "endpoints", "alignment", "spf-tree", "trend", "fail", "warn", "info")
    order = [text.index(f'<section id="{s}">') for s in (*ids, "probes")]
    assert order == sorted(order)
    assert 'id="incomplete"' not in text
    assert "nothing to fix" in text
    assert "<h2>Fail: 0 problems (0 findings)</h2>" in text


def test_the_counts_say_what_they_count():
    text = rendered(scorecard_report())
    # the verdict counts problems (causes), as the text report does; its words lead to them
    assert '<a href="#fail">5 problems to fix</a> (4 fail, 1 warn)' in text
    # the cards count findings and say so
    assert '<div class="card fail"><b>4</b>fail findings</div>' in text
    assert '<div class="card warn"><b>2</b>warn findings</div>' in text
    assert "<b>1</b>probes in error</div>" in text
    # the sections count problems as the verdict does, and findings as the cards do
    assert "<h2>Fail: 4 problems (4 findings)</h2>" in section(text, "fail")
    assert "<h2>Warn: 1 problem (2 findings)</h2>" in section(text, "warn")
    assert "findings (" not in text.replace("Info findings (", "")


def test_every_link_in_the_page_leads_to_an_element_of_the_page():
    report = scorecard_report('"><img src=x onerror=alert(1)>', trend_runs=3)
    text = rendered(report)
    hrefs = re.findall(r'href="#([^"]*)"', text)
    ids = set(re.findall(r' id="([^"]*)"', text))
    assert hrefs and set(hrefs) <= ids
    assert len(re.findall(r'<article class="finding cause [^"]*" id="cause-', text)) == 5
    # every warn/fail code of the grid and of the matrix's status column is a link
    posture = section(text, "posture")
    for area in areas(report):
        for code in area.codes:
            assert re.search(rf'<a class="code" href="#cause-[a-z0-9-]+">{code}</a>', posture)
    # (a hostile name is no host:port: on a sane one) each code leads to its own endpoint's cause
    text = rendered(scorecard_report())
    mx = card(text, "mx.example.test:25")
    assert '<a class="code" href="#cause-cert-expired-1">CERT_EXPIRED</a>' in mx
    assert '<a class="code" href="#cause-smtp-open-relay-1">SMTP_OPEN_RELAY</a>' in mx
    cause = text[text.index('id="cause-cert-expired-1"') :]
    assert cause.index("CERT_EXPIRED") < cause.index("</article>")
    endpoints = section(text, "endpoints")
    assert '<a href="#cause-tls-legacy-protocol-1">TLS_LEGACY_PROTOCOL</a>' in endpoints
    assert '<a href="#cause-auth-failed-1">AUTH_FAILED</a>' in endpoints


def test_cause_ids_come_from_the_code_and_its_place_and_are_safe_in_html():
    causes = [
        Cause("CERT_EXPIRED", FAIL, ["x"], []),
        Cause('X"><script>', WARN, ["y"], []),
        Cause("CERT_EXPIRED", FAIL, ["z"], []),
    ]
    assert html_report.cause_ids(causes) == [
        "cause-cert-expired-1",
        "cause-x-script-1",
        "cause-cert-expired-2",
    ]
    assert html_report.code_link('X"><b>', "cause-x-b-1") == (
        '<a class="code" href="#cause-x-b-1">X&quot;&gt;&lt;b&gt;</a>'
    )
    report = dataclasses.replace(
        scorecard_report(),
        results=(ProbeResult("x.y", Outcome.COMPLETED, (f("x.y", 'X"><b>', WARN, "s:25"),)),),
        new=None,
    )
    text = rendered(report)
    assert '<a class="code" href="#cause-x-b-1">X&quot;&gt;&lt;b&gt;</a>' in section(
        text, "posture"
    )
    assert 'id="cause-x-b-1"' in section(text, "warn") and "<b>" not in text.split("<style>")[0]


def test_a_code_another_problem_explains_links_to_that_problem():
    verify = "STARTTLS: certificate verify failed: certificate has expired"
    report = RunReport(
        "20261205T020000Z-abc123",
        Target("example.test"),
        STARTED,
        1.0,
        (
            ProbeResult(
                "smtp.mx",
                Outcome.COMPLETED,
                (f("smtp.mx", "CERT_EXPIRED", FAIL, "mx.example.test:25", days_left="-3"),),
            ),
            ProbeResult(
                "smtp.swaks",
                Outcome.COMPLETED,
                (f("smtp.swaks", "SWAKS_STAGE_FAILED", FAIL, "mx.example.test:587", verify),),
            ),
            ProbeResult("message.roundtrip", Outcome.ERROR, (), ErrorReason.TLS, verify),
            ProbeResult("dns.dkim", Outcome.ERROR, (), ErrorReason.TIMEOUT, "no answer"),
        ),
    )
    text = rendered(report)
    link = '<a class="code" href="#cause-cert-expired-1">SWAKS_STAGE_FAILED</a>'
    assert link in card(text, "mx.example.test:587")
    assert '<a href="#cause-cert-expired-1">SWAKS_STAGE_FAILED</a>' in section(text, "endpoints")
    assert "explains: SWAKS_STAGE_FAILED mx.example.test:587, message.roundtrip ended ERROR" in (
        section(text, "fail")
    )
    # a probe a problem explains is shown with it; only the others are listed on their own
    incomplete = section(text, "incomplete")
    assert "did not run to completion (1)" in incomplete
    assert "<b>dns.dkim</b>" in incomplete and "message.roundtrip" not in incomplete


def test_a_new_problem_of_one_finding_marks_its_finding_new_too():
    text = rendered(scorecard_report())
    fail = section(text, "fail")
    start = fail.index('id="cause-spf-permissive-all-1"')
    cause = fail[start : fail.index("</article>\n</article>", start)]
    assert cause.count('<span class="badge new">new</span>') == 2  # the problem and its finding
    assert re.search(
        r'<article class="finding fail new" id="finding-\d+">\n<header>'
        r'<span class="badge fail">fail</span><span class="badge new">new</span>',
        cause,
    )
    # the findings of problems that are not new are not marked
    assert text.count('<span class="badge new">new</span>') == 2


def test_posture_cards_say_what_a_passing_or_warning_area_showed():
    text = rendered(scorecard_report())
    assert "TLS 1.2/1.3, cert 12 days, login ok" in card(text, "mx.example.test:465")
    assert '<span class="seen">closed</span>' in card(text, "outbound.example.test:465")
    assert "DMARC pass (aligned: DKIM)" in card(text, "test message")
    assert "9/10 lookups" not in card(text, "SPF")  # failing: its problems, as the text says
    dmarc = (
        f(
            "dns.dmarc",
            "DMARC_POLICY",
            INFO,
            "example.test",
            applies="p=none",
            rua="mailto:agg@example.test",
        ),
        f("dns.dmarc", "DMARC_POLICY_NONE", WARN, "example.test"),
    )
    report = dataclasses.replace(
        scorecard_report(),
        results=(ProbeResult("dns.dmarc", Outcome.COMPLETED, dmarc),),
        new=None,
    )
    warned = card(rendered(report), "DMARC")
    assert '<span class="seen">p=none, reports to agg@example.test</span>' in warned
    assert '<a class="code" href="#cause-dmarc-policy-none-1">DMARC_POLICY_NONE</a>' in warned


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

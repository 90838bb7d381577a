"""Drift (probes.drift) on real SQLite histories: identity and stable evidence, not-checked
probes, different targets, runs keyed by what was run, new findings, still failing; and the
schema 1 -> 2 upgrade."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from probes.drift import diff, mark_new, new_findings, new_positions, still_failing
from probes.history import APPLICATION_ID, SCHEMA_VERSION, HistoryDB, HistoryError
from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target
from probes.report import text_report
from probes.report.run import RunReport

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def f(code, severity="info", subject=None, probe="dns.dmarc", message=None, volatile=(), **ev):
    return Finding(
        probe_id=probe,
        code=code,
        severity=Severity(severity),
        message=message or f"{code} message",
        evidence=ev,
        subject=subject,
        volatile=frozenset(volatile),
    )


def rep(run_id, findings=(), day=0, domain="example.test", outcomes=None):
    """A report; `outcomes` {probe: Outcome} (default: every probe of the findings COMPLETED)."""
    by_probe: dict[str, list[Finding]] = {}
    for x in findings:
        by_probe.setdefault(x.probe_id, []).append(x)
    outcomes = outcomes or {}
    probes = sorted(set(by_probe) | set(outcomes))
    results = []
    for p in probes:
        outcome = outcomes.get(p, Outcome.COMPLETED)
        error = ErrorReason.TIMEOUT if outcome is Outcome.ERROR else None
        results.append(ProbeResult(p, outcome, tuple(by_probe.get(p, ())), error))
    return RunReport(
        run_id=run_id,
        target=Target(domain=domain),
        started=T0 + timedelta(days=day),
        duration_s=1.0,
        results=tuple(results),
    )


@pytest.fixture
def db(tmp_path):
    with HistoryDB(tmp_path / "h.sqlite") as opened:
        yield opened


def test_volatile_evidence_and_message_text_never_count_as_a_change(db):
    db.add(
        rep(
            "a",
            [
                f(
                    "MESSAGE_DELIVERED",
                    probe="message.rt",
                    message="arrived after 0.38 s",
                    volatile={"seconds"},
                    seconds="0.38",
                    via="submission",
                ),
                f(
                    "CERT_SEEN",
                    probe="tls.cert",
                    subject="mx:25",
                    volatile={"days_left"},
                    days_left="80",
                    fingerprint="ab",
                ),
            ],
        )
    )
    db.add(
        rep(
            "b",
            [
                f(
                    "MESSAGE_DELIVERED",
                    probe="message.rt",
                    message="arrived after 0.26 s",
                    volatile={"seconds"},
                    seconds="0.26",
                    via="submission",
                ),
                f(
                    "CERT_SEEN",
                    probe="tls.cert",
                    subject="mx:25",
                    volatile={"days_left"},
                    days_left="79",
                    fingerprint="ab",
                ),
            ],
            day=1,
        )
    )
    d = diff(db, "a", "b")
    assert (d.new, d.resolved, d.changed, d.not_checked) == ([], [], [], [])
    assert not d.drift


def test_a_change_of_stable_evidence_is_changed_with_old_and_new_values(db):
    db.add(rep("a", [f("DMARC_POLICY", p="reject", sp="reject", rua="mailto:a@x")]))
    db.add(rep("b", [f("DMARC_POLICY", p="quarantine", sp="reject", ruf="mailto:f@x")], day=1))
    d = diff(db, "a", "b")
    (c,) = d.changed
    assert dict(c.evidence) == {
        "p": ("reject", "quarantine"),
        "rua": ("mailto:a@x", None),
        "ruf": (None, "mailto:f@x"),
    }
    assert d.drift and d.new == [] and d.resolved == []
    doc = d.to_json()
    assert doc["changed"][0]["evidence"]["p"] == {"before": "reject", "after": "quarantine"}
    # a change of evidence is "worse" for --fail-on: the finding as it is now is new
    assert [x.code for x in d.worsened()] == ["DMARC_POLICY"]


def test_a_volatile_key_marked_on_one_side_only_is_still_volatile(db):
    # a schema-1-era finding without volatile marks against one with them
    db.add(rep("a", [f("CERT_SEEN", days_left="80", fingerprint="ab")]))
    db.add(rep("b", [f("CERT_SEEN", volatile={"days_left"}, days_left="79", fingerprint="ab")], 1))
    assert diff(db, "a", "b").changed == []


def test_probes_that_did_not_complete_are_not_checked_never_resolved(db):
    db.add(
        rep(
            "a",
            [
                f("SPF_SOFTFAIL", "warn", probe="dns.spf"),
                f("MX_ONE_HOST", "warn", probe="dns.mx"),
                f("PTR_MISMATCH", "warn", probe="dns.ptr"),
            ],
        )
    )
    # b: dns.spf errored, dns.mx did not run at all, dns.ptr completed without findings,
    # smtp.tls errored with a finding
    db.add(
        rep(
            "b",
            [f("TLS_GONE", "warn", probe="smtp.tls")],
            day=1,
            outcomes={
                "dns.spf": Outcome.ERROR,
                "dns.ptr": Outcome.COMPLETED,
                "smtp.tls": Outcome.ERROR,
            },
        )
    )
    d = diff(db, "a", "b")
    assert [e.finding.code for e in d.resolved] == ["PTR_MISMATCH"]
    assert d.new == []
    nc = {
        (n.probe_id, n.before, n.after, n.findings_before, n.findings_after) for n in d.not_checked
    }
    assert nc == {
        ("dns.spf", "COMPLETED", "ERROR (TIMEOUT)", 1, 0),
        ("dns.mx", "COMPLETED", "not run", 1, 0),
        ("smtp.tls", "not run", "ERROR (TIMEOUT)", 0, 1),
    }
    assert d.to_json()["not_checked"][0]["domain"] == "example.test"


def test_repeated_identities_pair_equal_findings_first(db):
    db.add(rep("a", [f("TXT", subject=None, v="1"), f("TXT", v="2")]))
    db.add(rep("b", [f("TXT", v="2"), f("TXT", v="3"), f("TXT", v="4")], day=1))
    d = diff(db, "a", "b")
    assert [dict(c.evidence) for c in d.changed] == [{"v": ("1", "3")}]
    assert [e.finding.evidence["v"] for e in d.new] == ["4"]


def test_runs_of_different_targets_are_refused_unless_allowed(db):
    db.add(rep("a", [f("DMARC_POLICY", p="reject")], domain="one.test"))
    db.add(rep("b", [f("DMARC_POLICY", p="none")], domain="two.test", day=1))
    with pytest.raises(HistoryError) as info:
        diff(db, "a", "b")
    assert "one.test" in str(info.value) and "two.test" in str(info.value)
    d = diff(db, "a", "b", allow_different_targets=True)
    (c,) = d.changed  # matched without the domain
    assert dict(c.evidence) == {"p": ("reject", "none")}
    assert c.domain == "two.test"


def test_runs_are_keyed_by_what_was_run(db):
    db.add(rep("s1", [f("A")]), what="scenario:nightly")
    db.add(rep("s2", [f("B")], day=1), what="scenario:other")
    db.add(rep("p1", [f("C")], day=2), what="probes:*")
    today = rep("s3", [f("A"), f("D", "warn")], day=3)
    db.add(today, what="scenario:nightly")
    d = diff(db)
    assert (d.run_a, d.run_b) == ("s1", "s3")
    assert [e.finding.code for e in d.new] == ["D"]
    assert [x.code for x in new_findings(db, today, Severity.WARN, "scenario:nightly")] == ["D"]
    (run,) = [r for r in db.runs() if r.run_id == "s3"]
    assert run.what == "scenario:nightly" and run.to_json()["what"] == "scenario:nightly"


def test_runs_of_schema_1_are_the_baseline_until_a_keyed_run_exists(db):
    db.add(rep("old", [f("A", "warn")]))  # stored without what, as schema 1 did
    first = rep("k1", [f("A", "warn"), f("B", "warn")], day=1)
    assert [x.code for x in new_findings(db, first, Severity.WARN, "probes:*")] == ["B"]
    db.add(first, what="probes:*")
    second = rep("k2", [f("B", "warn"), f("C", "warn")], day=2)
    assert [x.code for x in new_findings(db, second, Severity.WARN, "probes:*")] == ["C"]


def test_a_probe_that_errored_last_time_is_compared_with_its_last_completed_run(db):
    db.add(rep("a", [f("SPF_SOFTFAIL", "warn", probe="dns.spf")]), what="probes:*")
    db.add(rep("b", [], day=1, outcomes={"dns.spf": Outcome.ERROR}), what="probes:*")
    today = rep(
        "c", [f("SPF_SOFTFAIL", "warn", probe="dns.spf"), f("X", "fail", probe="dns.spf")], 2
    )
    assert [x.code for x in new_findings(db, today, Severity.WARN, "probes:*")] == ["X"]
    # a probe that never completed before: its findings are new
    brand_new = rep("d", [f("Y", "warn", probe="dns.new")], day=3)
    assert [x.code for x in new_findings(db, brand_new, Severity.WARN, "probes:*")] == ["Y"]


def test_worse_severity_or_other_evidence_is_new_better_is_not(db):
    db.add(rep("a", [f("K", "warn", subject="s1", bits="1024"), f("L", "fail"), f("M", "warn")]))
    today = rep("b", [f("K", "warn", subject="s1", bits="512"), f("L", "warn"), f("M", "fail")], 1)
    assert sorted(x.code for x in new_findings(db, today, Severity.WARN)) == ["K", "M"]
    assert sorted(x.code for x in new_findings(db, today, Severity.FAIL)) == ["M"]


def test_mark_new_flags_findings_in_the_report_and_its_json(db):
    first = rep("a", [f("A", "warn"), f("B")])
    assert mark_new(db, first) is first  # nothing to compare with: not marked
    assert "new" not in json.dumps(first.to_json())
    db.add(first)
    today = mark_new(db, rep("b", [f("A", "warn"), f("B", p="x"), f("C", "fail")], day=1))
    assert new_positions(db, today) is not None
    flags = {x["code"]: x["new"] for r in today.to_json()["results"] for x in r["findings"]}
    assert flags == {"A": False, "B": True, "C": True}
    assert [x.code for r in today.results for x in r.findings if today.is_new(x)] == ["B", "C"]


def test_mark_new_lists_what_the_previous_run_had_and_this_one_no_longer_has(db):
    smtp = {"smtp.mx": Outcome.COMPLETED}
    before = [f("A", "warn"), f("GONE", "fail", "x"), f("T", "warn", "mx:25", probe="smtp.mx")]
    db.add(rep("a", before, outcomes=smtp))
    # dns.dmarc completed without GONE: resolved; smtp.mx errored: its T is not resolved
    today = mark_new(db, rep("b", [f("A", "warn")], 1, outcomes={"smtp.mx": Outcome.ERROR}))
    assert [(x.code, x.subject) for x in today.resolved] == [("GONE", "x")]
    assert [x["code"] for x in today.to_json()["resolved"]] == ["GONE"]
    again = RunReport.from_json(json.loads(json.dumps(today.to_json())))
    assert again.resolved == today.resolved and again.to_json() == today.to_json()
    out = io.StringIO()
    text_report.render(today, out)
    assert "since the previous comparable run: 0 new, 0 changed, 1 resolved (fixed: GONE x)" in (
        out.getvalue()
    )


def test_a_finding_the_previous_run_had_otherwise_is_changed_not_new(db):
    db.add(rep("a", [f("STATE", p="reject"), f("A", "warn")]))
    today = mark_new(db, rep("b", [f("STATE", p="none"), f("A", "warn"), f("B", "fail")], 1))
    state, a, b = today.results[0].findings
    assert [today.newness(x) for x in (state, a, b)] == ["changed", "", "new"]
    flags = {x["code"]: x.get("changed", False) for x in today.to_json()["results"][0]["findings"]}
    assert flags == {"STATE": True, "A": False, "B": False}
    again = RunReport.from_json(json.loads(json.dumps(today.to_json())))
    assert again.changed == today.changed and again.to_json() == today.to_json()
    out = io.StringIO()
    text_report.render(today, out, verbose=True)
    assert "since the previous comparable run: 1 new, 1 changed, 0 resolved" in out.getvalue()
    assert "FAIL  NEW B  " in out.getvalue() and "  CHANGED STATE [dns.dmarc]" in out.getvalue()


def test_still_failing_names_the_first_run_of_the_streak(db):
    def night(run_id, day, fp="ab", error=True):
        outcomes = {"smtp.mx": Outcome.ERROR} if error else {}
        return rep(run_id, [f("CERT_BAD", "fail", probe="tls.cert", fp=fp)], day, outcomes=outcomes)

    db.add(night("n0", 0, error=False), status=1, what="probes:*")
    db.add(night("n1", 1), status=1, what="probes:*")
    db.add(night("n2", 2), status=1, what="probes:*")
    today = night("n3", 3)
    line = still_failing(db, today, 1, Severity.FAIL, "probes:*")
    assert line == (
        "mailprobe: still failing since run n1 (2026-11-21): 1 finding unchanged (CERT_BAD);"
        " probe errors unchanged (smtp.mx TIMEOUT)"
    )
    other = night("n4", 3, fp="cd")  # the finding's evidence changed: not the same failure
    assert still_failing(db, other, 1, Severity.FAIL, "probes:*") is None
    assert still_failing(db, today, 0, Severity.FAIL, "probes:*") is None


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, batch_id TEXT, started TEXT NOT NULL,
    duration_s REAL NOT NULL, target_domain TEXT NOT NULL, target_json TEXT NOT NULL,
    exit_status INTEGER NOT NULL, n_fail INTEGER NOT NULL, n_warn INTEGER NOT NULL,
    n_info INTEGER NOT NULL, n_error INTEGER NOT NULL);
CREATE INDEX runs_by_domain ON runs (target_domain, started);
CREATE INDEX runs_by_batch ON runs (batch_id);
CREATE TABLE results (run_id TEXT NOT NULL REFERENCES runs (run_id), probe_id TEXT NOT NULL,
    outcome TEXT NOT NULL, error TEXT, duration_s REAL NOT NULL);
CREATE INDEX results_by_run ON results (run_id);
CREATE TABLE findings (run_id TEXT NOT NULL REFERENCES runs (run_id), probe_id TEXT NOT NULL,
    code TEXT NOT NULL, severity TEXT NOT NULL, subject TEXT, message TEXT NOT NULL,
    evidence_json TEXT NOT NULL, reproduce TEXT);
CREATE INDEX findings_by_run ON findings (run_id, probe_id, code, subject);
"""


def make_v1(path):
    """A history file as schema 1 wrote it, with one run."""
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("PRAGMA user_version = 1")
    con.executescript(V1_SCHEMA)
    con.execute("INSERT INTO meta VALUES ('application', 'mailprobe'), ('schema', '1')")
    con.execute(
        "INSERT INTO runs VALUES ('old', NULL, '2026-11-19T02:00:00Z', 1.0, 'example.test',"
        " '{}', 1, 1, 0, 0, 0)"
    )
    con.execute("INSERT INTO results VALUES ('old', 'dns.dmarc', 'COMPLETED', NULL, 0.1)")
    con.execute(
        "INSERT INTO findings VALUES ('old', 'dns.dmarc', 'DMARC_POLICY', 'fail', NULL, 'm',"
        ' \'{"p":"reject","t":"y"}\', NULL)'
    )
    con.commit()
    con.close()


def test_a_schema_1_history_is_upgraded_in_place_and_keeps_working(tmp_path):
    path = tmp_path / "history.sqlite"
    make_v1(path)
    with HistoryDB(path) as db:
        (run,) = db.runs()
        assert (run.run_id, run.what) == ("old", None)
        db.add(
            rep("new", [f("DMARC_POLICY", "fail", t="y", p="quarantine")], day=1), what="probes:*"
        )
        d = diff(db)
        assert (d.run_a, d.run_b) == ("old", "new")
        (c,) = d.changed
        assert dict(c.evidence) == {"p": ("reject", "quarantine")}  # key order does not matter
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert dict(con.execute("SELECT key, value FROM meta"))["schema"] == str(SCHEMA_VERSION)
    con.close()


def test_runs_with_equal_digests_are_skipped_and_the_rest_compared(db):
    def night(n, batch, changed=()):
        return [
            rep(
                f"{batch}-{d}",
                [
                    f(
                        "DMARC_POLICY",
                        p="none" if d in changed else "reject",
                        volatile={"t"},
                        t=str(n),
                    )
                ],
                day=n,
                domain=f"d{d}.test",
                outcomes={"smtp.mx": Outcome.ERROR if n else Outcome.COMPLETED} if d == 3 else None,
            )
            for d in range(5)
        ]

    db.add_many(night(0, "n0"), batch_id="n0")
    db.add_many(night(1, "n1", changed={1}), batch_id="n1")
    digests = db.digests("n0"), db.digests("n1")
    assert digests[0]["d0.test"][1] == digests[1]["d0.test"][1]  # volatile t differs: same
    assert digests[0]["d1.test"][1] != digests[1]["d1.test"][1]
    assert digests[1]["d3.test"][1] is None  # a probe did not complete: always compared
    d = diff(db, "n0", "n1")
    assert [(c.domain, dict(c.evidence)) for c in d.changed] == [
        ("d1.test", {"p": ("reject", "none")})
    ]
    assert [(n.domain, n.probe_id, n.before, n.after) for n in d.not_checked] == [
        ("d3.test", "smtp.mx", "COMPLETED", "ERROR (TIMEOUT)")
    ]


def test_an_upgrade_that_fails_half_way_leaves_schema_1_whole(tmp_path, monkeypatch):
    import probes.history as history

    path = tmp_path / "history.sqlite"
    make_v1(path)
    failing = (*history._MIGRATE_1_TO_2[:3], "ALTER TABLE nowhere ADD COLUMN x")
    monkeypatch.setattr(history, "_MIGRATE_1_TO_2", failing)
    with pytest.raises(HistoryError, match="cannot upgrade schema 1 to 2"):
        HistoryDB(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in con.execute("PRAGMA table_info(runs)")]
    assert "what" not in columns and "digest" not in columns  # rolled back, not half-added
    con.close()
    monkeypatch.undo()
    with HistoryDB(path) as db:
        assert [r.run_id for r in db.runs()] == ["old"]

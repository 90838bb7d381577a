"""Operator thresholds (probes.model.Thresholds): the range syntax, the one validation, and
the probes that pick severities with them (certificate days, SPF lookup count), set on the
command line or in a scenario's `target:`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import textwrap

import pytest
from test_dns_dkim import record as dkim_record
from test_dns_spf import run as spf_run
from test_tls_findings import BASE, NOW, OK, PROBE, REPRO, SUBJECT

from probes import cli
from probes.checks.dns_dkim import DnsDkim
from probes.model import Severity, Target, Thresholds
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.parse.nagios_range import RangeError, parse_range
from probes.parse.selector_date import selector_date
from probes.probekit.tls_findings import EXPIRY_WARN_DAYS, certificate_findings
from probes.runner import Redactor, run_one
from probes.scenario import ScenarioError, load_text
from probes.scenario_run import build_target
from probes.validate import checked_target

SPF = {("example.com", "TXT"): ["v=spf1 a mx -all"], ("example.com", "A"): ["192.0.2.1"]}


# ----- the range syntax (monitoring-plugins development guidelines) ---------------------------
@pytest.mark.parametrize(
    ("text", "alerting", "quiet"),
    [
        ("10", [-1, 10.5, 11], [0, 5, 10]),
        ("10:", [9, -3], [10, 11, 1000]),
        ("~:10", [11], [-1000, 0, 10]),
        ("10:20", [9, 21], [10, 15, 20]),
        ("@10:20", [10, 15, 20], [9, 21]),
        (":5", [-1, 6], [0, 5]),
        ("@~:7", [-10, 7], [8]),
        ("2.5:3.5", [2.4], [3]),
    ],
)
def test_a_range_alerts_outside_or_with_at_inside(text, alerting, quiet):
    rng = parse_range(text)
    assert [v for v in alerting if not rng.alerts(v)] == []
    assert [v for v in quiet if rng.alerts(v)] == []
    assert rng.text == text


def test_range_ends_and_the_plain_lower_bound():
    assert parse_range("21:").lower_only == 21 and math.isinf(parse_range("21:").end)
    assert parse_range("~:5").start == -math.inf
    assert parse_range("@21:").lower_only is None and parse_range("5").lower_only is None


@pytest.mark.parametrize("text", ["", "abc", "10:5", "1:2:3", "@", "1e3", "--5", "~"])
def test_not_a_range_is_refused_with_what_is_wrong(text):
    with pytest.raises(RangeError):
        parse_range(text)


# ----- the one validation ----------------------------------------------------------------------
def problems(**thresholds):
    return checked_target(Target("example.com", thresholds=Thresholds(**thresholds)))[1]


def test_the_default_thresholds_are_todays_behaviour():
    assert problems() == []
    assert Thresholds().cert_days_warn == f"{EXPIRY_WARN_DAYS}:"
    assert "thresholds" not in Target("example.com").to_json()  # the schema is unchanged


def test_bad_thresholds_are_named_by_field():
    assert [f for f, _ in problems(cert_days_crit="7:3")] == ["thresholds.cert_days_crit"]
    assert [f for f, _ in problems(spf_lookups_warn="x")] == ["thresholds.spf_lookups_warn"]
    [(field, problem)] = problems(cert_days_warn="21")
    assert field == "thresholds.cert_days_warn"
    assert "MORE than 21 days" in problem and "'21:'" in problem


def test_set_thresholds_travel_in_the_report_target():
    target = Target("example.com", thresholds=Thresholds(cert_days_crit="7:"))
    assert target.to_json()["thresholds"]["cert_days_crit"] == "7:"


# ----- certificate days ------------------------------------------------------------------------
def judge_days(days: int, thresholds: Thresholds | None = None):
    info = dataclasses.replace(BASE, not_after=NOW + dt.timedelta(days=days, hours=1))
    found = certificate_findings(
        PROBE,
        info=info,
        verify=OK,
        hostname="mx.example.com",
        now=NOW,
        subject=SUBJECT,
        reproduce=REPRO,
        thresholds=thresholds,
    )
    return {f.code: f for f in found}


def test_cert_days_default_warns_below_21_as_before():
    soon = judge_days(20)["CERT_EXPIRING_SOON"]
    assert soon.severity is Severity.WARN
    assert soon.evidence["warn_below_days"] == "21"
    assert "warn_range" not in soon.evidence and "crit_range" not in soon.evidence
    assert set(judge_days(21)) == {"CERT_OK"}


def test_cert_days_critical_range_makes_expiring_soon_a_fail():
    limits = Thresholds(cert_days_warn="30:", cert_days_crit="7:")
    assert judge_days(29, limits)["CERT_EXPIRING_SOON"].severity is Severity.WARN
    crit = judge_days(6, limits)["CERT_EXPIRING_SOON"]
    assert crit.severity is Severity.FAIL
    assert crit.evidence["crit_range"] == "7:" and crit.evidence["warn_range"] == "30:"
    assert crit.evidence["warn_below_days"] == "30"
    assert set(judge_days(30, limits)) == {"CERT_OK"}
    assert judge_days(-2, limits)["CERT_EXPIRED"].severity is Severity.FAIL


def test_cert_days_inside_range_form():
    limits = Thresholds(cert_days_warn="@~:45")
    soon = judge_days(45, limits)["CERT_EXPIRING_SOON"]
    assert soon.severity is Severity.WARN and "warn_below_days" not in soon.evidence
    assert set(judge_days(46, limits)) == {"CERT_OK"}


# ----- SPF lookup count ------------------------------------------------------------------------
def spf_count_finding(thresholds: Thresholds):
    result, _ = spf_run(SPF, thresholds=thresholds)
    [finding] = [f for f in result.findings if f.code == "SPF_LOOKUP_COUNT"]
    return finding


def test_spf_lookups_default_is_info_and_thresholds_raise_it():
    assert spf_count_finding(Thresholds()).severity is Severity.INFO  # 2 lookups
    warn = spf_count_finding(Thresholds(spf_lookups_warn="1"))
    assert warn.severity is Severity.WARN and warn.evidence["warn_range"] == "1"
    crit = spf_count_finding(Thresholds(spf_lookups_warn="0", spf_lookups_crit="~:1"))
    assert crit.severity is Severity.FAIL and crit.evidence["crit_range"] == "~:1"
    assert spf_count_finding(Thresholds(spf_lookups_warn="2")).severity is Severity.INFO


# ----- the command line ------------------------------------------------------------------------
def test_cli_thresholds_reach_the_target():
    args = cli.build_parser().parse_args(
        ["check", "example.com", "--cert-days-warn", "30:", "--cert-days-crit", "7:",
         "--spf-lookups-warn", "8", "--dkim-key-age-crit", "~:730"]
    )  # fmt: skip
    target = cli._target_from_args(args, "example.com")
    assert target.thresholds == Thresholds("30:", "7:", "8", None, None, "~:730")


def test_cli_bad_threshold_is_a_usage_error_naming_the_option(capsys, tmp_path):
    status = cli.main(["check", "example.com", "--cert-days-crit", "7", "--output", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("mailprobe: error: --cert-days-crit: '7' would alert")


# ----- scenarios -------------------------------------------------------------------------------
def load(text: str):
    return load_text(textwrap.dedent(text), "s.yaml", ["dns.spf", "smtp.mx"])


def test_scenario_thresholds_reach_the_target():
    [s] = load(
        """
        name: t
        target:
          domain: example.com
          thresholds: {cert_days_warn: "30:", cert_days_crit: "7:", spf_lookups_crit: "9"}
        """
    )
    assert build_target(s).thresholds == Thresholds("30:", "7:", None, "9")


def test_bad_dkim_age_threshold_names_its_option(capsys):
    assert cli.main(["check", "example.com", "--dkim-key-age-warn", "365:x"]) == 2
    assert "--dkim-key-age-warn: '365:x': 'x' is not a number" in capsys.readouterr().err
    assert cli.main(["check", "example.com", "--cert-days-warn", ""]) == 2
    assert "--cert-days-warn: empty" in capsys.readouterr().err


def test_scenario_bad_threshold_names_file_line_and_field():
    with pytest.raises(ScenarioError) as excinfo:
        load(
            """
            name: t
            target:
              domain: example.com
              thresholds:
                cert_days_warn: "21"
            """
        )
    assert str(excinfo.value).startswith(
        "s.yaml:6: field `target.thresholds.cert_days_warn`: '21' would alert"
    )
    with pytest.raises(ScenarioError, match="expected a string"):
        load("name: t\ntarget:\n  domain: example.com\n  thresholds: {spf_lookups_warn: 8}\n")


# ----- DKIM key age (where the selector name dates the key) ----------------------------------
@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("s20240115", (dt.date(2024, 1, 15), "20240115")),
        ("2024-03", (dt.date(2024, 3, 1), "2024-03")),
        ("mail-2023-11-30", (dt.date(2023, 11, 30), "2023-11-30")),
        ("k202405", (dt.date(2024, 5, 1), "202405")),
        ("s2023-01-x-20240201", (dt.date(2024, 2, 1), "20240201")),  # the last date
    ],
)
def test_a_date_in_the_selector_name(selector, expected):
    assert selector_date(selector) == expected


@pytest.mark.parametrize(
    "selector", ["mail", "k2024", "s1", "selector1", "s120240101", "2024-13", "s20240231"]
)
def test_no_date_in_the_selector_name(selector):
    assert selector_date(selector) is None


def dkim_age(selector: str, key, thresholds: Thresholds | None = None):
    records = {(f"{selector}._domainkey.example.com", "TXT"): [dkim_record(key)]}
    target = Target("example.com", selectors=(selector,), thresholds=thresholds or Thresholds())
    net = Net(dns_client=DnsClient(StaticBackend(records)))
    result = run_one(DnsDkim(), target, net, Redactor())
    return [f for f in result.findings if f.code == "DKIM_KEY_AGE"]


def test_dkim_key_age_from_a_dated_selector(ed_key):
    [age] = dkim_age("s20200101", ed_key)
    days = (dt.datetime.now(dt.UTC).date() - dt.date(2020, 1, 1)).days
    assert age.severity is Severity.INFO and age.subject == "s20200101"
    assert age.evidence["age_days"] == str(days) and age.evidence["key_date"] == "2020-01-01"
    assert age.volatile == frozenset({"age_days"})
    [warn] = dkim_age("s20200101", ed_key, Thresholds(dkim_key_age_warn="~:365"))
    assert warn.severity is Severity.WARN and warn.evidence["warn_range"] == "~:365"
    [crit] = dkim_age(
        "s20200101", ed_key, Thresholds(dkim_key_age_warn="~:365", dkim_key_age_crit="~:730")
    )
    assert crit.severity is Severity.FAIL
    assert dkim_age("mail", ed_key, Thresholds(dkim_key_age_warn="~:365")) == []
    future = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=40)).strftime("%Y%m%d")
    assert dkim_age(f"s{future}", ed_key) == []  # a date to come says nothing about the key

"""The text report for people: posture first, one entry per root cause, info hidden unless
verbose, every line within the width; and the pieces it stands on (probes.report.posture,
probes.report.causes, probes.report.wrap)."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import UTC, datetime

import pytest

from probes.codes import Code, Fix
from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target
from probes.report.causes import group
from probes.report.posture import Status, areas
from probes.report.run import RunReport
from probes.report.text_report import render
from probes.report.wrap import wrap, wrap_command

TLS = {"TLS_LEGACY_PROTOCOL", "CERT_EXPIRED", "CERT_OK", "SWAKS_STAGE_FAILED"}
DECL = {
    "CERT_EXPIRED": Code(
        "CERT_EXPIRED",
        "expired",
        Severity.FAIL,
        Fix("Renew the certificate.", {"postfix": "smtpd_tls_chain_files = /etc/ssl/mx.pem"}),
    ),
    "MTA_STS_MISSING": Code("MTA_STS_MISSING", "none", Severity.INFO, absent=True),
}
ENDPOINTS = [f"mx.example.test:{p}" for p in (25, 465, 587)] + [
    f"mailbox.example.test:{p}" for p in (110, 143, 993, 995)
]


def finding(probe, code, severity, message, subject=None, **evidence) -> Finding:
    return Finding(probe, code, Severity(severity), message, evidence, subject=subject)


def report(*results: ProbeResult) -> RunReport:
    return RunReport(
        run_id="20261205T120000Z-abcdef",
        target=Target(domain="example.test"),
        started=datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
        duration_s=1.5,
        results=results,
    )


def result(probe, *findings, outcome=Outcome.COMPLETED, error=None, detail=None) -> ProbeResult:
    return ProbeResult(probe, outcome, tuple(findings), error=error, error_detail=detail)


def expired(subject: str, cn: str) -> Finding:
    return finding(
        "smtp.mx",
        "CERT_EXPIRED",
        "fail",
        f"{subject}: certificate expired 3 day(s) ago (2026-12-02T12:00:00Z)",
        subject,
        certificate=f"CN={cn}",
        not_after="2026-12-02T12:00:00Z",
    )


def broken_report() -> RunReport:
    """One expired certificate per host on every port, TLSv1 and TLSv1.1 everywhere, swaks and
    the message probe stopped by the certificate."""
    certs = [expired(s, s.split(":")[0]) for s in ENDPOINTS]
    legacy = [
        finding("smtp.mx", "TLS_LEGACY_PROTOCOL", "warn", f"{s} accepts {v}", s, version=v)
        for s in ENDPOINTS
        for v in ("TLSv1", "TLSv1.1")
    ]
    swaks = finding(
        "smtp.swaks",
        "SWAKS_STAGE_FAILED",
        "fail",
        "mx.example.test:587: swaks stopped at TLS: certificate verify failed",
        "mx.example.test:587",
        transcript_tail="=== Trying\n<~ 220 ready\n" + "x" * 400,
    )
    return report(
        result("smtp.mx", *certs, *legacy),
        result("smtp.swaks", swaks),
        result(
            "message.roundtrip",
            outcome=Outcome.ERROR,
            error=ErrorReason.TLS,
            detail="SSLCertVerificationError: certificate verify failed: certificate has expired",
        ),
        result("dns.mta_sts", finding("dns.mta_sts", "MTA_STS_MISSING", "info", "no record")),
    )


# ----- causes ---------------------------------------------------------------------------------
def test_one_certificate_on_many_ports_is_one_entry_per_certificate():
    causes = [c for c in group(broken_report()) if c.code == "CERT_EXPIRED"]
    assert [c.named_subjects for c in causes] == [
        ["mx.example.test:25", "mx.example.test:465", "mx.example.test:587"],
        [f"mailbox.example.test:{p}" for p in (110, 143, 993, 995)],
    ]
    assert causes[0].headline == ["certificate expired 3 day(s) ago (2026-12-02T12:00:00Z)"]


def test_versions_accepted_on_the_same_endpoints_merge_into_one_entry():
    (legacy,) = [c for c in group(broken_report()) if c.code == "TLS_LEGACY_PROTOCOL"]
    assert legacy.headline == ["accepts TLSv1", "accepts TLSv1.1"]
    assert len(legacy.subjects) == 7 and len(legacy.findings) == 14


def test_what_the_certificate_explains_is_attached_to_it_not_listed_again():
    causes = group(broken_report())
    assert "SWAKS_STAGE_FAILED" not in [c.code for c in causes]
    mx, mailbox = [c for c in causes if c.code == "CERT_EXPIRED"]
    # the message probe names no endpoint: the first certificate of the code its error quotes
    assert [c.text for c in mx.consequences] == [
        "SWAKS_STAGE_FAILED mx.example.test:587",
        "message.roundtrip ended ERROR (TLS)",
    ]
    assert mailbox.consequences == []


def test_a_failure_nothing_explains_stays_its_own_entry():
    other = finding("smtp.swaks", "SWAKS_STAGE_FAILED", "fail", "x:25: stopped at RCPT", "x:25")
    causes = group(report(result("smtp.swaks", other)))
    assert [(c.code, c.subjects) for c in causes] == [("SWAKS_STAGE_FAILED", ["x:25"])]


def test_a_subject_is_taken_out_only_where_the_message_starts_with_it():
    keys = [
        finding("dns.dkim", "DKIM_KEY_REVOKED", "warn", f"{s}._domainkey.example.test revoked", s)
        for s in ("old", "gone")
    ]
    causes = group(report(result("dns.dkim", *keys)))
    assert [c.headline for c in causes] == [
        ["old._domainkey.example.test revoked"],
        ["gone._domainkey.example.test revoked"],
    ]


def test_fail_comes_before_warn_and_new_before_old():
    warn = finding("dns.spf", "SPF_NO_ALL", "warn", "no all")
    fail_old = finding("dns.spf", "SPF_MISSING", "fail", "old fail")
    fail_new = finding("dns.dmarc", "DMARC_MISSING", "fail", "new fail")
    base = report(result("dns.spf", warn, fail_old), result("dns.dmarc", fail_new))
    marked = RunReport(**{**base.__dict__, "new": frozenset({(1, 0)})})
    assert [c.code for c in group(marked)] == ["DMARC_MISSING", "SPF_MISSING", "SPF_NO_ALL"]


# ----- posture --------------------------------------------------------------------------------
def test_posture_has_one_row_per_dns_policy_endpoint_and_the_message():
    found = areas(broken_report(), DECL)
    rows = {(a.kind.value, a.name): a.status for a in found}
    assert rows[("DNS", "MTA-STS")] is Status.ABSENT
    assert rows[("Endpoints", "mx.example.test:25")] is Status.FAIL
    assert rows[("Message", "message")] is Status.ERROR
    endpoints = [a.name for a in found if a.kind.value == "Endpoints"]
    assert endpoints == sorted(ENDPOINTS, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def test_an_area_with_something_deployed_passes_though_something_else_is_absent():
    present = finding("dns.dane", "DANE_TLSA_PRESENT", "info", "tlsa", "mx1.example.test")
    missing = finding("dns.dane", "MTA_STS_MISSING", "info", "none", "mx2.example.test")
    (dane,) = areas(report(result("dns.dane", missing, present)), DECL)
    assert (dane.name, dane.status) == ("DANE", Status.PASS)


# ----- the text report ------------------------------------------------------------------------
def text(rep: RunReport, **options) -> str:
    out = io.StringIO()
    render(rep, out, declarations=DECL, **options)
    return out.getvalue()


def clean_report() -> RunReport:
    info = [
        finding("smtp.mx", "CERT_OK", "info", f"{s}: certificate fine", s, fingerprint="ab" * 32)
        for s in ENDPOINTS
    ]
    return report(
        result("dns.mx", finding("dns.mx", "MX_PRESENT", "info", "1 MX")),
        result("dns.mta_sts", finding("dns.mta_sts", "MTA_STS_MISSING", "info", "no record")),
        result("smtp.mx", *info),
        result(
            "message.roundtrip", finding("message.roundtrip", "MESSAGE_DELIVERED", "info", "ok")
        ),
    )


def test_a_clean_run_is_short_and_hides_the_info_findings():
    out = text(clean_report()).splitlines()
    assert out[0] == "mailprobe check of example.test: PASS: nothing to fix"
    assert len(out) <= 20
    assert not any("CERT_OK" in line for line in out)
    assert out[-1] == "10 info findings not shown: -v shows them (and report.json)"
    verbose = text(clean_report(), verbose=True)
    assert verbose.count("CERT_OK [smtp.mx mx.example.test:25]") == 1
    assert "not shown" not in verbose


def test_problems_come_grouped_with_subjects_explanations_fix_and_docs():
    out = text(broken_report(), width=100)
    assert out.splitlines()[0] == (
        "mailprobe check of example.test: FAIL: 3 problems to fix (2 fail, 1 warn), "
        "1 probe ended in error"
    )
    assert out.count("CERT_EXPIRED  ") == 2 and out.count("TLS_LEGACY_PROTOCOL  ") == 1
    assert "on: mx.example.test:25, :465, :587\n" in out
    assert "explains: SWAKS_STAGE_FAILED mx.example.test:587" in out
    assert "fix: Renew the certificate." in out
    assert "Postfix:\n          smtpd_tls_chain_files = /etc/ssl/mx.pem" in out
    assert "docs: docs/codes.md#cert_expired" in out
    assert "Could not check" not in out  # the message probe's error is explained


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_no_line_is_wider_than_the_terminal(width):
    rep = broken_report()
    long = finding(
        "smtp.mx",
        "SMTP_VRFY_ENABLED",
        "warn",
        "mx.example.test:25 answers VRFY " + "and says a great deal " * 10,
        "mx.example.test:25",
        reply="250 " + "y" * 300,
    )
    rep = report(*rep.results, result("smtp.mx", long))
    for out in (text(rep, width=width), text(rep, width=width, verbose=True)):
        too_wide = [line for line in out.splitlines() if len(line) > width]
        assert too_wide == []
        assert "\r" not in out and "\n<~" not in out  # a server's line breaks shown, not obeyed


def test_the_fix_shows_the_lines_of_the_software_that_answered_there():
    decl = {
        "TLS_LEGACY_PROTOCOL": Code(
            "TLS_LEGACY_PROTOCOL",
            "legacy",
            Severity.WARN,
            Fix("Refuse TLS 1.0 and 1.1.", {"exim": "EXIM LINE", "dovecot": "DOVECOT LINE"}),
        )
    }
    greeting = {
        "mx.example.test:25": "mx.example.test ESMTP Exim 4.96",
        "mailbox.example.test:143": "mailbox Dovecot ready.",
    }
    findings = []
    for (subject, text), version in zip(greeting.items(), ("TLSv1", "TLSv1.1"), strict=True):
        findings += [
            finding("smtp.mx", "SMTP_CAPABILITIES", "info", "caps", subject, greeting=text),
            finding(
                "smtp.mx", "TLS_LEGACY_PROTOCOL", "warn", f"{subject} accepts {version}", subject
            ),
        ]
    findings.append(finding("smtp.mx", "TLS_LEGACY_PROTOCOL", "warn", "x:25 accepts SSLv3", "x:25"))
    out = io.StringIO()
    render(report(result("smtp.mx", *findings)), out, declarations=decl, width=100)
    text = out.getvalue()
    mx, box, x = text.split("\nWARN  ")[1:]
    assert "EXIM LINE" in mx and "DOVECOT LINE" not in mx
    assert "for Dovecot: mailprobe probes --explain TLS_LEGACY_PROTOCOL" in mx
    assert "DOVECOT LINE" in box and "EXIM LINE" not in box
    assert "EXIM LINE" in x and "DOVECOT LINE" in x  # x:25 did not say: everything seen
    verbose = io.StringIO()
    render(report(result("smtp.mx", *findings)), verbose, declarations=decl, verbose=True)
    assert verbose.getvalue().count("DOVECOT LINE") == 3


# ----- wrap -----------------------------------------------------------------------------------
COMMANDS = [
    "openssl s_client -connect 127.0.0.25:25 -starttls smtp -servername mx.example.test "
    "-CAfile /tmp/some/long/path/ca.pem -brief </dev/null",
    "{ sleep 1; printf 'EHLO mailprobe.invalid\\r\\nVRFY postmaster\\r\\nQUIT\\r\\n'; } | "
    "nc -i 1 -q 5 127.0.0.25 25",
    'swaks --server 127.0.0.25 --from "a b c <x@example.test>" --to y@example.test --quit-after '
    "RCPT",
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("width", [40, 50, 72])
def test_a_wrapped_command_breaks_only_between_words(command, width):
    lines = wrap_command(command, width, "      reproduce: ", "        ")
    assert len(lines) > 1
    assert all(line.endswith(" \\") for line in lines[:-1])
    joined = lines[0].removeprefix("      reproduce: ")
    for line in lines[1:]:
        joined = joined.removesuffix(" \\") + " " + line.removeprefix("        ")
    assert joined == command


@pytest.mark.parametrize("width", [40, 50, 60])
def test_bash_runs_a_wrapped_command_with_the_same_words(width):
    command = (
        "printf '[%s]' one 'two words in single quotes' \"double quoted words\" "
        "escaped\\ space 'it''s' three four five six seven eight nine ten"
    )
    lines = wrap_command(command, width, "  ")

    def run(cmd: str) -> str:
        return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True).stdout

    assert run("\n".join(lines)) == run(command)
    assert run(command).count("[") == 13


@pytest.mark.parametrize("width", [40, 60, 80])
def test_a_comment_after_a_wrapped_command_stays_a_comment(width):
    command = (
        "printf '[%s]' one two three four five six seven  "
        "# (the lab was removed; rerun with --keep-lab; echo BAD)"
    )
    lines = wrap_command(command, width, "  ")
    assert all(len(line) <= width for line in lines)
    out = subprocess.run(["bash", "-c", "\n".join(lines)], capture_output=True, text=True)
    assert (out.stdout, out.returncode) == ("[one][two][three][four][five][six][seven]", 0)
    assert "--keep-lab" in "".join(lines)


def test_prose_wraps_with_a_hanging_indent_and_shows_line_breaks():
    lines = wrap("one\r\ntwo " + "word " * 20, 40, "  evidence: ", "    ")
    assert lines[0].startswith("  evidence: one⏎ two")
    assert all(line.startswith("    ") for line in lines[1:])
    assert all(len(line) <= 40 for line in lines)


# ----- what each area showed ------------------------------------------------------------------
def test_a_passing_area_says_what_is_configured():
    rep = report(
        result(
            "dns.dmarc",
            finding(
                "dns.dmarc", "DMARC_POLICY", "info", "p", "example.test", applies="p=reject",
                rua="mailto:dmarc@example.test",
            ),
        ),
        result(
            "dns.spf",
            finding("dns.spf", "SPF_RECORD", "info", "r", "example.test", all="-all"),
            finding(
                "dns.spf", "SPF_LOOKUP_COUNT", "info", "c", "example.test", count="3", limit="10"
            ),
        ),
        result(
            "smtp.mx",
            finding(
                "smtp.mx", "SMTP_CAPABILITIES", "info", "c", "mx.example.test:25", auth="PLAIN",
                starttls="offered",
            ),
            finding(
                "smtp.mx", "TLS_NEGOTIATED", "info", "t", "mx.example.test:25",
                negotiated="TLSv1.3", accepted="TLSv1.2 TLSv1.3", refused="TLSv1 TLSv1.1",
            ),
            finding("smtp.mx", "CERT_OK", "info", "ok", "mx.example.test:25", days_left="60"),
        ),
    )  # fmt: skip
    out = text(rep, width=120)
    assert re.search(r"\n  DMARC +pass +p=reject, reports to dmarc@example.test\n", out)
    assert re.search(r"\n  SPF +pass +-all, 3/10 lookups\n", out)
    assert re.search(r"\n  mx.example.test:25 +pass +STARTTLS 1.2/1.3, cert 60 days", out)


def test_a_word_that_fits_a_line_is_never_cut_so_it_can_be_copied():
    path = "/root/.local/state/mailprobe/labs/check-d072ab/lab/dkim/broken.test.gone.key"
    lines = wrap(f"The private key in {path} does not match", 90, "FAIL  X  ", "      ")
    assert any(line.strip() == path or path in line.split() for line in lines)
    assert all(len(line) <= 90 for line in lines)
    huge = "sha256:" + "ab" * 80  # longer than any line: broken, nothing lost
    lines = wrap(f"fingerprint {huge} end", 60, "  ")
    assert "".join(line.strip() for line in lines) == f"fingerprint{huge} end"
    assert all(len(line) <= 60 for line in lines)


def test_a_tlsa_mismatch_found_on_the_mx_fails_the_dane_row_too():
    present = finding("dns.dane", "DANE_TLSA_PRESENT", "info", "tlsa", "mx.example.test")
    mismatch = finding(
        "smtp.mx", "DANE_TLSA_MISMATCH", "fail", "no TLSA matches", "mx.example.test:25"
    )
    rep = report(result("dns.dane", present), result("smtp.mx", mismatch))
    rows = {(a.kind.value, a.name): a for a in areas(rep, DECL)}
    assert rows[("DNS", "DANE")].status is Status.FAIL
    assert rows[("DNS", "DANE")].codes == ["DANE_TLSA_MISMATCH"]
    assert rows[("Endpoints", "mx.example.test:25")].status is Status.FAIL
    assert len(group(rep)) == 1  # one problem, listed once


def test_tlsa_records_nobody_matched_say_so():
    present = finding("dns.dane", "DANE_TLSA_PRESENT", "info", "tlsa", "mx.example.test")
    out = text(report(result("dns.dane", present)), width=120)
    assert re.search(r"\n  DANE +pass +TLSA published; not matched to a certificate", out)


def test_an_area_lists_its_fail_codes_before_its_warn_codes():
    warn = finding("https.bimi", "BIMI_DMARC_TOO_WEAK", "warn", "weak")
    fail = finding("https.bimi", "BIMI_LOGO_UNREACHABLE", "fail", "404")
    (bimi,) = areas(report(result("https.bimi", warn, fail)), DECL)
    assert bimi.codes == ["BIMI_LOGO_UNREACHABLE", "BIMI_DMARC_TOO_WEAK"]


def test_what_a_code_follows_is_shown_with_its_cause_not_as_a_problem_of_its_own():
    decl = {
        "DANE_TLSA_UNVERIFIABLE": Code(
            "DANE_TLSA_UNVERIFIABLE", "unverifiable", Severity.WARN, follows=("DNSSEC_BOGUS",)
        )
    }
    bogus = finding("dns.dnssec", "DNSSEC_BOGUS", "fail", "bogus: expired", "example.test")
    tlsa = finding("dns.dane", "DANE_TLSA_UNVERIFIABLE", "warn", "not secure", "mx.example.test")
    rep = report(result("dns.dnssec", bogus), result("dns.dane", tlsa))
    causes = group(rep, decl)
    assert [c.code for c in causes] == ["DNSSEC_BOGUS"]
    assert [c.text for c in causes[0].consequences] == ["DANE_TLSA_UNVERIFIABLE mx.example.test"]
    alone = group(report(result("dns.dane", tlsa)), decl)  # without its cause: a problem
    assert [c.code for c in alone] == ["DANE_TLSA_UNVERIFIABLE"]

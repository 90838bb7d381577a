"""The transport probes (smtp.*, imap.*, pop3.*) against the real lab, in every flavour.

A correct lab gives no warn/fail finding on any endpoint and logs in everywhere with the lab's
credentials; each misconfigured lab spec gives exactly the codes it should, on exactly the
endpoints it should, whatever the server (Exim, Postfix, sendmail; Dovecot or Perdition in
front of it). Every spec starts one lab per flavour, shared by the tests that need it; a spec a
flavour cannot express is skipped there with the reason.

Lab endpoints (subjects are the configured names): MTA "mx" (25 STARTTLS, 587 STARTTLS+AUTH,
465 implicit TLS), MTA "outbound" (25, 587; no 465), "mailbox" (143, 993, 110, 995).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import socket
import ssl
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from cryptography import x509
from flavour_facts import MAILBOX_SASL

from probes.checks.mailbox_endpoints import ImapStartTls, ImapTls, Pop3StartTls, Pop3Tls
from probes.checks.smtp_endpoints import SmtpMx, SmtpSubmission, SmtpSubmissions
from probes.checks.smtp_relay import SmtpRelay
from probes.lab.spec import DovecotSpec, EximSpec, LabSpec, TlsSpec
from probes.lab.target import lab_target as build_lab_target
from probes.model import Outcome, Severity, Target, Timeouts
from probes.net.tls import untestable_reason
from probes.runner import run_probes

pytestmark = pytest.mark.lab
FLAVOURED = True  # every test runs on every lab flavour (tests/lab/conftest.py)

CREDS_ENV = "MAILPROBE_TEST_TRANSPORT_CREDS"

MX25 = "mx.example.test:25"
MX587 = "mx.example.test:587"
MX465 = "mx.example.test:465"
OUT587 = "outbound.example.test:587"
OUT465 = "outbound.example.test:465"
IMAP = "mailbox.example.test:143"
IMAPS = "mailbox.example.test:993"
POP3 = "mailbox.example.test:110"
POP3S = "mailbox.example.test:995"

MTA_STARTTLS = (MX25, MX587, OUT587)
TLS_ENDPOINTS = (MX25, MX587, OUT587, MX465, IMAP, IMAPS, POP3, POP3S)
LOGIN_ENDPOINTS = (MX587, OUT587, MX465, IMAP, IMAPS, POP3, POP3S)
STARTTLS_FLAG = {25: "smtp", 587: "smtp", 143: "imap", 110: "pop3"}

FAIL, WARN, INFO = Severity.FAIL, Severity.WARN, Severity.INFO


def every(code: str, severity: Severity, subjects, times: int = 1) -> Counter:
    return Counter({(code, severity, s): times for s in subjects})


# name -> (spec, the exact warn/fail findings as a Counter of (code, severity, subject))
CASES: dict[str, tuple[LabSpec, Counter]] = {
    "cert-expired": (
        LabSpec(tls=TlsSpec(certificate="expired")),
        every("CERT_EXPIRED", FAIL, TLS_ENDPOINTS),
    ),
    "cert-expiring-soon": (
        LabSpec(tls=TlsSpec(certificate="expiring-soon")),
        every("CERT_EXPIRING_SOON", WARN, TLS_ENDPOINTS),
    ),
    "cert-self-signed": (
        LabSpec(tls=TlsSpec(certificate="self-signed")),
        every("CERT_SELF_SIGNED", WARN, TLS_ENDPOINTS),
    ),
    "cert-wrong-host": (
        LabSpec(tls=TlsSpec(certificate="wrong-host")),
        every("CERT_HOSTNAME_MISMATCH", FAIL, TLS_ENDPOINTS),
    ),
    # One finding per accepted legacy version: TLSv1 and TLSv1.1 on each endpoint.
    "tls-1.0-enabled": (
        LabSpec(tls=TlsSpec(min_version="TLSv1")),
        every("TLS_LEGACY_PROTOCOL", WARN, TLS_ENDPOINTS, times=2),
    ),
    # Only the MTAs honour key_readable (Dovecot and Perdition will not start without their
    # key); sendmail cannot express it (it stops offering STARTTLS: skipped).
    "key-unreadable": (
        LabSpec(tls=TlsSpec(key_readable=False)),
        every("STARTTLS_FAILED", FAIL, MTA_STARTTLS) + every("TLS_HANDSHAKE_FAILED", FAIL, [MX465]),
    ),
    # Only the MTAs honour starttls=False: Dovecot and Perdition always offer STARTTLS/STLS,
    # so 143/110 stay clean, and implicit TLS on 465 is unaffected.
    "starttls-off": (
        LabSpec(tls=TlsSpec(starttls=False)),
        every("STARTTLS_NOT_OFFERED", FAIL, MTA_STARTTLS),
    ),
    "dovecot-plaintext-auth": (
        LabSpec(dovecot=DovecotSpec(plaintext_auth=True)),
        every("AUTH_BEFORE_TLS", FAIL, [IMAP, POP3]),
    ),
    "exim-auth-before-tls": (
        LabSpec(exim=EximSpec(auth_before_tls=True)),
        every("AUTH_BEFORE_TLS", FAIL, MTA_STARTTLS),
    ),
    # Two labs: Postfix cannot express VRFY/EXPN answering 250, but it can relay openly.
    "open-relay": (
        LabSpec(exim=EximSpec(open_relay=True)),
        every("SMTP_OPEN_RELAY", FAIL, [MX25]),
    ),
    "vrfy-expn": (
        LabSpec(exim=EximSpec(vrfy=True, expn=True)),
        every("SMTP_VRFY_ENABLED", WARN, [MX25]) + every("SMTP_EXPN_ENABLED", WARN, [MX25]),
    ),
    "ptr-mismatch": (
        LabSpec(ptr={"mx": "other-name.example.test"}),
        every("SMTP_BANNER_PTR_MISMATCH", WARN, [MX25]),
    ),
}


def all_probes():
    return [
        SmtpMx(),
        SmtpSubmission(),
        SmtpSubmissions(),
        SmtpRelay(),
        ImapStartTls(),
        ImapTls(),
        Pop3StartTls(),
        Pop3Tls(),
    ]


def lab_target(info, io: float = 5, **overrides) -> Target:
    """The lab's Target (probes.lab.target) without its login (the tests give their own)."""
    changes = {"selectors": (), "sending_ips": (), "dkim_keys": (), "login": None, **overrides}
    return build_lab_target(info, timeouts=Timeouts(dns=2, connect=3, io=io, probe=60), **changes)


def run_with_credentials(info, value: str | None, probes=None, **overrides):
    """Run the probes with CREDS_ENV set to `value` (None: no credentials configured).

    No `secrets=` is given to the runner: the probes themselves must keep the password out."""
    with pytest.MonkeyPatch.context() as mp:
        if value is None:
            mp.delenv(CREDS_ENV, raising=False)
            ref = None
        else:
            mp.setenv(CREDS_ENV, value)
            ref = f"env:{CREDS_ENV}"
        target = lab_target(info, credentials_ref=ref, **overrides)
        return run_probes(probes or all_probes(), target)


def findings(results):
    return [f for r in results for f in r.findings]


def severe(results) -> Counter:
    return Counter((f.code, f.severity, f.subject) for f in findings(results) if f.severity >= WARN)


def of_code(results, code: str) -> dict[str, object]:
    found = [f for f in findings(results) if f.code == code]
    subjects = [f.subject for f in found]
    assert len(subjects) == len(set(subjects)), f"{code} twice on one endpoint: {subjects}"
    return {f.subject: f for f in found}


def assert_completed(results) -> None:
    assert {r.probe_id: (r.outcome, r.error_detail) for r in results} == {
        r.probe_id: (Outcome.COMPLETED, None) for r in results
    }


def serialized(results) -> str:
    return json.dumps([r.to_json() for r in results])


def assert_secret_absent(results, user: str, password: str) -> None:
    text = serialized(results)
    assert password not in text
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    assert token not in text
    assert base64.b64encode(password.encode()).decode() not in text


def ip_port(info, subject: str) -> str:
    host, port = subject.rsplit(":", 1)
    role = host.split(".", 1)[0]
    return f"{info.hosts[role]}:{port}"


def assert_reproduce_shapes(info, results) -> None:
    """SMTP findings reproduce with swaks (VRFY/EXPN with printf | nc), TLS_*/CERT_* with
    `openssl s_client -connect IP:PORT` (-starttls for STARTTLS ports), and IMAP/POP3 findings
    with openssl s_client as well, except AUTH_BEFORE_TLS (printf | nc: before TLS)."""
    for result in results:
        for f in result.findings:
            where = f"{result.probe_id} {f.code} {f.subject}: {f.reproduce!r}"
            assert f.reproduce, where
            host_port = ip_port(info, f.subject)
            port = int(f.subject.rsplit(":", 1)[1])
            tls_code = f.code.startswith(("TLS_", "CERT_"))
            if f.code in ("SMTP_VRFY_ENABLED", "SMTP_EXPN_ENABLED"):
                verb = "VRFY" if f.code == "SMTP_VRFY_ENABLED" else "EXPN"
                ip = host_port.split(":")[0]
                assert f.reproduce.startswith("{ sleep 1; printf "), where
                assert f"{verb} postmaster" in f.reproduce, where
                assert "| nc " in f.reproduce, where
                assert f.reproduce.endswith(f" {ip} {port}"), where
            elif f.code == "AUTH_BEFORE_TLS" and not result.probe_id.startswith("smtp."):
                # openssl shows capabilities only after TLS: a plaintext session shows them.
                ip = host_port.split(":")[0]
                assert f.reproduce.startswith("printf '"), where
                assert "CAPA" in f.reproduce, where  # CAPABILITY (IMAP) or CAPA (POP3)
                assert f.reproduce.endswith(f"| nc -q 5 {ip} {port}"), where
            elif tls_code or not result.probe_id.startswith("smtp."):
                assert f.reproduce.startswith(f"openssl s_client -connect {host_port} "), where
                flag = STARTTLS_FLAG.get(port)
                if flag:
                    assert f" -starttls {flag} " in f.reproduce, where
                else:
                    assert " -starttls " not in f.reproduce, where
            else:
                ip = host_port.split(":")[0]
                assert f.reproduce.startswith(f"swaks --server {ip} --port {port}"), where


# ----- labs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_for(flavoured, mailprobe_lab_factory_session):
    """lab_for(name) -> the running Lab for CASES[name] (or a correct LabSpec() for "correct"
    and "wrong-password") in the current flavour, started once; all are removed when the
    module's flavour is done."""
    labs = {}

    def get(name: str):
        if name not in labs:
            spec = CASES[name][0] if name in CASES else LabSpec()
            labs[name] = mailprobe_lab_factory_session(flavoured(spec))
        return labs[name]

    yield get
    with ThreadPoolExecutor(max_workers=4) as pool:  # Lab.stop is safe to call again later
        list(pool.map(lambda lab: lab.stop(), labs.values()))


@pytest.fixture(scope="module")
def correct_lab(lab_for):
    return lab_for("correct")


# ----- the correct lab -------------------------------------------------------------------------


def test_correct_lab_completes_every_probe_without_warn_or_fail(correct_lab):
    info = correct_lab.info
    results = run_with_credentials(info, None)
    assert_completed(results)
    assert severe(results) == Counter()
    # what was seen on each TLS endpoint is reported as info
    assert set(of_code(results, "CERT_OK")) == set(TLS_ENDPOINTS)
    assert set(of_code(results, "TLS_NEGOTIATED")) == set(TLS_ENDPOINTS)
    assert set(of_code(results, "SMTP_RELAY_REFUSED")) == {MX25}
    # outbound has no 465, but its 587 is open: information, not a failure
    closed = of_code(results, "PORT_CLOSED")
    assert set(closed) == {OUT465}
    assert closed[OUT465].severity is INFO
    assert closed[OUT465].evidence["open_alternative"] == "587"
    assert_reproduce_shapes(info, results)


def test_correct_credentials_log_in_on_every_submission_and_mailbox_endpoint(correct_lab):
    info = correct_lab.info
    results = run_with_credentials(info, f"{info.user}:{info.password}")
    assert_completed(results)
    assert severe(results) == Counter()
    ok = of_code(results, "AUTH_OK")
    assert set(ok) == set(LOGIN_ENDPOINTS)
    assert all(f.evidence["user"] == info.user for f in ok.values())
    assert_secret_absent(results, info.user, info.password)
    assert_reproduce_shapes(info, results)


def _leaf_fingerprint(info, subject: str) -> str:
    """The sha256 fingerprint of the certificate an implicit-TLS endpoint presents, read here
    with the standard library (not through the probes)."""
    host, port = ip_port(info, subject).split(":")
    context = ssl.create_default_context(cafile=info.ca_file)
    context.check_hostname = False
    name = subject.split(":")[0]
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def test_correct_lab_reports_its_transport_state(correct_lab):
    """State findings (issue 14): each endpoint's certificate (fingerprint, issuer, not-after),
    the TLS versions accepted, STARTTLS and AUTH offered, as info evidence."""
    info = correct_lab.info
    results = run_with_credentials(info, f"{info.user}:{info.password}")
    assert_completed(results)
    certs = of_code(results, "CERT_OK")
    assert set(certs) == set(TLS_ENDPOINTS)
    with open(info.ca_file, "rb") as fh:
        ca_subject = x509.load_pem_x509_certificate(fh.read()).subject.rfc4514_string()
    now = datetime.now(UTC)
    for subject, cert in certs.items():
        assert cert.evidence["issuer"] == ca_subject, subject
        assert datetime.fromisoformat(cert.evidence["not_after"]) > now, subject
        assert cert.volatile == frozenset({"days_left"}), subject
        assert "days_left" not in cert.stable_evidence
    # the same certificate on every port of one host, the one a plain TLS client sees
    for implicit, same_host in ((MX465, (MX25, MX587)), (IMAPS, (IMAP, POP3, POP3S))):
        fingerprint = _leaf_fingerprint(info, implicit)
        for subject in (implicit, *same_host):
            assert certs[subject].evidence["sha256_fingerprint"] == fingerprint, subject
    assert (
        certs[OUT587].evidence["sha256_fingerprint"] != certs[MX587].evidence["sha256_fingerprint"]
    )
    expected_versions = {
        v for v in ("TLSv1.2", "TLSv1.3") if not untestable_reason(v)
    }  # LabSpec(): min_version TLSv1.2
    for subject, tls in of_code(results, "TLS_NEGOTIATED").items():
        assert set(tls.evidence["accepted"].split()) == expected_versions, subject
        assert "TLSv1 " in tls.evidence["refused"] + " ", subject
    caps = {
        **of_code(results, "SMTP_CAPABILITIES"),
        **of_code(results, "IMAP_CAPABILITIES"),
        **of_code(results, "POP3_CAPABILITIES"),
    }
    assert set(caps) == set(TLS_ENDPOINTS)
    for subject, finding in caps.items():
        port = int(subject.rsplit(":", 1)[1])
        starttls = "offered" if port in STARTTLS_FLAG else "implicit TLS"
        assert finding.evidence["starttls"] == starttls, subject
        assert finding.volatile == frozenset({"greeting"}), subject
    mailbox_sasl = MAILBOX_SASL[info.mailbox_front]
    for subject in LOGIN_ENDPOINTS:
        offered = caps[subject].evidence["auth"].split()
        if subject.startswith("mailbox.") and not mailbox_sasl:
            assert offered == ["none"], subject
        else:
            assert "PLAIN" in offered, subject
    assert "auth" not in caps[MX25].evidence  # no AUTH on the MX port


def test_wrong_password_fails_login_on_every_endpoint_and_is_never_shown(lab_for):
    # A lab of its own, so failed logins never slow down the other tests' logins. The lab turns
    # Dovecot's growing auth penalty off; its fixed 2 s failure delay stays (hence io=8).
    info = lab_for("wrong-password").info
    wrong = "not-the-password-" + secrets.token_hex(8)
    results = run_with_credentials(info, f"{info.user}:{wrong}", io=8)
    assert_completed(results)
    assert severe(results) == every("AUTH_FAILED", FAIL, LOGIN_ENDPOINTS)
    assert "AUTH_OK" not in {f.code for f in findings(results)}
    assert_secret_absent(results, info.user, wrong)
    assert_secret_absent(results, info.user, info.password)
    assert_reproduce_shapes(info, results)


def test_submission_hosts_without_smtp_fail_as_closed_ports(correct_lab):
    info = correct_lab.info
    mailbox = f"mailbox.{info.domain}"
    results = run_with_credentials(
        info, None, [SmtpSubmission(), SmtpSubmissions()], submission_hosts=(mailbox,)
    )
    assert_completed(results)
    assert severe(results) == every("PORT_CLOSED", FAIL, [f"{mailbox}:587", f"{mailbox}:465"])
    assert {f.evidence["state"] for f in findings(results)} == {"refused"}
    assert_reproduce_shapes(info, results)


def test_mailbox_host_without_imap_or_pop3_fails_as_closed_ports(correct_lab):
    info = correct_lab.info
    mx = f"mx.{info.domain}"
    results = run_with_credentials(
        info,
        None,
        [ImapStartTls(), ImapTls(), Pop3StartTls(), Pop3Tls()],
        mailbox_hosts=(mx,),
    )
    assert_completed(results)
    assert severe(results) == every(
        "PORT_CLOSED", FAIL, [f"{mx}:{p}" for p in (143, 993, 110, 995)]
    )
    assert_reproduce_shapes(info, results)


# ----- one lab per misconfiguration ------------------------------------------------------------


@pytest.fixture(scope="module")
def case_results(lab_for):
    """name -> (lab info, results), the probes run once per case with the correct
    credentials configured (a login that works is info, so the expected sets hold)."""
    done = {}

    def get(name: str):
        if name not in done:
            info = lab_for(name).info
            done[name] = info, run_with_credentials(info, f"{info.user}:{info.password}")
        return done[name]

    return get


@pytest.mark.parametrize("name", list(CASES))
def test_misconfiguration_gives_exactly_its_codes(name, case_results):
    info, results = case_results(name)
    if name == "tls-1.0-enabled":
        missing = [v for v in ("TLSv1", "TLSv1.1") if untestable_reason(v)]
        if missing:
            pytest.skip(f"the local OpenSSL cannot offer {', '.join(missing)}")
    assert_completed(results)
    assert severe(results) == CASES[name][1]
    assert_reproduce_shapes(info, results)
    assert_secret_absent(results, info.user, info.password)


def test_legacy_protocol_findings_name_tls_1_0_and_1_1_on_every_endpoint(case_results):
    missing = [v for v in ("TLSv1", "TLSv1.1") if untestable_reason(v)]
    if missing:
        pytest.skip(f"the local OpenSSL cannot offer {', '.join(missing)}")
    _, results = case_results("tls-1.0-enabled")
    seen: dict[str, set[str]] = {}
    for f in findings(results):
        if f.code == "TLS_LEGACY_PROTOCOL":
            seen.setdefault(f.subject, set()).add(f.evidence["version"])
    assert seen == {s: {"TLSv1", "TLSv1.1"} for s in TLS_ENDPOINTS}


def test_password_is_not_sent_unless_the_certificate_authenticates_the_host(case_results):
    # expired and self-signed: the chain does not verify; wrong-host: the chain verifies
    # against the lab CA, but the certificate names another host
    for name in ("cert-expired", "cert-self-signed", "cert-wrong-host"):
        _, results = case_results(name)
        codes = {(f.code, f.subject) for f in findings(results) if f.code.startswith("AUTH_")}
        assert codes == {("AUTH_NOT_TRIED", s) for s in LOGIN_ENDPOINTS}, name
        for finding in of_code(results, "AUTH_NOT_TRIED").values():
            assert finding.evidence["reason"], name


def test_verified_certificate_problems_still_log_in(case_results):
    # an expiring certificate is still valid: the login goes ahead
    _, results = case_results("cert-expiring-soon")
    assert set(of_code(results, "AUTH_OK")) == set(LOGIN_ENDPOINTS)


def test_unreadable_key_reports_the_servers_454_refusal(case_results):
    _, results = case_results("key-unreadable")
    failed = of_code(results, "STARTTLS_FAILED")
    for subject in MTA_STARTTLS:
        assert "454" in failed[subject].evidence["error"]


def test_vrfy_and_expn_findings_carry_the_servers_250_answers(case_results):
    _, results = case_results("vrfy-expn")
    vrfy = of_code(results, "SMTP_VRFY_ENABLED")[MX25]
    expn = of_code(results, "SMTP_EXPN_ENABLED")[MX25]
    assert vrfy.evidence["command"] == "VRFY postmaster"
    assert vrfy.evidence["reply"].startswith("250 ")
    # postmaster is an alias of the lab user: EXPN expands it
    assert expn.evidence["command"] == "EXPN postmaster"
    assert expn.evidence["reply"].startswith("250 ")
    assert "user@example.test" in expn.evidence["reply"]


def test_open_relay_finding_carries_the_accepted_recipient(case_results):
    _, results = case_results("open-relay")
    relay = of_code(results, "SMTP_OPEN_RELAY")[MX25]
    assert relay.evidence["rcpt_to"].startswith("250 ")


def test_ptr_mismatch_names_the_announced_and_the_ptr_name(case_results):
    _, results = case_results("ptr-mismatch")
    finding = of_code(results, "SMTP_BANNER_PTR_MISMATCH")[MX25]
    assert finding.evidence["ptr"] == "other-name.example.test"
    assert "mx.example.test" in finding.evidence["announced"].split()


# ----- the reproduce lines reproduce -----------------------------------------------------------


def run_line(line: str) -> str:
    """Run a reproduce line in a shell (lab addresses only); its stdout and stderr."""
    done = subprocess.run(
        line, shell=True, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    return done.stdout + done.stderr


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def test_legacy_protocol_reproduce_lines_negotiate_that_version(case_results):
    need("openssl")
    missing = [v for v in ("TLSv1", "TLSv1.1") if untestable_reason(v)]
    if missing:
        pytest.skip(f"the local OpenSSL cannot offer {', '.join(missing)}")
    _, results = case_results("tls-1.0-enabled")
    legacy = [f for f in findings(results) if f.code == "TLS_LEGACY_PROTOCOL"]
    assert legacy
    for finding in legacy:
        version = finding.evidence["version"]
        output = run_line(finding.reproduce)
        assert f"Protocol version: {version}\n" in output, (finding.reproduce, output[-500:])


def test_expired_certificate_reproduce_line_shows_the_expiry(case_results):
    need("openssl")
    _, results = case_results("cert-expired")
    for subject in (MX25, IMAPS):
        finding = of_code(results, "CERT_EXPIRED")[subject]
        assert "certificate has expired" in run_line(finding.reproduce), finding.reproduce


def test_starttls_failed_reproduce_line_shows_the_servers_454(case_results):
    need("swaks")
    _, results = case_results("key-unreadable")
    finding = of_code(results, "STARTTLS_FAILED")[MX25]
    output = run_line(finding.reproduce)
    assert "<** 454 " in output or "<-  454 " in output, output[-800:]


def test_vrfy_reproduce_line_shows_the_servers_250_answer(case_results):
    need("nc")  # netcat-openbsd: installed by tools/bootstrap.sh with swaks
    _, results = case_results("vrfy-expn")
    for code in ("SMTP_VRFY_ENABLED", "SMTP_EXPN_ENABLED"):
        finding = of_code(results, code)[MX25]
        lines = run_line(finding.reproduce).splitlines()
        # the greeting, the EHLO lines, the VRFY/EXPN answer the finding carries, QUIT's 221
        assert lines[0].startswith("220"), lines
        answer = finding.evidence["reply"].split(" ", 1)[1][:20]
        assert any(line.startswith("250") and answer in line for line in lines), (answer, lines)
        assert lines[-1].startswith("221"), lines


def test_auth_before_tls_reproduce_line_shows_the_plaintext_capabilities(case_results):
    need("nc")
    _, results = case_results("dovecot-plaintext-auth")
    for subject in (IMAP, POP3):
        finding = of_code(results, "AUTH_BEFORE_TLS")[subject]
        output = run_line(finding.reproduce).upper()
        # what the finding says is offered shows in the plaintext capabilities
        for offered in finding.evidence["offered"].upper().split():
            if offered == "LOGIN" and subject == IMAP:  # the LOGIN command: no LOGINDISABLED
                assert "CAPABILITY" in output and "LOGINDISABLED" not in output, output
            elif offered not in ("SASL", "(NO", "LOGINDISABLED)"):
                assert offered in output, (offered, finding.reproduce, output[-500:])


def test_open_relay_reproduce_line_shows_the_accepted_recipient(case_results):
    need("swaks")
    _, results = case_results("open-relay")
    finding = of_code(results, "SMTP_OPEN_RELAY")[MX25]
    lines = run_line(finding.reproduce).splitlines()
    rcpt = next(i for i, line in enumerate(lines) if line.startswith(" -> RCPT TO:"))
    assert lines[rcpt + 1].startswith("<-  250 "), lines

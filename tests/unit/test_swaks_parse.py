"""probes.parse.swaks on transcripts captured from swaks 20201014.0 (tests/data/swaks/).

Each file is swaks' stdout and stderr as it wrote them, against the lab (Exim 4.96) or a tiny
misbehaving server; the exit code swaks returned is recorded in CAPTURED.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.parse import swaks

DATA = Path(__file__).resolve().parents[1] / "data" / "swaks"

# file stem -> (swaks exit code, failed stage or None, reply code of the failed stage)
CAPTURED = {
    "sub_auth_ok": (0, None, None),
    "sub_auth_login_ok": (0, None, None),
    "sub_noauth_ok": (0, None, None),
    "mx_ok": (0, None, None),
    "mx_no_starttls": (0, None, None),
    "sub_auth_fail": (28, "AUTH", 535),
    "refused": (2, "CONNECT", None),
    "verify_fail": (29, "TLS", None),
    "starttls_454": (29, "STARTTLS", 454),
    "starttls_not_offered": (29, "STARTTLS", None),
    "mx_rcpt_refused": (24, "RCPT", 550),
    "banner_timeout": (21, "BANNER", None),
    "banner_554": (21, "BANNER", 554),
    "hostile_close": (6, "EHLO", None),
    "hostile_ehlo500": (22, "EHLO", 500),
}


def load(stem: str) -> swaks.Transcript:
    return swaks.parse((DATA / f"{stem}.txt").read_text())


def test_every_captured_transcript_is_listed():
    assert {p.stem for p in DATA.glob("*.txt")} == set(CAPTURED)


@pytest.mark.parametrize("stem", sorted(CAPTURED))
def test_exit_code_and_transcript_name_the_failed_stage_and_its_reply(stem):
    exit_code, stage, reply = CAPTURED[stem]
    transcript = load(stem)
    fail = swaks.failure(transcript, exit_code)
    if stage is None:
        assert fail is None
        return
    assert fail is not None
    assert fail.stage == stage
    assert fail.exit.code == exit_code
    if reply is None:
        assert fail.record is None or fail.record.code is None
    else:
        assert fail.record is not None and fail.record.code == reply
        assert not fail.record.ok


@pytest.mark.parametrize("stem", sorted(CAPTURED))
def test_no_captured_line_is_left_unrecognised(stem):
    assert load(stem).unparsed == 0


def test_successful_submission_passes_every_stage_up_to_auth_with_tls_details():
    t = load("sub_auth_ok")
    assert t.passed == ("CONNECT", "BANNER", "EHLO", "STARTTLS", "TLS", "EHLO_TLS", "AUTH")
    assert (t.tls_version, t.tls_cipher, t.tls_bits) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384", "256")
    assert t.tls_peer_dn == "/O=mailprobe lab/CN=mx.example.test"
    assert t.starttls_advertised is True
    assert t.auth_mechanisms == ("PLAIN", "LOGIN")
    auth = t.stage("AUTH")
    assert auth is not None and auth.code == 235 and auth.command == "AUTH PLAIN"


def test_auth_login_exchange_is_one_stage_ending_in_its_final_reply():
    auth = load("sub_auth_login_ok").stage("AUTH")
    assert auth is not None and auth.ok and auth.code == 235 and auth.command == "AUTH LOGIN"


def test_mx_transaction_stops_after_rcpt_without_data():
    t = load("mx_ok")
    assert t.passed[-2:] == ("MAIL", "RCPT")
    assert t.stage("DATA") is None
    assert t.auth_mechanisms == ()  # port 25 offers no AUTH


def test_starttls_not_advertised_is_a_failed_starttls_stage_without_reply():
    t = load("mx_no_starttls")
    assert t.starttls_advertised is False
    stage = t.stage("STARTTLS")
    assert stage is not None and not stage.ok and stage.code is None
    assert t.tls_version is None


def test_refused_connection_keeps_the_socket_error():
    stage = load("refused").stage("CONNECT")
    assert stage is not None and not stage.ok
    assert "Connection refused" in (stage.note or "")


def test_certificate_failure_is_a_failed_tls_stage_after_a_220_to_starttls():
    t = load("verify_fail")
    starttls = t.stage("STARTTLS")
    assert starttls is not None and starttls.ok and starttls.code == 220
    tls = t.stage("TLS")
    assert tls is not None and not tls.ok and "certificate verify failed" in (tls.note or "")


def test_multi_line_banner_reply_is_joined():
    stage = load("banner_554").stage("BANNER")
    assert stage is not None
    assert stage.text == "mx.example.test no SMTP service here go away"


def test_helo_after_a_refused_ehlo_stays_in_the_ehlo_stage():
    t = load("hostile_ehlo500")
    ehlos = [s for s in t.stages if s.name == "EHLO"]
    assert len(ehlos) == 1 and ehlos[0].command == "HELO" and ehlos[0].code == 500


# --- the exit code table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "stage"),
    [
        (2, "CONNECT"),
        (21, "BANNER"),
        (22, "EHLO"),
        (23, "MAIL"),
        (24, "RCPT"),
        (25, "DATA"),
        (28, "AUTH"),
        (29, "TLS"),
        (32, "EHLO_TLS"),
        (0, None),
        (1, None),
        (6, None),
        (10, None),
    ],
)
def test_exit_codes_name_the_stage_swaks_documents(code, stage):
    assert swaks.exit_meaning(code).stage == stage


def test_unknown_and_signal_exit_codes_have_no_stage():
    assert swaks.exit_meaning(77).stage is None
    assert swaks.exit_meaning(-9).stage is None
    assert swaks.failure(swaks.Transcript(), 77) is not None


def test_connection_closed_exit_takes_the_first_failed_stage():
    fail = swaks.failure(load("hostile_close"), 6)
    assert fail is not None and fail.stage == "EHLO"
    assert fail.record is not None and fail.record.note == "connection closed unexpectedly"


# --- redaction ------------------------------------------------------------------------------

SECRET = "s3cr3t-Passw0rd"
PLAIN = base64.b64encode(f"\0user@example.test\0{SECRET}".encode()).decode()
LOGIN_USER = base64.b64encode(b"user@example.test").decode()
LOGIN_PASS = base64.b64encode(SECRET.encode()).decode()
UNREDACTED = f"""\
<~  250 HELP
 ~> AUTH PLAIN {PLAIN}
<~* 535 Incorrect authentication data
 ~> AUTH LOGIN
<~  334 VXNlcm5hbWU6
 ~> {LOGIN_USER}
<~  334 UGFzc3dvcmQ6
 ~> {LOGIN_PASS}
<~  235 Authentication succeeded
 ~> MAIL FROM:<a@example.test>
<~  250 OK
 ~> QUIT
"""


def test_redact_auth_removes_every_credential_line_and_keeps_the_commands():
    text = swaks.redact_auth(UNREDACTED)
    for secret in (PLAIN, LOGIN_USER, LOGIN_PASS):
        assert secret not in text
    assert " ~> AUTH PLAIN [redacted]" in text
    assert " ~> AUTH LOGIN" in text
    assert " ~> MAIL FROM:<a@example.test>" in text
    assert " ~> QUIT" in text


def test_parser_never_puts_credentials_into_stage_fields():
    t = swaks.parse(UNREDACTED)
    fields = " ".join(f"{s.command} {s.text} {s.note}" for s in t.stages)
    for secret in (PLAIN, LOGIN_USER, LOGIN_PASS):
        assert secret not in fields
    auth = [s for s in t.stages if s.name == "AUTH"]
    assert [s.ok for s in auth] == [False, True]


# --- hostile input --------------------------------------------------------------------------


def test_huge_and_endless_lines_give_bounded_stage_text():
    text = "=== Connected to 127.0.0.1.\n<-  220-" + "x" * 5_000_000 + "\n<-  220 ok\n"
    stage = swaks.parse(text).stage("BANNER")
    assert stage is not None and stage.ok
    assert len(stage.text) <= swaks.MAX_TEXT


def test_many_reply_lines_give_bounded_stage_text():
    text = "=== Connected to 127.0.0.1.\n" + "<-  250-y\n" * 200_000 + "<-  220 ok\n"
    stage = swaks.parse(text).stage("BANNER")
    assert stage is not None and len(stage.text) <= swaks.MAX_TEXT


def test_random_garbage_never_raises():
    rng = random.Random(4)
    hints = ["=== ", "*** ", " -> ", " ~> ", "<-  ", "<~* ", "<** ", "**> ", "", "???"]
    for _ in range(300):
        lines = []
        for _ in range(rng.randint(0, 40)):
            body = "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 30)))
            if rng.random() < 0.5:
                body = rng.choice(["220", "250-", "454 ", "535 ", "EHLO x", "AUTH PLAIN"]) + body
            lines.append(rng.choice(hints) + body)
        swaks.parse("\n".join(lines))
        swaks.redact_auth("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_parses_to_a_transcript(text):
    t = swaks.parse(text)
    assert isinstance(t, swaks.Transcript)
    for stage in t.stages:
        assert stage.name in swaks.STAGES
        assert len(stage.text) <= swaks.MAX_TEXT

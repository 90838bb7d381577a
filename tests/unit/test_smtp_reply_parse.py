"""SMTP reply, EHLO and banner parsing (probes.parse.smtp_reply)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.errors import ProtocolError
from probes.parse.smtp_reply import (
    Reply,
    SmtpReplyError,
    banner_name,
    is_last_line,
    parse_ehlo,
    parse_reply,
)


@pytest.mark.parametrize(
    ("line", "last"),
    [("250 OK", True), ("250", True), ("250 ", True), ("250-mx.example", False), ("250-", False)],
)
def test_is_last_line_tells_continuation_from_last(line, last):
    assert is_last_line(line) is last


@pytest.mark.parametrize(
    "line", ["", "25", "25 OK", "2500 OK", "250OK", "250\tOK", "abc OK", "٢٥٠ OK", " 250 OK"]
)
def test_is_last_line_rejects_lines_without_a_code(line):
    with pytest.raises(SmtpReplyError):
        is_last_line(line)


def test_smtp_reply_error_is_a_protocol_error():
    assert issubclass(SmtpReplyError, ProtocolError)


def test_parse_reply_single_line():
    reply = parse_reply(["250 2.1.0 Ok"])
    assert (reply.code, reply.lines, reply.enhanced, reply.is_positive) == (
        250,
        ("2.1.0 Ok",),
        "2.1.0",
        True,
    )


def test_parse_reply_multi_line_keeps_each_text():
    reply = parse_reply(["550-5.7.1 first", "550-second", "550 third"])
    assert reply.code == 550
    assert reply.lines == ("5.7.1 first", "second", "third")
    assert reply.text == "5.7.1 first\nsecond\nthird"
    assert reply.enhanced == "5.7.1"
    assert not reply.is_positive


@pytest.mark.parametrize(
    ("line", "enhanced"),
    [
        ("550 5.7.1 denied", "5.7.1"),
        ("250 2.0.0", "2.0.0"),
        ("451 4.3.0 try later", "4.3.0"),
        ("550 relay not permitted", None),
        ("550 5.7.1.2 not one", None),
        ("550 3.1.1 bad class", None),
        ("550 5.7.1234 too long", None),
        ("250", None),
    ],
)
def test_enhanced_status_code_from_first_line(line, enhanced):
    assert parse_reply([line]).enhanced == enhanced


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["250-first", "251 second"],
        ["250 first", "250 second"],
        ["250-first", "250-second"],
        ["199 too low"],
        ["600 too high"],
        ["099 no"],
        ["250-ok", "garbage"],
    ],
)
def test_parse_reply_rejects_malformed_replies(lines):
    with pytest.raises(SmtpReplyError):
        parse_reply(lines)


def test_parse_reply_rejects_a_bare_string():
    with pytest.raises(SmtpReplyError):
        parse_reply("250 OK")


def test_error_message_shows_the_line_shortened():
    with pytest.raises(SmtpReplyError) as info:
        parse_reply(["x" * 5000])
    assert len(str(info.value)) < 200


def test_thousand_line_reply_parses():
    lines = [f"250-LINE{i}" for i in range(999)] + ["250 END"]
    reply = parse_reply(lines)
    assert len(reply.lines) == 1000
    assert parse_ehlo(parse_reply(["250-mx.example hi", *lines])).has("LINE998")


def test_non_ascii_text_is_kept():
    reply = parse_reply(["220 mx.example.test ESMTP bienvenue é ☃ \udcff"])
    assert reply.lines[0].endswith("\udcff")
    assert banner_name(reply) == "mx.example.test"


def test_parse_ehlo_keywords_and_parameters():
    ehlo = parse_ehlo(
        parse_reply(
            [
                "250-mx.example.test Hello client [127.0.0.1]",
                "250-SIZE 52428800",
                "250-8BITMIME",
                "250-PIPELINING",
                "250-AUTH PLAIN LOGIN",
                "250-STARTTLS",
                "250 HELP",
            ]
        )
    )
    assert ehlo.name == "mx.example.test"
    assert ehlo.greeting == "Hello client [127.0.0.1]"
    assert ehlo.keywords["SIZE"] == ("52428800",)
    assert ehlo.keywords["STARTTLS"] == ()
    assert ehlo.has("starttls") and ehlo.has("8BITMIME") and not ehlo.has("CHUNKING")
    assert ehlo.auth_mechanisms == ("PLAIN", "LOGIN")
    assert ehlo.size == 52428800


def test_parse_ehlo_merges_old_style_auth():
    ehlo = parse_ehlo(
        parse_reply(["250-smtp.example", "250-AUTH LOGIN XOAUTH2", "250 AUTH=LOGIN PLAIN"])
    )
    assert ehlo.auth_mechanisms == ("LOGIN", "XOAUTH2", "PLAIN")
    assert "AUTH=LOGIN" not in ehlo.keywords


def test_parse_ehlo_upper_cases_keywords_and_auth_mechanisms():
    ehlo = parse_ehlo(parse_reply(["250-host.example", "250-starttls", "250 auth plain"]))
    assert ehlo.has("STARTTLS")
    assert ehlo.auth_mechanisms == ("PLAIN",)


def test_parse_ehlo_single_line_has_no_keywords():
    ehlo = parse_ehlo(parse_reply(["250 qmail.example.com"]))
    assert ehlo.name == "qmail.example.com"
    assert dict(ehlo.keywords) == {}
    assert ehlo.size is None and ehlo.auth_mechanisms == ()


def test_parse_ehlo_empty_first_line_gives_empty_name():
    ehlo = parse_ehlo(parse_reply(["250-", "250 PIPELINING"]))
    assert ehlo.name == ""
    assert ehlo.has("PIPELINING")


@pytest.mark.parametrize(("param", "size"), [("SIZE", None), ("SIZE 0", 0), ("SIZE big", None)])
def test_ehlo_size_parameter(param, size):
    assert parse_ehlo(parse_reply(["250-h.example", f"250 {param}"])).size == size


def test_parse_ehlo_requires_250():
    with pytest.raises(SmtpReplyError):
        parse_ehlo(parse_reply(["502 5.5.2 EHLO not implemented"]))


def test_ehlo_keywords_are_read_only():
    ehlo = parse_ehlo(parse_reply(["250-h.example", "250 SIZE 10"]))
    with pytest.raises(TypeError):
        ehlo.keywords["X"] = ()  # type: ignore[index]


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("220 mx.example.test ESMTP Exim 4.96", "mx.example.test"),
        ("220 [127.0.0.1] ESMTP", "[127.0.0.1]"),
        ("220 [IPv6:2001:db8::1] ready", "[IPv6:2001:db8::1]"),
        ("220 ESMTP Postfix", None),
        ("220 ***********************", None),
        ("220", None),
        ("220 ", None),
        ("220 -bad-.example ready", None),
    ],
)
def test_banner_name(line, name):
    assert banner_name(parse_reply([line])) == name


def test_banner_name_only_for_220():
    assert banner_name(Reply(554, ("mx.example.test no service",))) is None


# ----- transcripts (tests/data/transcripts: captured from the lab, and hand-written) ------------

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"
SMTP_FILES = sorted(TRANSCRIPTS.glob("*/smtp-*.txt"))


def exchanges(path: Path) -> list[tuple[str | None, list[str]]]:
    """(client line, or None for the banner; the server lines answering it) of a transcript."""
    result: list[tuple[str | None, list[str]]] = [(None, [])]
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    for line in text.split("\n"):
        if line.startswith("C: "):
            result.append((line[3:], []))
        elif line.startswith("S: "):
            result[-1][1].append(line[3:])
    return result


def replies(name: str) -> list[tuple[str | None, Reply]]:
    return [(command, parse_reply(lines)) for command, lines in exchanges(TRANSCRIPTS / name)]


def reply_to(name: str, command: str, nth: int = 0) -> Reply:
    found = [
        reply for sent, reply in replies(name) if sent is not None and sent.startswith(command)
    ]
    return found[nth]


def test_transcripts_are_there():
    dirs = {path.parent.name for path in SMTP_FILES}
    assert dirs == {"lab-default", "lab-permissive", "handwritten"}


@pytest.mark.parametrize("path", SMTP_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_transcript_reply_parses_and_ends_where_the_door_stops(path):
    for _command, lines in exchanges(path):
        assert lines, "every client line is answered"
        assert [is_last_line(line) for line in lines] == [False] * (len(lines) - 1) + [True]
        parse_reply(lines)


@pytest.mark.parametrize("lab", ["lab-default", "lab-permissive"])
def test_lab_exim_banner_and_name(lab):
    banner = replies(f"{lab}/smtp-25-ehlo.txt")[0][1]
    assert banner.code == 220
    assert banner_name(banner) == "mx.example.test"
    ehlo = parse_ehlo(reply_to(f"{lab}/smtp-25-ehlo.txt", "EHLO"))
    assert ehlo.name == "mx.example.test"
    assert ehlo.size == 52428800
    assert ehlo.has("STARTTLS") and ehlo.has("PIPELINING") and ehlo.has("CHUNKING")


def test_lab_exim_port_25_offers_no_auth_and_no_vrfy_by_default():
    ehlo = parse_ehlo(reply_to("lab-default/smtp-25-ehlo.txt", "EHLO"))
    assert ehlo.auth_mechanisms == ()
    assert not ehlo.has("VRFY") and not ehlo.has("EXPN")


def test_lab_exim_permissive_offers_auth_vrfy_expn_before_tls():
    ehlo = parse_ehlo(reply_to("lab-permissive/smtp-25-ehlo.txt", "EHLO"))
    assert ehlo.auth_mechanisms == ("PLAIN", "LOGIN")
    assert ehlo.has("VRFY") and ehlo.has("EXPN")


@pytest.mark.parametrize("lab", ["lab-default", "lab-permissive"])
def test_lab_exim_starttls_then_no_starttls(lab):
    name = f"{lab}/smtp-25-starttls.txt"
    assert reply_to(name, "STARTTLS").code == 220
    assert parse_ehlo(reply_to(name, "EHLO", 0)).has("STARTTLS")
    assert not parse_ehlo(reply_to(name, "EHLO", 1)).has("STARTTLS")


def test_lab_exim_submission_auth_only_after_tls():
    name = "lab-default/smtp-587-starttls-auth.txt"
    before, after = parse_ehlo(reply_to(name, "EHLO", 0)), parse_ehlo(reply_to(name, "EHLO", 1))
    assert before.auth_mechanisms == () and before.has("STARTTLS")
    assert after.auth_mechanisms == ("PLAIN", "LOGIN") and not after.has("STARTTLS")
    assert reply_to(name, "AUTH PLAIN", 0).code == 503
    failed = reply_to(name, "AUTH PLAIN", 1)
    assert (failed.code, failed.is_positive, failed.enhanced) == (535, False, None)


def test_lab_exim_permissive_submission_asks_for_auth_before_tls():
    name = "lab-permissive/smtp-587-starttls-auth.txt"
    challenge = reply_to(name, "AUTH PLAIN", 0)
    assert (challenge.code, challenge.lines) == (334, ("",))
    assert reply_to(name, "*").code == 501


@pytest.mark.parametrize("lab", ["lab-default", "lab-permissive"])
def test_lab_exim_implicit_tls_port_offers_auth_not_starttls(lab):
    ehlo = parse_ehlo(reply_to(f"{lab}/smtp-465-ehlo.txt", "EHLO"))
    assert ehlo.auth_mechanisms == ("PLAIN", "LOGIN")
    assert not ehlo.has("STARTTLS")


@pytest.mark.parametrize(
    ("lab", "vrfy", "expn"), [("lab-default", 252, 550), ("lab-permissive", 250, 250)]
)
def test_lab_exim_vrfy_expn_codes(lab, vrfy, expn):
    name = f"{lab}/smtp-25-vrfy-expn.txt"
    assert reply_to(name, "VRFY user@").code == vrfy
    assert reply_to(name, "EXPN").code == expn
    assert reply_to(name, "VRFY user").code == 501  # no domain: refused either way


def test_lab_exim_refuses_relay():
    name = "lab-default/smtp-25-relay.txt"
    relay = reply_to(name, "RCPT TO:<someone@")
    assert (relay.code, relay.enhanced, relay.is_positive) == (550, None, False)
    assert reply_to(name, "RCPT TO:<user@").code == 250


def test_postfix_enhanced_codes_and_relay_denied():
    name = "handwritten/smtp-postfix.txt"
    assert banner_name(replies(name)[0][1]) == "mail.example.com"
    ehlo = parse_ehlo(reply_to(name, "EHLO"))
    assert ehlo.has("ENHANCEDSTATUSCODES") and ehlo.has("VRFY") and ehlo.size == 10240000
    assert reply_to(name, "VRFY").enhanced == "2.0.0"
    relay = reply_to(name, "RCPT")
    assert (relay.code, relay.enhanced) == (554, "5.7.1")


def test_postscreen_multi_line_banner():
    banner = replies("handwritten/smtp-postfix-postscreen.txt")[0][1]
    assert banner.code == 220 and len(banner.lines) == 2
    assert banner_name(banner) == "mx.example.com"


def test_anonymous_banner_names_no_host_but_ehlo_does():
    name = "handwritten/smtp-postfix-anonymous.txt"
    assert banner_name(replies(name)[0][1]) is None
    assert parse_ehlo(reply_to(name, "EHLO")).name == "mail.example.com"


def test_m365_auth_after_starttls_and_exchange_banner():
    name = "handwritten/smtp-m365-submission.txt"
    assert banner_name(replies(name)[0][1]) == "AM0PR01CA0123.outlook.office365.com"
    assert parse_ehlo(reply_to(name, "EHLO", 0)).auth_mechanisms == ()
    after = parse_ehlo(reply_to(name, "EHLO", 1))
    assert after.auth_mechanisms == ("LOGIN", "XOAUTH2")
    assert after.size == 157286400
    assert reply_to(name, "STARTTLS").enhanced == "2.0.0"
    assert reply_to(name, "d3Jvbmc=").enhanced == "5.7.139"


def test_exchange_old_style_auth_is_merged():
    ehlo = parse_ehlo(reply_to("handwritten/smtp-exchange-onprem.txt", "EHLO"))
    assert ehlo.auth_mechanisms == ("NTLM", "LOGIN")
    assert ehlo.keywords["X-EXPS"] == ("GSSAPI", "NTLM")
    assert reply_to("handwritten/smtp-exchange-onprem.txt", "VRFY").code == 252


def test_gmail_multi_line_auth_failure():
    name = "handwritten/smtp-gmail.txt"
    assert banner_name(replies(name)[0][1]) == "smtp.gmail.com"
    ehlo = parse_ehlo(reply_to(name, "EHLO", 1))
    assert ehlo.greeting == "at your service, [203.0.113.5]"
    assert ehlo.auth_mechanisms[:2] == ("LOGIN", "PLAIN") and "XOAUTH2" in ehlo.auth_mechanisms
    failed = reply_to(name, "AUTH")
    assert (failed.code, failed.enhanced, len(failed.lines)) == (535, "5.7.8", 2)


def test_gmail_mx_four_line_550():
    failed = reply_to("handwritten/smtp-gmail-mx.txt", "RCPT")
    assert (failed.code, failed.enhanced, len(failed.lines)) == (550, "5.1.1", 4)


def test_qmail_single_line_ehlo():
    name = "handwritten/smtp-qmail.txt"
    assert banner_name(replies(name)[0][1]) == "mail.example.org"
    ehlo = parse_ehlo(reply_to(name, "EHLO"))
    assert (ehlo.name, ehlo.greeting, dict(ehlo.keywords)) == ("mail.example.org", "", {})


def test_sendmail_multi_line_banner_with_empty_line():
    name = "handwritten/smtp-multiline-banner.txt"
    banner = replies(name)[0][1]
    assert len(banner.lines) == 4 and banner.lines[2] == ""
    assert banner_name(banner) == "mail.example.net"
    ehlo = parse_ehlo(reply_to(name, "EHLO"))
    assert ehlo.size is None and ehlo.has("SIZE")
    assert ehlo.auth_mechanisms == ("DIGEST-MD5", "CRAM-MD5")


def test_quirks_lower_case_trailing_spaces_empty_last_line():
    name = "handwritten/smtp-quirks.txt"
    assert banner_name(replies(name)[0][1]) is None
    ehlo = parse_ehlo(reply_to(name, "EHLO"))
    assert ehlo.name == "relay.example.com"
    assert ehlo.size == 20480000
    assert ehlo.has("STARTTLS") and ehlo.has("8BITMIME")
    assert ehlo.auth_mechanisms == ("LOGIN", "PLAIN")
    assert set(ehlo.keywords) == {"SIZE", "STARTTLS", "AUTH", "8BITMIME"}
    bye = reply_to(name, "QUIT")
    assert (bye.code, bye.lines) == (221, ("",))


_code = st.sampled_from(["250", "220", "550", "199", "25", "abc", "250 ", "250-", "220-"])
_line = st.one_of(st.text(max_size=40), st.builds(lambda c, t: c + t, _code, st.text(max_size=20)))


@given(st.lists(_line, max_size=8))
def test_any_lines_parse_or_raise_smtp_reply_error(lines):
    for line in lines:
        with contextlib.suppress(SmtpReplyError):
            is_last_line(line)
    try:
        reply = parse_reply(lines)
    except SmtpReplyError:
        return
    banner_name(reply)
    _ = reply.enhanced, reply.text, reply.is_positive
    try:
        ehlo = parse_ehlo(reply)
    except SmtpReplyError:
        return
    _ = ehlo.size, ehlo.auth_mechanisms, ehlo.has("AUTH")

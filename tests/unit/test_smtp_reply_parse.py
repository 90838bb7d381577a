"""SMTP reply, EHLO and banner parsing (probes.parse.smtp_reply)."""

from __future__ import annotations

import contextlib

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

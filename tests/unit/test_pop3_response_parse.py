"""POP3 status and CAPA parsing (probes.parse.pop3_response)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.errors import ProtocolError
from probes.parse.pop3_response import (
    Pop3ResponseError,
    Status,
    is_multiline_end,
    parse_capa,
    parse_status,
    plaintext_login_offered,
)


def test_pop3_response_error_is_a_protocol_error():
    assert issubclass(Pop3ResponseError, ProtocolError)


@pytest.mark.parametrize(
    ("line", "status"),
    [
        ("+OK Dovecot ready.", Status(True, "Dovecot ready.")),
        ("-ERR [AUTH] Authentication failed.", Status(False, "[AUTH] Authentication failed.")),
        ("+OK", Status(True, "")),
        ("+OK ", Status(True, "")),
        ("+ok lower", Status(True, "lower")),
        ("-err nope", Status(False, "nope")),
    ],
)
def test_parse_status(line, status):
    assert parse_status(line) == status


@pytest.mark.parametrize("line", ["", "OK", "+OKAY", "-ERROR x", "+", " +OK", "* OK", "+OK\tx"])
def test_parse_status_rejects(line):
    with pytest.raises(Pop3ResponseError):
        parse_status(line)


def test_is_multiline_end():
    assert is_multiline_end(".")
    assert not is_multiline_end("..")
    assert not is_multiline_end(". ")
    assert not is_multiline_end("")


def test_parse_capa():
    capa = parse_capa(
        [
            "+OK Capability list follows",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "pipelining",
            "USER",
            "SASL PLAIN login",
            "STLS",
            "IMPLEMENTATION Dovecot 2.3",
            ".",
        ]
    )
    assert capa["SASL"] == ("PLAIN", "LOGIN")
    assert capa["STLS"] == ()
    assert capa["IMPLEMENTATION"] == ("Dovecot", "2.3")
    assert "PIPELINING" in capa and "TOP" in capa and "UIDL" in capa
    assert plaintext_login_offered(capa)


def test_parse_capa_dot_unstuffs():
    capa = parse_capa(
        [
            "+OK",
            "..X-DOTTED a",
            ".",
        ]
    )
    assert capa == {".X-DOTTED": ("a",)}


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["+OK"],
        ["+OK", "TOP"],
        ["-ERR not supported", "."],
        ["-ERR not supported"],
        ["+OK", ".", "TOP", "."],
        ["garbage", "."],
    ],
)
def test_parse_capa_rejects(lines):
    with pytest.raises(Pop3ResponseError):
        parse_capa(lines)


@pytest.mark.parametrize(
    ("capa", "offered"),
    [
        ({"USER": ()}, True),
        ({"SASL": ("PLAIN",)}, True),
        ({"SASL": ("LOGIN",)}, True),
        ({"SASL": ("SCRAM-SHA-256", "XOAUTH2")}, False),
        ({"STLS": (), "TOP": ()}, False),
        ({}, False),
    ],
)
def test_plaintext_login_offered(capa, offered):
    assert plaintext_login_offered(capa) is offered


def test_thousand_line_capa():
    capa = parse_capa(["+OK", *[f"X-{i}" for i in range(1000)], "."])
    assert len(capa) == 1000


_prefix = st.sampled_from(["+OK", "+OK ", "-ERR ", ".", "..", ""])
_line = st.builds(lambda p, t: p + t, _prefix, st.text(max_size=20))


@given(st.lists(_line, max_size=6))
def test_any_lines_parse_or_raise_pop3_response_error(lines):
    for line in lines:
        is_multiline_end(line)
        with contextlib.suppress(Pop3ResponseError):
            parse_status(line)
    try:
        capa = parse_capa(lines)
    except Pop3ResponseError:
        return
    plaintext_login_offered(capa)

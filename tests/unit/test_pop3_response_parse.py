"""POP3 status and CAPA parsing (probes.parse.pop3_response)."""

from __future__ import annotations

import contextlib
from pathlib import Path

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


# ----- transcripts (tests/data/transcripts: captured from the lab, and hand-written) ------------

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"
POP3_FILES = sorted(TRANSCRIPTS.glob("*/pop3-*.txt"))
LAB_BASE = {"CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"}


def exchanges(path: Path) -> list[tuple[str | None, list[str]]]:
    """(client line, or None for the greeting; the server lines answering it) of a transcript."""
    result: list[tuple[str | None, list[str]]] = [(None, [])]
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    for line in text.split("\n"):
        if line.startswith("C: "):
            result.append((line[3:], []))
        elif line.startswith("S: "):
            result[-1][1].append(line[3:])
    return result


def answers(name: str, command: str) -> list[list[str]]:
    return [
        lines
        for sent, lines in exchanges(TRANSCRIPTS / name)
        if sent is not None and sent.upper().startswith(command)
    ]


def test_transcripts_are_there():
    assert {path.parent.name for path in POP3_FILES} == {
        "lab-default",
        "lab-permissive",
        "handwritten",
    }


@pytest.mark.parametrize("path", POP3_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_transcript_response_parses_and_ends_where_the_door_stops(path):
    for command, lines in exchanges(path):
        status = parse_status(lines[0])
        if command == "CAPA" and status.ok:
            ends = [is_multiline_end(line) for line in lines[1:]]
            assert ends == [False] * (len(ends) - 1) + [True]
            parse_capa(lines)
        else:
            assert len(lines) == 1


@pytest.mark.parametrize("lab", ["lab-default", "lab-permissive"])
def test_lab_dovecot_greeting_and_stls(lab):
    name = f"{lab}/pop3-110-stls.txt"
    assert parse_status(exchanges(TRANSCRIPTS / name)[0][1][0]).ok
    assert parse_status(answers(name, "STLS")[0][0]).ok


def test_lab_dovecot_before_tls_offers_no_plaintext_login():
    name = "lab-default/pop3-110-stls.txt"
    capa = parse_capa(answers(name, "CAPA")[0])
    assert set(capa) == LAB_BASE | {"STLS", "SASL"}
    assert capa["SASL"] == ()  # SASL advertised with no mechanism at all
    assert not plaintext_login_offered(capa)
    assert not parse_status(answers(name, "USER")[0][0]).ok


def test_lab_dovecot_permissive_offers_user_before_tls():
    name = "lab-permissive/pop3-110-stls.txt"
    capa = parse_capa(answers(name, "CAPA")[0])
    assert set(capa) == LAB_BASE | {"STLS", "SASL", "USER"}
    assert capa["SASL"] == ("PLAIN", "LOGIN")
    assert plaintext_login_offered(capa)
    assert parse_status(answers(name, "USER")[0][0]).ok


@pytest.mark.parametrize("lab", ["lab-default", "lab-permissive"])
def test_lab_dovecot_after_stls_and_on_995(lab):
    for name, nth in ((f"{lab}/pop3-110-stls.txt", 1), (f"{lab}/pop3-995.txt", 0)):
        capa = parse_capa(answers(name, "CAPA")[nth])
        assert set(capa) == LAB_BASE | {"SASL", "USER"}
        assert capa["SASL"] == ("PLAIN", "LOGIN")
        assert parse_status(answers(name, "USER")[-1][0]).ok
        assert not parse_status(answers(name, "PASS")[0][0]).ok


def test_gmail_capa_parameters():
    capa = parse_capa(answers("handwritten/pop3-gmail.txt", "CAPA")[0])
    assert capa["EXPIRE"] == ("0",) and capa["LOGIN-DELAY"] == ("300",)
    assert capa["SASL"] == ("PLAIN", "XOAUTH2", "OAUTHBEARER")
    assert "STLS" not in capa and plaintext_login_offered(capa)


def test_exchange_offers_plaintext_before_tls():
    capa = parse_capa(answers("handwritten/pop3-exchange.txt", "CAPA")[0])
    assert capa["SASL"] == ("NTLM", "GSSAPI", "PLAIN")
    assert "STLS" in capa and "USER" in capa


def test_server_without_capa_answers_err():
    lines = answers("handwritten/pop3-no-capa.txt", "CAPA")[0]
    assert lines == ["-ERR Unknown command: CAPA"]
    assert not parse_status(lines[0]).ok
    with pytest.raises(Pop3ResponseError):
        parse_capa([*lines, "."])


def test_quirks_lower_case_dot_stuffing_empty_line():
    name = "handwritten/pop3-quirks.txt"
    assert parse_status(exchanges(TRANSCRIPTS / name)[0][1][0]) == Status(True, "pop3 ready")
    capa = parse_capa(answers(name, "CAPA")[0])
    assert capa == {"USER": (), "SASL": ("PLAIN",), ".X-DOT-STUFFED": ("yes",), "STLS": ()}
    assert parse_status(answers(name, "USER")[0][0]) == Status(False, "[SYS/TEMP] try later")


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

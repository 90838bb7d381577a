"""IMAP greeting, tagged and CAPABILITY response parsing (probes.parse.imap_response)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.errors import ProtocolError
from probes.parse.imap_response import (
    ImapResponseError,
    auth_mechanisms,
    is_tagged_done,
    login_allowed,
    parse_capabilities,
    parse_greeting,
    parse_tagged,
)


def test_imap_response_error_is_a_protocol_error():
    assert issubclass(ImapResponseError, ProtocolError)


def test_greeting_with_capability_code():
    greeting = parse_greeting(
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready."
    )
    assert greeting.status == "OK"
    assert greeting.capabilities == frozenset(
        {"IMAP4REV1", "SASL-IR", "LITERAL+", "STARTTLS", "LOGINDISABLED"}
    )
    assert greeting.text == "Dovecot ready."


@pytest.mark.parametrize(
    ("line", "status", "text"),
    [
        ("* OK IMAP4rev1 server ready", "OK", "IMAP4rev1 server ready"),
        ("* ok lower case", "OK", "lower case"),
        ("* PREAUTH [ALERT] logged in", "PREAUTH", "logged in"),
        ("* BYE too many connections", "BYE", "too many connections"),
        ("* OK", "OK", ""),
    ],
)
def test_greeting_without_capabilities(line, status, text):
    greeting = parse_greeting(line)
    assert (greeting.status, greeting.capabilities, greeting.text) == (status, None, text)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "*",
        "* NO go away",
        "+ OK",
        "a1 OK hi",
        "OK ready",
        "* OK [CAPABILITY IMAP4rev1",
        "* OK []",
    ],
)
def test_greeting_rejects_malformed(line):
    with pytest.raises(ImapResponseError):
        parse_greeting(line)


def test_greeting_rejects_a_literal():
    with pytest.raises(ImapResponseError):
        parse_greeting("* OK {12}")


def test_is_tagged_done_matches_only_the_completion():
    done = is_tagged_done("a1")
    assert done("a1 OK done")
    assert done("a1 no [AUTHENTICATIONFAILED] failed")
    assert done("a1 BAD what")
    assert not done("* CAPABILITY IMAP4rev1")
    assert not done("a2 OK other command")
    assert not done("a10 OK other command")
    assert not done("a1 CAPABILITY")
    assert not done("+ go ahead")
    assert not done("")


@pytest.mark.parametrize("tag", ["", "a 1", "a+", "a*", None])
def test_invalid_tag_is_a_caller_error(tag):
    with pytest.raises(ValueError):
        is_tagged_done(tag)


def test_parse_tagged_with_code():
    tagged = parse_tagged("a2 NO [AUTHENTICATIONFAILED] Authentication failed.", "a2")
    assert (tagged.tag, tagged.status, tagged.code, tagged.text) == (
        "a2",
        "NO",
        "AUTHENTICATIONFAILED",
        "Authentication failed.",
    )


def test_parse_tagged_without_code():
    tagged = parse_tagged("a3 ok Begin TLS negotiation now.", "a3")
    assert (tagged.status, tagged.code, tagged.text) == ("OK", None, "Begin TLS negotiation now.")


@pytest.mark.parametrize("line", ["a2 OK wrong tag", "a1 MAYBE", "* OK untagged", "a1 OK {5}"])
def test_parse_tagged_rejects(line):
    with pytest.raises(ImapResponseError):
        parse_tagged(line, "a1")


def test_capabilities_from_untagged_lines():
    caps = parse_capabilities(
        ["* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN", "* capability idle", "a1 OK done"], "a1"
    )
    assert caps == frozenset({"IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "IDLE"})


def test_capabilities_from_the_tagged_code():
    caps = parse_capabilities(["a1 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Logged in"], "a1")
    assert caps == frozenset({"IMAP4REV1", "AUTH=PLAIN"})


def test_capabilities_ignore_other_untagged_responses():
    caps = parse_capabilities(["* OK [ALERT] hi", "* CAPABILITY IMAP4rev1", "a1 OK"], "a1")
    assert caps == frozenset({"IMAP4REV1"})


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["* CAPABILITY IMAP4rev1"],
        ["* CAPABILITY IMAP4rev1", "a1 NO not now"],
        ["* CAPABILITY IMAP4rev1", "a1 BAD what"],
        ["a1 OK no data"],
        ["garbage", "a1 OK"],
        ["* CAPABILITY IMAP4rev1", "a1 OK", "* extra"],
        ["* CAPABILITY IMAP4rev1 {3}", "a1 OK"],
    ],
)
def test_capabilities_reject(lines):
    with pytest.raises(ImapResponseError):
        parse_capabilities(lines, "a1")


def test_capabilities_error_names_the_status():
    with pytest.raises(ImapResponseError, match="BAD"):
        parse_capabilities(["a1 BAD Error in IMAP command"], "a1")


def test_login_allowed_and_mechanisms():
    caps = frozenset({"IMAP4REV1", "AUTH=PLAIN", "AUTH=LOGIN", "LOGINDISABLED", "AUTH="})
    assert not login_allowed(caps)
    assert login_allowed({"IMAP4REV1", "auth=plain"})
    assert auth_mechanisms(caps) == ("LOGIN", "PLAIN")
    assert auth_mechanisms({"IMAP4REV1"}) == ()


def test_thousand_untagged_lines():
    lines = [f"* CAPABILITY X{i}" for i in range(1000)] + ["a1 OK"]
    assert len(parse_capabilities(lines, "a1")) == 1000


def test_non_ascii_greeting_text_is_kept():
    assert parse_greeting("* OK prêt \udcff").text == "prêt \udcff"


# ----- transcripts (tests/data/transcripts: captured from the lab, and hand-written) ------------

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"
IMAP_FILES = sorted(TRANSCRIPTS.glob("*/imap-*.txt"))
LAB_BEFORE_TLS = {"IMAP4REV1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+"}


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


def answer(name: str, tag: str) -> list[str]:
    return next(
        lines
        for sent, lines in exchanges(TRANSCRIPTS / name)
        if sent is not None and sent.split()[0] == tag
    )


def greeting(name: str):
    return parse_greeting(exchanges(TRANSCRIPTS / name)[0][1][0])


def test_transcripts_are_there():
    assert {path.parent.name for path in IMAP_FILES} == {
        "lab-default",
        "lab-permissive",
        "handwritten",
    }


@pytest.mark.parametrize("path", IMAP_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_transcript_response_parses_and_ends_where_the_door_stops(path):
    (_, greeting_lines), *commands = exchanges(path)
    assert len(greeting_lines) == 1
    parse_greeting(greeting_lines[0])
    for command, lines in commands:
        tag = command.split()[0]
        done = is_tagged_done(tag)
        assert [done(line) for line in lines] == [False] * (len(lines) - 1) + [True]
        parse_tagged(lines[-1], tag)
        if command.split()[1].upper() == "CAPABILITY":
            parse_capabilities(lines, tag)


@pytest.mark.parametrize("lab", ["lab-default", "lab-permissive"])
def test_lab_dovecot_greeting_carries_capabilities(lab):
    g = greeting(f"{lab}/imap-143-starttls.txt")
    assert g.status == "OK"
    assert g.capabilities == parse_capabilities(answer(f"{lab}/imap-143-starttls.txt", "a1"), "a1")


def test_lab_dovecot_before_tls_disables_login():
    caps = parse_capabilities(answer("lab-default/imap-143-starttls.txt", "a1"), "a1")
    assert caps == LAB_BEFORE_TLS | {"STARTTLS", "LOGINDISABLED"}
    assert not login_allowed(caps)
    assert auth_mechanisms(caps) == ()
    refused = answer("lab-default/imap-143-starttls.txt", "a2")
    assert len(refused) == 2  # an untagged "* BAD [ALERT]" precedes the tagged NO
    tagged = parse_tagged(refused[-1], "a2")
    assert (tagged.status, tagged.code) == ("NO", "PRIVACYREQUIRED")


def test_lab_dovecot_permissive_allows_login_before_tls():
    caps = parse_capabilities(answer("lab-permissive/imap-143-starttls.txt", "a1"), "a1")
    assert caps == LAB_BEFORE_TLS | {"STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN"}
    assert login_allowed(caps)
    assert auth_mechanisms(caps) == ("LOGIN", "PLAIN")
    tagged = parse_tagged(answer("lab-permissive/imap-143-starttls.txt", "a2")[-1], "a2")
    assert (tagged.status, tagged.code) == ("NO", "AUTHENTICATIONFAILED")


@pytest.mark.parametrize("lab", ["lab-default", "lab-permissive"])
def test_lab_dovecot_after_starttls(lab):
    name = f"{lab}/imap-143-starttls.txt"
    assert parse_tagged(answer(name, "a3")[-1], "a3").status == "OK"
    caps = parse_capabilities(answer(name, "a4"), "a4")
    assert caps == LAB_BEFORE_TLS | {"AUTH=PLAIN", "AUTH=LOGIN"}
    tagged = parse_tagged(answer(name, "a5")[-1], "a5")
    assert (tagged.status, tagged.code) == ("NO", "AUTHENTICATIONFAILED")


@pytest.mark.parametrize("lab", ["lab-default", "lab-permissive"])
def test_lab_dovecot_implicit_tls(lab):
    name = f"{lab}/imap-993.txt"
    caps = parse_capabilities(answer(name, "a1"), "a1")
    assert greeting(name).capabilities == caps
    assert "STARTTLS" not in caps and login_allowed(caps)
    assert auth_mechanisms(caps) == ("LOGIN", "PLAIN")
    assert parse_tagged(answer(name, "a2")[-1], "a2").code == "AUTHENTICATIONFAILED"


def test_lab_transcripts_hold_no_real_password():
    for path in IMAP_FILES:
        for command, _lines in exchanges(path):
            if command is not None and " LOGIN " in command.upper():
                assert command.endswith('"wrong"') or command.endswith(" wrong")


def test_courier_greeting_capabilities_and_plain_no():
    name = "handwritten/imap-courier.txt"
    g = greeting(name)
    assert "STARTTLS" in g.capabilities and "ACL2=UNION" in g.capabilities
    assert auth_mechanisms(g.capabilities) == ()
    tagged = parse_tagged(answer(name, "a2")[-1], "a2")
    assert (tagged.status, tagged.code) == ("NO", None)
    assert parse_tagged(answer(name, "a3")[-1], "a3").status == "OK"


def test_cyrus_capabilities_only_on_request():
    name = "handwritten/imap-cyrus.txt"
    assert greeting(name).capabilities is None
    caps = parse_capabilities(answer(name, "a1"), "a1")
    assert {"LOGINDISABLED", "STARTTLS", "RIGHTS=KXTEN", "COMPRESS=DEFLATE"} <= caps
    assert not login_allowed(caps)


def test_gmail_mechanisms():
    name = "handwritten/imap-gmail.txt"
    assert greeting(name).capabilities is None
    caps = parse_capabilities(answer(name, "a1"), "a1")
    assert auth_mechanisms(caps) == (
        "OAUTHBEARER",
        "PLAIN",
        "PLAIN-CLIENTTOKEN",
        "XOAUTH",
        "XOAUTH2",
    )
    assert parse_tagged(answer(name, "a2")[-1], "a2").code == "AUTHENTICATIONFAILED"


def test_exchange_greeting_trailing_bracket_is_text_not_code():
    g = greeting("handwritten/imap-exchange.txt")
    assert (g.status, g.capabilities) == ("OK", None)
    caps = parse_capabilities(answer("handwritten/imap-exchange.txt", "a1"), "a1")
    assert {"IMAP4", "IMAP4REV1"} <= caps
    assert auth_mechanisms(caps) == ("PLAIN", "XOAUTH2")


def test_quirks_lower_case_and_tagged_capability_code():
    name = "handwritten/imap-quirks.txt"
    g = greeting(name)
    assert g.capabilities == {"IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "LOGINDISABLED"}
    caps = parse_capabilities(answer(name, "a1"), "a1")
    assert caps == {"IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "LOGINDISABLED", "ID"}
    tagged = parse_tagged(answer(name, "a2")[-1], "a2")
    assert (tagged.status, tagged.code) == ("NO", "PRIVACYREQUIRED")


_prefix = st.sampled_from(
    ["* OK ", "* CAPABILITY ", "a1 OK ", "a1 NO ", "a1 ", "* ", "+ ", "[", ""]
)
_line = st.builds(lambda p, t: p + t, _prefix, st.text(max_size=30))


@given(st.lists(_line, max_size=6))
def test_any_lines_parse_or_raise_imap_response_error(lines):
    done = is_tagged_done("a1")
    for line in lines:
        done(line)
        for parse in (parse_greeting, lambda x: parse_tagged(x, "a1")):
            with contextlib.suppress(ImapResponseError):
                parse(line)
    try:
        caps = parse_capabilities(lines, "a1")
    except ImapResponseError:
        return
    login_allowed(caps)
    auth_mechanisms(caps)

"""IMAP greeting, tagged and CAPABILITY response parsing (probes.parse.imap_response)."""

from __future__ import annotations

import contextlib

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

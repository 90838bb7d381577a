"""probes.mail.compose: the test message's bytes, its token, and reading the token back."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re

import pytest

from probes.mail.compose import compose, new_token
from probes.parse.message_header import TOKEN_HEADER, find_token, header_fields

WHEN = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def message(**kw):
    args = {
        "token": "0123abcd",
        "header_from": "Probe <probe@example.test>",
        "to": "user@example.test",
        "mail_from": "bounce@example.test",
        "date": WHEN,
    }
    args.update(kw)
    return compose(**args)


def test_new_tokens_are_32_hex_digits_and_differ():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens)


def test_the_token_is_in_message_id_header_subject_and_body():
    msg = message()
    parsed = email.message_from_bytes(msg.raw, policy=email.policy.default)
    assert msg.message_id == "<0123abcd@example.test>"
    assert parsed["Message-ID"] == msg.message_id
    assert parsed[TOKEN_HEADER] == "0123abcd"
    assert "0123abcd" in parsed["Subject"]
    assert "0123abcd" in parsed.get_content()
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"] == "Sat, 01 Mar 2025 12:00:00 +0000"
    assert (msg.header_from, msg.rcpt_to, msg.mail_from) == (
        "probe@example.test",
        "user@example.test",
        "bounce@example.test",
    )


def test_every_line_ends_in_crlf():
    raw = message(body="one\ntwo\r\nthree").raw
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")


def test_the_same_inputs_give_the_same_bytes():
    assert message().raw == message().raw


def test_extra_headers_come_after_the_standard_ones():
    raw = message(extra_headers=[("X-Test", "1"), ("Reply-To", "r@example.test")]).raw
    names = [name for name, _ in header_fields(raw)]
    assert names[-2:] == ["X-Test", "Reply-To"]
    assert names[0] == "From"


def test_non_ascii_body_is_quoted_printable_utf8():
    msg = message(body="grüße\n")
    parsed = email.message_from_bytes(msg.raw, policy=email.policy.default)
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert parsed.get_content().replace("\r\n", "\n") == "grüße\n"
    assert msg.raw.isascii()


def test_non_ascii_display_name_and_subject_are_encoded_words():
    msg = message(header_from="Jürgen <probe@example.test>", subject_prefix="prüfung")
    assert msg.raw.isascii()
    parsed = email.message_from_bytes(msg.raw, policy=email.policy.default)
    assert parsed["From"].addresses[0].display_name == "Jürgen"
    assert parsed["Subject"].startswith("prüfung")


@pytest.mark.parametrize(
    "kw",
    [
        {"token": "bad token"},
        {"token": ""},
        {"token": "x" * 129},
        {"header_from": "no-domain"},
        {"header_from": "a@b.test, c@d.test"},
        {"to": "user@example.test\r\nBcc: x@evil.test"},
        {"subject_prefix": "x\nBcc: y@evil.test"},
        {"extra_headers": [("X-A", "v\r\nBcc: z@evil.test")]},
        {"extra_headers": [("Bad Name", "v")]},
    ],
)
def test_bad_input_raises_value_error(kw):
    with pytest.raises(ValueError):
        message(**kw)


def test_find_token_reads_the_token_header():
    assert find_token(message().raw) == "0123abcd"

"""probes.parse.message_header: reading a received message's header fields and its token."""

from __future__ import annotations

from probes.parse.message_header import find_token, header_fields


def test_find_token_reads_a_folded_header_with_lf_line_ends():
    raw = b"Received: from a\n\tby b\nX-Mailprobe-Token:\n  feedbeef\nSubject: x\n\nbody\n"
    assert find_token(raw) == "feedbeef"


def test_find_token_is_case_insensitive_on_the_field_name():
    assert find_token(b"x-mailprobe-token: abc123\r\n\r\n") == "abc123"


def test_find_token_falls_back_to_the_message_id():
    raw = b"Message-ID:\r\n <cafe01@example.test>\r\nSubject: s\r\n\r\nbody"
    assert find_token(raw) == "cafe01"


def test_find_token_ignores_the_body_and_foreign_message_ids():
    assert find_token(b"Message-ID: <a.b.c@x>\r\n\r\nX-Mailprobe-Token: 1234\r\n") is None
    assert find_token(b"") is None
    assert find_token(b"\x00\xff garbage") is None


def test_header_fields_unfold_and_stop_at_the_body():
    raw = b"From ignored mbox line\nA: 1\n  2\nB:3\n\nC: 4\n"
    assert header_fields(raw) == [("A", "1  2"), ("B", "3")]

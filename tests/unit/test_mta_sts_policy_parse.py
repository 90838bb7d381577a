"""The MTA-STS policy file parser (RFC 8461 §3.2) and mx pattern matching (§4.1). Pure."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.parse.mta_sts import (
    MAX_POLICY_BYTES,
    MtaStsPolicyError,
    mx_matches,
    parse_policy,
)

LINES = [
    "version: STSv1",
    "mode: enforce",
    "mode: testing",
    "mx: *.example.com",
    "mx: bad..name",
    "max_age: 86400",
    "max_age: x",
    "unknown: 1",
    " ",
    "no colon",
    "mode: none",
]
GOOD = b"version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n"


def test_a_valid_policy():
    policy = parse_policy(GOOD)
    assert (policy.version, policy.mode, policy.max_age) == ("STSv1", "enforce", 604800)
    assert policy.mx == ("mail.example.com", "*.example.net")
    assert policy.line_ends == "LF"
    assert policy.covers("MAIL.example.com.") and policy.covers("mx1.example.net")
    assert not policy.covers("example.net") and not policy.covers("a.b.example.net")


@pytest.mark.parametrize(
    ("data", "ends"),
    [
        (GOOD.replace(b"\n", b"\r\n"), "CRLF"),
        (b"version: STSv1\r\nmode: testing\nmx: a.example.com\r\nmax_age: 0", "mixed"),
        (b"  version :STSv1\n\nmode:none\n max_age:\t86400  \n", "LF"),
    ],
)
def test_line_ends_and_whitespace(data, ends):
    assert parse_policy(data).line_ends == ends


def test_unknown_keys_are_ignored_and_repeats_keep_the_first():
    policy = parse_policy(GOOD + b"future_key: anything\nmode: none\n")
    assert policy.mode == "enforce"
    assert policy.ignored == ("future_key", "mode (line 7, repeated)")


def test_a_utf8_bom_is_accepted():
    assert parse_policy(b"\xef\xbb\xbf" + GOOD).mode == "enforce"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"version: STSv1\nmode: enforce\nmx: \xff.example.com\nmax_age: 1\n", "not UTF-8"),
        (GOOD + b"#" * MAX_POLICY_BYTES, "larger than"),
        (b"mode: enforce\nmx: a.example.com\nmax_age: 1\n", "no `version`"),
        (b"version: STSv2\nmode: enforce\nmx: a.example.com\nmax_age: 1\n", "not STSv1"),
        (b"version: STSv1\nmx: a.example.com\nmax_age: 1\n", "no `mode`"),
        (b"version: STSv1\nmode: strict\nmx: a.example.com\nmax_age: 1\n", "not enforce"),
        (b"version: STSv1\nmode: enforce\nmx: a.example.com\n", "no `max_age`"),
        (b"version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 31557601\n", "one year"),
        (b"version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: -1\n", "digits"),
        (b"version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 12345678901\n", "digits"),
        (b"version: STSv1\nmode: enforce\nmax_age: 86400\n", "no `mx`"),
        (b"version: STSv1\nmode: enforce\nmx: *.*.example.com\nmax_age: 1\n", "mx"),
        (b"version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1\n", "mx"),
        (b"version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age 1\n", "key: value"),
        (b"version: STSv1\rmode: enforce\nmx: a.example.com\nmax_age: 1\n", "CR"),
        (b"<html><body>Not found</body></html>", "key: value"),
        (b"", "no `version`"),
    ],
)
def test_invalid_policies_name_the_reason(data, reason):
    with pytest.raises(MtaStsPolicyError, match=reason):
        parse_policy(data)


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.Example.COM.", True),
        ("mail.example.com.", "mail.example.com", True),
        ("*.example.com", "mx1.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
        ("mail.example.com", "mail.example.org", False),
        ("", "mail.example.com", False),
    ],
)
def test_mx_patterns(pattern, host, matches):
    assert mx_matches(pattern, host) is matches


@given(st.binary(max_size=300))
def test_any_bytes_give_a_policy_or_the_documented_error(data):
    with contextlib.suppress(MtaStsPolicyError):
        parse_policy(data)


@given(st.lists(st.sampled_from(LINES), max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_line_soup_never_crashes(lines, end):
    try:
        policy = parse_policy(end.join(lines).encode())
    except MtaStsPolicyError:
        return
    assert policy.mode in ("enforce", "testing", "none")

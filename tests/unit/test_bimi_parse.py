"""The BIMI record parser and the SVG Tiny PS logo checks. Pure; hostile XML is refused."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.parse.bimi import BimiSyntaxError, check_svg, is_bimi_record, parse_record

LOGO = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" '
    b'viewBox="0 0 64 64"><title>Example</title><rect width="64" height="64" fill="#123"/>'
    b'<use href="#r"/></svg>'
)


def test_a_valid_record():
    record = parse_record("v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/v.pem")
    assert record.logo == "https://example.com/logo.svg"
    assert record.authority == "https://example.com/v.pem"
    assert not record.declined


def test_declining_and_unknown_tags():
    record = parse_record("v=BIMI1; l=; a=; x=1;")
    assert record.declined and record.ignored == ("x",)


@pytest.mark.parametrize(
    "text",
    [
        "v=bimi1; l=https://e.example/l.svg",
        "v=BIMI1 l=https://e.example/l.svg",
        "v=BIMI1; l=http://e.example/l.svg",
        "v=BIMI1; l=https://a.example/1.svg,https://b.example/2.svg",
        "v=BIMI1; l=https://e.example/l.svg; l=https://e.example/m.svg",
        "v=BIMI1; l",
        "v=BIMI1; l=https:///nohost.svg",
        "v=BIMI1; l=https://e.example/é.svg",
    ],
)
def test_invalid_records(text):
    assert is_bimi_record(text)
    with pytest.raises(BimiSyntaxError):
        parse_record(text)


def test_a_good_logo_passes():
    check = check_svg(LOGO)
    assert check.problems == () and check.title == "Example"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ((b'baseProfile="tiny-ps"', b'baseProfile="tiny"'), "baseProfile"),
        ((b'version="1.2"', b'version="1.1"'), "version"),
        ((b"<title>Example</title>", b""), "no <title>"),
        ((b"<title>Example</title>", b"<title> </title>"), "no <title>"),
        ((b"</svg>", b"<script>alert(1)</script></svg>"), "<script>"),
        ((b"</svg>", b'<animate attributeName="x"/></svg>'), "animation"),
        ((b'<use href="#r"/>', b'<use href="https://evil.example/x.svg#a"/>'), "outside"),
        (
            (
                b'<use href="#r"/>',
                b'<use xmlns:x="http://www.w3.org/1999/xlink" x:href="http://e/"/>',
            ),
            "outside",
        ),
        ((b'fill="#123"', b'fill="#123" onclick="x()"'), "event handler"),
        ((b'fill="#123"', b'fill="url(https://e.example/p)"'), "outside"),
        ((b'<svg xmlns="http://www.w3.org/2000/svg"', b"<svg"), "SVG namespace"),
        ((b"</svg>", b"</svg"), "well-formed"),
    ],
)
def test_logo_problems(change, problem):
    data = LOGO.replace(*change)
    check = check_svg(data)
    assert any(problem in p for p in check.problems), check.problems


def test_billion_laughs_is_refused_not_expanded():
    bomb = (
        b'<?xml version="1.0"?>\n<!DOCTYPE svg [\n<!ENTITY a "lol">\n'
        + b"".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n'.encode()
            for i in range(9)
        )
        + b']>\n<svg xmlns="http://www.w3.org/2000/svg"><title>&j;</title></svg>'
    )
    check = check_svg(bomb)
    assert check.problems == ("the file has a DTD or entity declarations (not allowed)",)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (LOGO + b" " * 40000, "more than"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        ("<svg/>".encode("utf-16"), "not UTF-8"),
        (b"GIF89a", "not XML"),
        (b"", "not XML"),
        (b'<!doctype svg SYSTEM "http://e.example/x.dtd"><svg/>', "DTD"),
    ],
)
def test_hostile_or_wrong_files(data, problem):
    check = check_svg(data)
    assert any(problem in p for p in check.problems), check.problems


@given(st.binary(max_size=400))
def test_any_bytes_give_a_check_never_an_exception(data):
    assert isinstance(check_svg(data).problems, tuple)


@given(st.text(max_size=120))
def test_any_record_text_parses_or_raises_the_documented_error(text):
    with contextlib.suppress(BimiSyntaxError):
        parse_record("v=BIMI1; " + text)


def test_deep_nesting_is_checked_without_recursion_trouble():
    deep = LOGO.replace(b"<title>", b"<g>" * 5000 + b"</g>" * 5000 + b"<title>")
    assert check_svg(deep, limit=10**6).problems == ()

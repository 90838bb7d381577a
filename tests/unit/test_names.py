"""Domain names from users are validated and normalized before any DNS question."""

from __future__ import annotations

import pytest

from probes.names import InvalidDomain, normalize_domain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("  mail.example.org ", "mail.example.org"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_valid_names_are_normalized(text, expected):
    assert normalize_domain(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "localhost",
        "a..b",
        "exa mple.com",
        "-bad.example.com",
        "bad-.example.com",
        "a" * 64 + ".example.com",
        ".".join(["abcdefghi"] * 30),
        "192.0.2.1",
        "ex@mple.com",
        "exa\x00mple.com",
    ],
)
def test_invalid_names_are_refused_with_a_reason(text):
    with pytest.raises(InvalidDomain) as info:
        normalize_domain(text)
    assert str(info.value)

"""Domain names from users are validated and normalized before any DNS question."""

from __future__ import annotations

import re

import pytest

from probes.names import InvalidDomain, normalize_domain, normalize_selector


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


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a-.test", "label 'a-' begins or ends with '-'"),
        ("-a.test", "label '-a' begins or ends with '-'"),
        ("a!b.test", "label 'a!b' has '!'"),
        ("xn--zz.test", "label 'xn--zz' is not a valid A-label"),
        ("x" * 64 + ".test", "is longer than 63 characters"),
    ],
)
def test_a_bad_label_is_named_with_what_is_wrong_with_it(text, problem):
    with pytest.raises(InvalidDomain, match=re.escape(problem)):
        normalize_domain(text)


def test_a_valid_a_label_is_kept():
    assert normalize_domain("XN--FA-HIA.test") == "xn--fa-hia.test"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("s1", "s1"), ("Sel.Sub", "sel.sub"), ("sélecteur", "xn--slecteur-b1a"), ("k_1", "k_1")],
)
def test_selectors_are_labels_in_a_label_form(text, expected):
    assert normalize_selector(text) == expected


@pytest.mark.parametrize("text", ["", "bad sel", "-x", "a..b", "x!"])
def test_a_selector_that_is_no_dns_name_is_refused(text):
    with pytest.raises(InvalidDomain):
        normalize_selector(text)

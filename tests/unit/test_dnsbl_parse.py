"""probes.parse.dnsbl: RFC 5782 query names (IPv4 reversed, IPv6 nibbles, domains), the test
entries, what an answer means (refusal codes never read as a listing) and TXT reasons."""

from __future__ import annotations

import ipaddress

import pytest

from probes.parse.dnsbl import (
    BOGUS,
    LISTED,
    NOT_LISTED,
    REFUSED,
    classify,
    domain_query_name,
    domain_test_names,
    ip_query_name,
    ip_test_names,
    list_problem,
    reason_text,
)

ZEN = "zen.spamhaus.org"


@pytest.mark.parametrize(
    ("ip", "name"),
    [
        ("192.0.2.99", "99.2.0.192.zen.spamhaus.org"),
        ("127.0.0.2", "2.0.0.127.zen.spamhaus.org"),
        # RFC 5782 §2.4's own example
        (
            "2001:db8:1:2:3:4:567:89ab",
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org",
        ),
        (
            "2001:db8::1",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org",
        ),
        ("::ffff:192.0.2.99", "99.2.0.192.zen.spamhaus.org"),  # IPv4-mapped: asked as IPv4
    ],
)
def test_ip_query_names(ip, name):
    assert ip_query_name(ip, ZEN) == name
    assert ip_query_name(ipaddress.ip_address(ip), ZEN + ".") == name


def test_an_ipv6_query_name_has_32_nibbles():
    labels = ip_query_name("2001:db8::1", "bl.test").split(".")
    assert len(labels) == 34 and all(len(label) == 1 for label in labels[:32])


def test_a_value_that_is_not_an_address_is_a_value_error():
    with pytest.raises(ValueError):
        ip_query_name("192.0.2.0/24", ZEN)


def test_domain_query_names():
    assert domain_query_name("Example.COM.", "dbl.spamhaus.org") == "example.com.dbl.spamhaus.org"


def test_test_entries_of_ip_lists_per_family():
    assert ip_test_names("bl.test", 4) == ("2.0.0.127.bl.test", "1.0.0.127.bl.test")
    listed, clean = ip_test_names("bl.test", 6)
    # ::ffff:7f00:2 in nibbles: the IPv6 test entry stays IPv6, not asked as 127.0.0.2
    assert listed == "2.0.0.0.0.0.f.7.f.f.f.f." + "0." * 20 + "bl.test"
    assert clean.startswith("1.0.0.0.0.0.f.7.f.f.f.f.")


def test_test_entries_of_domain_lists():
    assert domain_test_names("dbl.test") == ("test.dbl.test", "invalid.dbl.test")
    assert domain_test_names("dbl.spamhaus.org") == (
        "dbltest.com.dbl.spamhaus.org",
        "invalid.dbl.spamhaus.org",
    )


@pytest.mark.parametrize(
    ("records", "kind"),
    [
        ((), NOT_LISTED),
        (("127.0.0.2",), LISTED),
        (("127.0.0.4", "127.0.0.10"), LISTED),
        (("127.0.1.2",), LISTED),
        # Spamhaus' refusal codes: never a listing
        (("127.255.255.252",), REFUSED),
        (("127.255.255.254",), REFUSED),
        (("127.255.255.255",), REFUSED),
        (("127.0.0.2", "127.255.255.254"), REFUSED),  # a refusal wins over listing codes
        (("127.0.0.1",), REFUSED),  # URIBL/SURBL: blocked resolver
        # anything outside 127/8 (a dead list answering with a web server) or not IPv4
        (("192.0.2.80",), BOGUS),
        (("127.0.0.2", "198.51.100.1"), BOGUS),
        (("::1",), BOGUS),
        (("not an address",), BOGUS),
        (("mx.example.com",), BOGUS),
    ],
)
def test_classify(records, kind):
    verdict = classify(records, ZEN)
    assert verdict.kind == kind
    assert verdict.listed is (kind == LISTED)


def test_a_lists_own_refusal_codes():
    assert classify(("127.0.1.255",), "dbl.spamhaus.org").kind == REFUSED
    assert classify(("127.0.1.255",), "other.example").kind == LISTED


def test_listing_codes_are_sorted_numerically():
    assert classify(("127.0.0.10", "127.0.0.2"), ZEN).codes == ("127.0.0.2", "127.0.0.10")


def test_a_hostile_answer_is_shown_escaped_and_bounded():
    verdict = classify(("\x1b[31m" + "x" * 500,), ZEN)
    assert verdict.kind == BOGUS
    assert "\x1b" not in verdict.why and len(verdict.codes[0]) <= 64


LISTED_TEST = classify(("127.0.0.2",), ZEN)
CLEAN_TEST = classify((), ZEN)


def test_a_list_whose_test_entries_answer_right_is_usable():
    assert list_problem(LISTED_TEST, CLEAN_TEST, "t2", "t1") is None


@pytest.mark.parametrize(
    ("listed", "clean", "words"),
    [
        (("127.255.255.254",), ("127.255.255.254",), "refusal code"),
        (("127.0.0.2",), ("127.0.0.2",), "answers every name"),
        ((), (), "does not list its positive test entry"),
        (("192.0.2.80",), ("192.0.2.80",), "outside|not a return code"),
    ],
)
def test_why_a_list_is_unusable(listed, clean, words):
    problem = list_problem(classify(listed, ZEN), classify(clean, ZEN), "t2", "t1")
    assert problem is not None
    assert any(w in problem for w in words.split("|"))


def test_reason_text_escapes_control_characters_and_is_bounded():
    text = reason_text(["Listed\r\n\x00 see https://example.test/?ip=1", "x" * 1000])
    assert "\r" not in text and "\n" not in text and "\x00" not in text
    assert "\\r\\n\\x00" in text
    assert len(text) <= 300 and text.endswith("…")
    assert reason_text([]) == ""

"""The SPF record parser (probes.parse.spf): RFC 7208 syntax, pure, every error named."""

from __future__ import annotations

import pytest

from probes.parse import spf


def errors_of(text: str) -> list[str]:
    return [e.term for e in spf.parse(text).errors]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=spf1", True),
        ("v=spf1 -all", True),
        ("V=SpF1 ~all", True),
        (b"v=spf1 mx", True),
        ("v=spf10 -all", False),
        ("v=spf1-all", False),
        ("spf1 -all", False),
        (" v=spf1 -all", False),
        ("", False),
    ],
)
def test_version_must_be_followed_by_a_space_or_the_end(text, expected):
    assert spf.is_spf(text) is expected


def test_not_an_spf_record_raises_the_documented_error():
    with pytest.raises(spf.NotSpfError):
        spf.parse("v=DMARC1; p=none")


def test_a_full_valid_record_parses_every_mechanism_and_modifier():
    record = spf.parse(
        "v=spf1 +a -mx:mail.example.com/24//64 ~ptr:example.org ?ip4:192.0.2.0/24 "
        "ip6:2001:db8::/32 include:_spf.example.net exists:%{i}.bl.example.com "
        "a:%{d}.example.com mx//64 redirect=_spf.example.com exp=explain.%{d} "
        "moo.cow-far_out=man:dog/cat -all"
    )
    assert record.ok, record.errors
    names = [t.name for t in record.terms]
    assert names == [
        "a",
        "mx",
        "ptr",
        "ip4",
        "ip6",
        "include",
        "exists",
        "a",
        "mx",
        "redirect",
        "exp",
        "moo.cow-far_out",
        "all",
    ]
    mx = record.mechanisms[1]
    assert (mx.qualifier, mx.domain_spec, mx.cidr4, mx.cidr6) == ("-", "mail.example.com", 24, 64)
    assert record.mechanisms[3].network == "192.0.2.0"
    assert record.mechanisms[3].cidr4 == 24
    assert record.mechanisms[4].cidr6 == 32
    assert record.all is not None and record.all.result == "fail"


def test_terms_are_separated_by_one_or_more_spaces_and_trailing_space_is_fine():
    assert spf.parse("v=spf1  a   -all ").ok
    assert [t.name for t in spf.parse("v=spf1  a   -all ").terms] == ["a", "all"]


@pytest.mark.parametrize(
    "term",
    [
        "moo",  # unknown mechanism
        "redirect:example.com",  # a modifier written as a mechanism
        "moo.cow/far_out=man:dog/cat",  # "=" after "/" is not a modifier
        "moo.cow:far_out=man:dog/cat",
        "1up=foo",  # a modifier name begins with a letter
        "=all",
        "-all.",
        "-all:foobar",
        "-all/8",
        "include",
        "include:",
        "include:example.com/24",
        "exists",
        "exists:",
        "exists:mail.example.com/24",
        "ptr/0",
        "ptr:",
        "a:",
        "a/33",
        "a//129",
        "a/24/64",
        "a/024",
        "a:foo-bar",  # no top label
        "a:museum",
        "a:museum.",
        "a:abc.123",  # numeric top label
        "a:example.-com",
        "a:example.com:8080",
        "a:111.222.33.44",
        "a:mail.example...com",  # empty label in a literal name
        "a:" + "a" * 64 + ".example.com",  # label over 63
        "mx:",
        "mx/33",
        "mx:abc.123",
        "ip4",
        "ip4:1.2.3.4/33",
        "ip4:1.2.3.4/032",
        "ip4:1.2.3.4//32",
        "ip4:1.2.3.4:8080",
        "ip4:1.2.3",
        "ip4:1.2.03.4",
        "ip4:256.1.1.1",
        "ip6",
        "ip6:::1.1.1.1/129",
        "ip6:::1.1.1.1//33",
        "ip6::CAFE::BABE",
        "ip6:fe80::1%eth0",
        "exp=",
        "exp=-all",
        "redirect=",
        "redirect=-all",
        "foo=%abc",  # bad macro in an unknown modifier
        "exp=%{r}.example.com",  # c, r, t only in explanation text
        "exists:%(ir).sbl.example.com",
        "exists:foo%.sbl.example.com",
        "a:%{a}.example.com",  # unknown macro letter
        "a:%{d0}.example.com",  # zero parts
        "a:%{d.example.com",  # unclosed
        "a:%{d*}.example.com",  # bad delimiter
    ],
)
def test_each_malformed_term_is_a_syntax_error_naming_that_term(term):
    record = spf.parse(f"v=spf1 ip4:192.0.2.1 {term} -all")
    assert not record.ok
    assert [e.term for e in record.errors] == [term]
    assert record.errors[0].reason


@pytest.mark.parametrize(
    "term",
    [
        "a:foo:bar/baz.example.com",  # ':' and '/' may appear in a domain-spec
        "a:foo.example.xn--zckzah",  # dashes in the top label
        "a:mail.example.com.",  # trailing dot
        "a:%{H}.bar",
        "a:macro%%percent%_%_space%-url-space.example.com",
        "exists:%{i}.%{l2r-}.user.%{d2}",
        "exists:%{l2r+-}.user.%{d2}",
        "-exists:%{ir}.%{v}._spf.%{d2}",
        "include:%{d}",  # ends with a macro-expand
        "a:foo%%",  # "%%" is a macro-expand too
        "ptr",
        "ptr:example.com",
        "a//0",
        "a/0",
        "mx/0//0",
        "ip4:0.0.0.0/0",
        "ip6:::/0",
        "ip6:::FFFF:1.2.3.4",
        "ip6:Cafe:Babe:8000::/33",
        "IP4:192.0.2.1",
        "Include:example.com",
        "default=+",
        "moo=",
        "exp=explain._spf.%{d}",
    ],
)
def test_valid_terms_are_accepted(term):
    record = spf.parse(f"v=spf1 {term} -all")
    assert record.ok, record.errors


def test_every_error_in_the_record_is_collected():
    record = spf.parse("v=spf1 a:foo-bar ip4:1.2.3 -all moo")
    assert [e.term for e in record.errors] == ["a:foo-bar", "ip4:1.2.3", "moo"]


def test_redirect_and_exp_may_appear_only_once():
    assert errors_of("v=spf1 redirect=a.example.com redirect=b.example.com") == [
        "redirect=b.example.com"
    ]
    assert errors_of("v=spf1 exp=a.example.com -all exp=b.example.com") == ["exp=b.example.com"]


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("v=spf1 a:\ufeffgarbage.example.net -all", "a:\ufeffgarbage.example.net"),
        ("v=spf1 \x80a:example.net -all", "\x80a:example.net"),
        ("v=spf1 a:example.net \x96all", "\x96all"),
        ("v=spf1 a:ctrl.example.com\rptr -all", "a:ctrl.example.com\rptr"),
        ("v=spf1 ip4:192.0.2.5\n include:x.example.com", "ip4:192.0.2.5\n"),
        ("v=spf1 a:foo.example.com\0", "a:foo.example.com\0"),
        ("v=spf1 a\t-all", "a\t-all"),
        ("v=spf1 include:b\u00fccher.example -all", "include:b\u00fccher.example"),
    ],
)
def test_non_ascii_and_control_characters_are_syntax_errors(text, bad):
    record = spf.parse(text)
    assert [e.term for e in record.errors] == [bad]


def test_evaluated_terms_stop_at_all_and_redirect_is_ignored_with_all():
    record = spf.parse("v=spf1 a include:x.example.com -all mx redirect=r.example.com")
    assert [t.name for t in record.evaluated_terms] == ["a", "include", "all"]
    assert record.redirect is None
    assert [t.name for t in record.lookup_terms] == ["a", "include"]
    record = spf.parse("v=spf1 ip4:192.0.2.1 ptr exists:%{i}.x.example redirect=r.example.com")
    assert [t.name for t in record.lookup_terms] == ["ptr", "exists", "redirect"]
    assert record.redirect is not None and record.redirect.value == "r.example.com"


def test_ip4_ip6_and_all_do_not_count_as_lookups():
    record = spf.parse("v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 exp=x.example.com -all")
    assert record.lookup_terms == ()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("_spf.example.com", "_spf.example.com"),
        ("_spf.%{d}", "_spf.example.org"),
        ("%{d2}.x.test", "example.org.x.test"),
        ("%{dr}.rev.test", "org.example.rev.test"),
        ("%{o}.x.test", "orig.example.test.x.test"),
        ("%{D}.x.test", "example.org.x.test"),
        ("Mixed.Case.TEST.", "mixed.case.test"),
        ("%{i}.bl.example.com", None),
        ("%{l}.users.%{d}", None),
        ("%{h}.helo.test", None),
    ],
)
def test_static_expansion_knows_only_the_domain_macros(spec, expected):
    got = spf.expand_static(spec, domain="example.org", original="orig.example.test")
    assert got == expected


def test_static_expansion_truncates_long_names_from_the_left():
    got = spf.expand_static(("%{d}." * 8) + "example.com", domain="a" * 40 + ".example")
    assert got is not None and len(got) <= 253 and got.endswith(".example.com")


def test_a_10kb_record_parses_quickly_and_completely():
    text = "v=spf1 " + " ".join(f"ip4:192.0.{i // 256 % 256}.{i % 256}" for i in range(700))
    assert len(text) > 10_000
    record = spf.parse(text + " -all")
    assert record.ok
    assert len(record.terms) == 701


def test_error_text_escapes_what_it_quotes_and_stays_short():
    record = spf.parse("v=spf1 a:" + "x\x01" * 200 + ".example.com")
    message = str(record.errors[0])
    assert "\x01" not in message
    assert len(message) < 300

"""The pure DMARC parser and DNS Tree Walk (RFC 9989 §4.7, §4.8, §4.10)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.parse.dmarc import (
    UNKNOWN,
    NotDmarcRecord,
    agreed,
    discover_policy,
    domain_name,
    effective_policy,
    is_dmarc_record,
    looks_like_dmarc,
    organizational_domain,
    parse,
    parse_report_uri,
    walk,
    walk_names,
)


def problem_tags(text: str) -> list[str]:
    return [p.tag for p in parse(text).problems]


# --- what a DMARC record is -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["v=DMARC1; p=reject", "v=DMARC1", "v=DMARC1;", "v = DMARC1 ; p=none", "v=DMARC1\t;p=none"],
)
def test_records_starting_with_the_version_tag_are_dmarc_records(text):
    assert is_dmarc_record(text)


@pytest.mark.parametrize(
    "text",
    [
        "v=dmarc1; p=reject",  # the version value is case-sensitive
        " v=DMARC1; p=reject",  # the record starts with v=
        "p=reject; v=DMARC1",  # v must come first
        "v=DMARC1 p=reject",  # no separator: the version is "DMARC1 p=reject"
        "v=DMARC10; p=reject",
        "v=spf1 -all",
        "",
    ],
)
def test_other_text_is_not_a_dmarc_record(text):
    assert not is_dmarc_record(text)
    with pytest.raises(NotDmarcRecord):
        parse(text)


def test_near_misses_are_recognisable_for_evidence():
    assert looks_like_dmarc("v=dmarc1; p=reject")
    assert looks_like_dmarc("p=reject; v=DMARC1")
    assert not looks_like_dmarc("v=spf1 -all")


# --- tags -------------------------------------------------------------------------------------


def test_a_full_valid_record_has_no_problems_and_normalised_values():
    record = parse(
        "v=DMARC1; p=Reject; sp=quarantine; np=reject; adkim=s; aspf=R; psd=n; t=n; "
        "fo=1:d; rua=mailto:agg@example.com, mailto:b@example.org!10m; "
        "ruf=mailto:forensic@example.com;"
    )
    assert record.problems == ()
    assert record.unknown_tags == ()
    assert (record.p, record.sp, record.np) == ("reject", "quarantine", "reject")
    assert (record.adkim, record.aspf, record.psd, record.t) == ("s", "r", "n", "n")
    assert record.fo == ("1", "d")
    assert [u.host for u in record.rua] == ["example.com", "example.org"]
    assert record.rua[1].size == "10m"
    assert [u.host for u in record.ruf] == ["example.com"]


def test_p_is_optional_in_rfc_9989():
    record = parse("v=DMARC1; rua=mailto:a@example.com")
    assert record.p is None
    assert record.problems == ()


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("v=DMARC1; p=block", "p"),
        ("v=DMARC1; p=reject; sp=yes", "sp"),
        ("v=DMARC1; p=reject; np=0", "np"),
        ("v=DMARC1; p=reject; adkim=relaxed", "adkim"),
        ("v=DMARC1; p=reject; aspf=x", "aspf"),
        ("v=DMARC1; p=reject; pct=101", "pct"),
        ("v=DMARC1; p=reject; pct=-1", "pct"),
        ("v=DMARC1; p=reject; pct=5O", "pct"),
        ("v=DMARC1; p=reject; ri=soon", "ri"),
        ("v=DMARC1; p=reject; ri=99999999999", "ri"),
        ("v=DMARC1; p=reject; fo=2", "fo"),
        ("v=DMARC1; p=reject; fo=1:x", "fo"),
        ("v=DMARC1; p=reject; rf=af rf", "rf"),
        ("v=DMARC1; p=reject; psd=maybe", "psd"),
        ("v=DMARC1; p=reject; t=true", "t"),
        ("v=DMARC1; p=reject; rua=dmarc@example.com", "rua"),
        ("v=DMARC1; p=reject; rua=mailto:example.com", "rua"),
        ("v=DMARC1; p=reject; rua=mailto:a@exa mple.com", "rua"),
        ("v=DMARC1; p=reject; rua=mailto:a@example.com!big", "rua"),
        ("v=DMARC1; p=reject; rua=mailto:a@example.com,", "rua"),
        ("v=DMARC1; p=reject; ruf=mailto:a@-bad-.com", "ruf"),
        ("v=DMARC1; p=reject; rua=", "rua"),
        ("v=DMARC1; p=reject; p=none", "p"),
        ("v=DMARC1; p=reject; adkim", "adkim"),
        ("v=DMARC1; p=reject; x-y=1", "x-y"),
        ("v=DMARC1; p=réject", "p"),
        ("v=DMARC1; p=reject; rua=mailto:a@exämple.com\x01", "rua"),
    ],
)
def test_bad_values_name_the_tag(text, tag):
    assert tag in problem_tags(text)


def test_keyword_values_are_case_insensitive_but_the_version_is_not():
    assert parse("v=DMARC1; p=QUARANTINE; ADKIM=S").problems == ()
    assert parse("v=DMARC1; p=QUARANTINE; ADKIM=S").adkim == "s"


def test_the_rfc_7489_tags_are_obsolete_but_still_checked():
    record = parse("v=DMARC1; p=reject; pct=50; rf=afrf; ri=86400")
    assert record.obsolete_tags == ("pct", "rf", "ri")
    assert (record.pct, record.rf, record.ri) == (50, ("afrf",), 86400)
    assert record.problems == ()


def test_unknown_tags_are_listed_not_errors():
    record = parse("v=DMARC1; p=reject; foo=bar; xyz=1")
    assert record.unknown_tags == ("foo", "xyz")
    assert record.problems == ()


def test_empty_segments_and_a_trailing_separator_are_tolerated():
    assert parse("v=DMARC1;; p=reject; ;").problems == ()


def test_an_invalid_psd_value_reads_as_the_default_for_the_walk():
    assert parse("v=DMARC1; p=reject; psd=maybe").psd_flag == "u"
    assert parse("v=DMARC1; p=reject; psd=Y").psd_flag == "y"


def test_report_uris_other_than_mailto_are_accepted_with_their_host():
    uri, problem = parse_report_uri("https://reports.example.net/dmarc")
    assert problem is None and uri is not None
    assert (uri.scheme, uri.host) == ("https", "reports.example.net")


def test_internationalised_report_domains_become_a_labels():
    uri, problem = parse_report_uri("mailto:dmarc@bücher.example")
    # non-ASCII characters must be percent-encoded in a URI: this is a syntax error
    assert uri is None and problem
    assert domain_name("Bücher.Example.") == "xn--bcher-kva.example"


def test_a_10_kb_record_parses_in_bounded_form():
    record = parse("v=DMARC1; p=reject; " + "; ".join(f"t{i}=v" for i in range(2000)))
    assert len(record.unknown_tags) <= 50
    garbage = parse("v=DMARC1; p=reject; " + "x" * 10_000)
    assert len(garbage.problems) == 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_never_fails_on_a_dmarc_record_whatever_follows(rest):
    record = parse("v=DMARC1;" + rest)
    assert record.text.startswith("v=DMARC1")


# --- the tree walk ----------------------------------------------------------------------------


def test_walk_names_go_up_one_label_at_a_time_to_the_tld():
    assert walk_names("a.mail.example.com") == (
        "a.mail.example.com",
        "mail.example.com",
        "example.com",
        "com",
    )
    assert walk_names("com") == ("com",)


def test_long_names_are_shortened_to_seven_labels_after_the_first_query():
    # RFC 9989 §4.10's own example: eight queries for a twelve-label name
    assert walk_names("a.b.c.d.e.f.g.h.i.j.mail.example.com") == (
        "a.b.c.d.e.f.g.h.i.j.mail.example.com",
        "g.h.i.j.mail.example.com",
        "h.i.j.mail.example.com",
        "i.j.mail.example.com",
        "j.mail.example.com",
        "mail.example.com",
        "example.com",
        "com",
    )


@pytest.mark.parametrize("count", range(1, 30))
def test_a_walk_never_asks_more_than_eight_names(count):
    name = ".".join(f"l{i}" for i in range(count))
    names = walk_names(name)
    assert len(names) == min(count, 8)
    assert names[-1] == f"l{count - 1}"


def answers_for(start, **records):
    """Walk answers: every name of the walk without a record unless given (dots as _)."""
    answers = dict.fromkeys(walk_names(start))
    answers.update({k.replace("_", "."): v for k, v in records.items()})
    return answers


def test_the_organizational_domain_is_the_highest_name_with_a_record():
    answers = answers_for("a.mail.example.com", mail_example_com="u", example_com="u")
    found = walk("a.mail.example.com", answers)
    assert organizational_domain("a.mail.example.com", found) == "example.com"


def test_psd_y_makes_the_name_below_it_the_organizational_domain():
    answers = answers_for("a.mail.example.com", com="y")
    found = walk("a.mail.example.com", answers)
    assert organizational_domain("a.mail.example.com", found) == "example.com"


def test_psd_n_stops_the_walk_and_is_the_organizational_domain():
    answers = answers_for("a.mail.example.com", mail_example_com="n", example_com="u")
    found = walk("a.mail.example.com", answers)
    assert found == [("mail.example.com", "n")]
    assert organizational_domain("a.mail.example.com", found) == "mail.example.com"


def test_psd_y_at_the_start_does_not_move_the_organizational_domain():
    answers = answers_for("example.com", example_com="y")
    assert organizational_domain("example.com", walk("example.com", answers)) == "example.com"


def test_without_records_the_start_is_its_own_organizational_domain():
    answers = answers_for("a.example.com")
    assert organizational_domain("a.example.com", walk("a.example.com", answers)) == (
        "a.example.com"
    )


def test_a_domain_with_its_own_record_uses_it():
    d = discover_policy("mail.example.com", answers_for("mail.example.com", mail_example_com="u"))
    assert d.source == "mail.example.com" and not d.inherited


def test_an_inherited_policy_comes_from_the_organizational_domain_not_the_nearest_record():
    answers = answers_for("a.b.example.com", b_example_com="u", example_com="u")
    d = discover_policy("a.b.example.com", answers)
    assert d.source == "example.com" and d.inherited


def test_a_psd_policy_applies_when_the_organizational_domain_has_none():
    d = discover_policy("mail.example.com", answers_for("mail.example.com", com="y"))
    assert (d.source, d.psd_domain, d.organizational_domain) == ("com", "com", "example.com")


def test_no_records_means_no_policy():
    assert discover_policy("example.com", answers_for("example.com")).source is None


def test_a_psd_below_a_skipped_name_asks_for_the_organizational_domain():
    start = "a.b.c.d.e.f.g.h.example.com"  # ten labels: the walk jumps to seven
    answers = dict.fromkeys(walk_names(start))
    assert "c.d.e.f.g.h.example.com" not in answers
    answers["d.e.f.g.h.example.com"] = "y"
    d = discover_policy(start, answers)
    assert (d.source, d.needs) == (None, "c.d.e.f.g.h.example.com")
    answers["c.d.e.f.g.h.example.com"] = "u"
    assert discover_policy(start, answers).source == "c.d.e.f.g.h.example.com"
    answers["c.d.e.f.g.h.example.com"] = None
    assert discover_policy(start, answers).source == "d.e.f.g.h.example.com"


def test_unknown_answers_that_change_nothing_are_agreed():
    answers = answers_for("sub.example.test", example_test="u")
    answers["test"] = UNKNOWN
    names = walk_names("sub.example.test")
    ok, source = agreed(lambda a: discover_policy("sub.example.test", a).source, answers, names)
    assert (ok, source) == (True, "example.test")


def test_unknown_answers_that_could_change_the_verdict_are_not_agreed():
    answers = answers_for("sub.example.com", example_com="u")
    answers["sub.example.com"] = None
    answers["example.com"] = UNKNOWN
    names = walk_names("sub.example.com")
    ok, _ = agreed(lambda a: discover_policy("sub.example.com", a).source, answers, names)
    assert not ok


def test_an_unknown_tld_may_still_hold_a_psd_policy():
    answers = answers_for("example.com")
    answers["com"] = UNKNOWN
    ok, _ = agreed(lambda a: discover_policy("example.com", a).source, answers, ["com"])
    assert not ok


# --- the policy that applies (dns.dmarc and the round trip's DMARC verdict) ---------------------


@pytest.mark.parametrize(
    ("text", "subdomain", "expected"),
    [
        ("v=DMARC1; p=reject", False, ("reject", "p", None)),
        ("v=DMARC1; p=reject; sp=none", True, ("none", "sp", None)),
        ("v=DMARC1; p=reject; sp=none", False, ("reject", "p", None)),
        ("v=DMARC1; p=quarantine", True, ("quarantine", "p", None)),
        (
            "v=DMARC1; rua=mailto:d@example.com",
            False,
            ("none", "p", "p is absent: receivers act as if p=none"),
        ),
        ("v=DMARC1", True, ("none", "p", "p is absent: receivers act as if p=none")),
        (
            "v=DMARC1; p=bogus; rua=mailto:d@example.com",
            False,
            ("none", "p", "p is invalid: receivers act as if p=none"),
        ),
        (
            "v=DMARC1; p=reject; sp=bogus",
            True,
            ("none", "sp", "sp is invalid and no valid rua: receivers apply no DMARC processing"),
        ),
    ],
)
def test_effective_policy(text, subdomain, expected):
    assert effective_policy(parse(text), subdomain=subdomain) == expected

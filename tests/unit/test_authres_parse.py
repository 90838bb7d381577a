"""The pure Authentication-Results parser (RFC 8601 §2.2, RFC 8616, RFC 8617)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.parse.authres import (
    MAX_COMMENT_DEPTH,
    MAX_LENGTH,
    ArcAuthResults,
    AuthResError,
    AuthResult,
    AuthResults,
    parse,
    parse_arc,
)

CASES_FILE = Path(__file__).parent.parent / "data" / "authres" / "cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"]


def expected(data: dict[str, Any]) -> AuthResults:
    return AuthResults(
        authserv_id=data["authserv_id"],
        version=data["version"],
        results=tuple(
            AuthResult(
                method=r["method"],
                result=r["result"],
                reason=r.get("reason"),
                properties=dict(r.get("properties") or {}),
                method_version=r.get("method_version"),
            )
            for r in data["results"]
        ),
    )


# --- the table: captured, RFC 8601 Appendix B, hand-reconstructed providers ---------------------


def test_case_table_is_well_formed() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        assert isinstance(case["value"], str), case["name"]
        assert ("expect" in case) != ("error" in case), case["name"]
        assert case.get("parser", "authres") in ("authres", "arc"), case["name"]
        assert case["source"].split(":")[0].split()[0] in (
            "captured",
            "rfc8601",
            "rfc8617",
            "hand-reconstructed",
        ), case["name"]
        for r in case.get("expect", {}).get("results", []):
            for key, value in (r.get("properties") or {}).items():
                assert isinstance(value, str), (case["name"], key)
            assert r.get("reason") is None or isinstance(r["reason"], str), case["name"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_table_value_parses_as_expected(case: dict[str, Any]) -> None:
    options = case.get("options") or {}
    arc = case.get("parser") == "arc"
    if case.get("error"):
        with pytest.raises(AuthResError):
            (parse_arc if arc else parse)(case["value"], **options)
    elif arc:
        want = ArcAuthResults(case["expect"]["instance"], expected(case["expect"]))
        assert parse_arc(case["value"], **options) == want
    else:
        assert parse(case["value"], **options) == expected(case["expect"])


def test_rfc8601_appendix_b_examples_are_all_in_the_table() -> None:
    sources = {c["source"].split()[1] for c in CASES if c["source"].startswith("rfc8601 ")}
    assert {"B.2", "B.3", "B.4", "B.5", "B.6", "B.7"} <= sources


def test_lab_exim_capture_is_in_the_table() -> None:
    assert sum(c["source"].startswith("captured: lab Exim") for c in CASES) >= 3


@pytest.mark.parametrize(
    "provider",
    [
        "Gmail",
        "Microsoft 365",
        "Yahoo",
        "Fastmail",
        "Exim",
        "OpenDKIM",
        "OpenDMARC",
        "rspamd",
        "amavisd-new",
    ],
)
def test_each_named_provider_has_a_hand_reconstructed_case(provider: str) -> None:
    assert any(
        c["source"].startswith("hand-reconstructed: ") and provider in c["source"] for c in CASES
    )


# --- the API ------------------------------------------------------------------------------------


def test_result_fields_and_helpers() -> None:
    ar = parse("mx.example.test; dkim/1=pass header.d=example.test; spf=fail; dkim=fail")
    assert ar.authserv_id == "mx.example.test"
    assert ar.version is None
    assert isinstance(ar.results, tuple)
    first = ar.results[0]
    assert (first.method, first.result, first.reason, first.method_version) == (
        "dkim",
        "pass",
        None,
        1,
    )
    assert first.properties == {"header.d": "example.test"}
    assert first.get("HEADER.D") == "example.test"
    assert first.get("header.s") is None
    assert [r.result for r in ar.for_method("DKIM")] == ["pass", "fail"]
    assert ar.for_method("dmarc") == ()


def test_error_is_a_value_error_with_a_position() -> None:
    with pytest.raises(ValueError) as caught:
        parse("mx.example.test; spf=")
    assert isinstance(caught.value, AuthResError)
    assert caught.value.position == len("mx.example.test; spf=")


# --- normalisation ------------------------------------------------------------------------------


def test_method_result_and_property_keys_are_lower_cased_values_kept() -> None:
    ar = parse("MX.Example.Test; DKIM=PASS Header.D=Example.TEST; SPF=SoftFail SMTP.MailFrom=A@B.C")
    assert ar.authserv_id == "MX.Example.Test"
    assert [(r.method, r.result) for r in ar.results] == [("dkim", "pass"), ("spf", "softfail")]
    assert ar.results[0].properties == {"header.d": "Example.TEST"}
    assert ar.results[1].properties == {"smtp.mailfrom": "A@B.C"}


def test_quoted_values_are_unquoted_with_escapes_resolved() -> None:
    ar = parse(r'"mx.example.test"; dkim=pass reason="a \"b\" \\ c" header.b="ab+/cd=="')
    assert ar.authserv_id == "mx.example.test"
    assert ar.results[0].reason == 'a "b" \\ c'
    assert ar.results[0].properties == {"header.b": "ab+/cd=="}


def test_quoted_local_part_address_is_kept_as_written() -> None:
    ar = parse('mx.example.test; spf=pass smtp.mailfrom="john doe"@example.com')
    assert ar.results[0].properties == {"smtp.mailfrom": '"john doe"@example.com'}


def test_comments_are_dropped_everywhere_nested_and_escaped() -> None:
    value = (
        "(a) mx.example.test (b (nested) \\) still b) ; (c; d=e) dkim (x) = (y) pass (z)"
        " header (h) . (i) d (j) = (k) example.test (l (m (n))) ; (o)"
    )
    ar = parse(value)
    assert ar == AuthResults(
        "mx.example.test", None, (AuthResult("dkim", "pass", None, {"header.d": "example.test"}),)
    )


# --- tolerance ----------------------------------------------------------------------------------


def test_missing_spaces_trailing_and_empty_semicolons_are_tolerated() -> None:
    ar = parse("mx.example.test;;dkim=pass header.d=a.example;;spf=pass smtp.mailfrom=b.example;;")
    assert [(r.method, r.properties) for r in ar.results] == [
        ("dkim", {"header.d": "a.example"}),
        ("spf", {"smtp.mailfrom": "b.example"}),
    ]


def test_authserv_id_with_only_a_semicolon_has_no_results() -> None:
    assert parse("mx.example.test;") == AuthResults("mx.example.test", None, ())
    assert parse("mx.example.test ; none ;") == AuthResults("mx.example.test", None, ())
    assert parse("mx.example.test 7;NONE (nothing done)") == AuthResults("mx.example.test", 7, ())


def test_method_named_like_none_is_a_method() -> None:
    ar = parse("example.com; nonexistent=pass; none=fail")
    assert [(r.method, r.result) for r in ar.results] == [("nonexistent", "pass"), ("none", "fail")]


def test_microsoft_header_without_authserv_id_needs_the_option() -> None:
    value = (
        "spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=a.com; dkim=none (message not signed)"
        " header.d=none;dmarc=none action=none header.from=a.com;compauth=pass reason=100"
    )
    with pytest.raises(AuthResError):
        parse(value)
    ar = parse(value, authserv_id_optional=True)
    assert ar.authserv_id == ""
    assert ar.results == (
        AuthResult("spf", "pass", None, {"smtp.mailfrom": "a.com"}),
        AuthResult("dkim", "none", None, {"header.d": "none"}),
        AuthResult("dmarc", "none", None, {"action": "none", "header.from": "a.com"}),
        AuthResult("compauth", "pass", "100", {}),
    )


def test_option_keeps_a_present_authserv_id() -> None:
    ar = parse("mx.example.test; spf=pass", authserv_id_optional=True)
    assert ar.authserv_id == "mx.example.test"
    ar = parse("; spf=pass", authserv_id_optional=True)
    assert (ar.authserv_id, [r.method for r in ar.results]) == ("", ["spf"])


def test_resinfo_that_is_only_a_domain_is_skipped() -> None:
    ar = parse("x; dkim=none header.d=none;lists.example.org.; dmarc=none (c) ; a.b (c)")
    assert [r.method for r in ar.results] == ["dkim", "dmarc"]
    with pytest.raises(AuthResError):
        parse("x; dkim=none; spf; dmarc=none")
    with pytest.raises(AuthResError):
        parse("x; lists.example.org dmarc=none")


def test_ptype_less_property_is_kept_under_its_bare_name() -> None:
    ar = parse("mx.example.test; dmarc=pass Action=None header.from=a.example")
    assert ar.results[0].properties == {"action": "None", "header.from": "a.example"}


def test_missing_semicolon_reads_the_next_result_as_a_bare_property() -> None:
    ar = parse("mx.example.test; dkim=pass spf=fail")
    assert ar.results == (AuthResult("dkim", "pass", None, {"spf": "fail"}),)


def test_first_reason_and_first_property_occurrence_win() -> None:
    ar = parse("x; dkim=pass reason=a header.d=one reason=b header.d=two")
    assert ar.results[0].reason == "a"
    assert ar.results[0].properties == {"header.d": "one"}


def test_reason_may_follow_properties() -> None:
    ar = parse('x; dmarc=fail header.from=a.example reason="policy says no"')
    assert ar.results[0].reason == "policy says no"


@pytest.mark.parametrize(
    "pvalue",
    ["@example.com", "<x@y.example>", "2001:db8::1", "[192.0.2.1]", "abc+/de==", "256/256", "<>"],
)
def test_unquoted_values_with_token_specials_are_kept(pvalue: str) -> None:
    ar = parse(f"x; m=pass smtp.v={pvalue} header.d=a")
    assert ar.results[0].properties == {"smtp.v": pvalue, "header.d": "a"}


def test_empty_property_value_is_the_empty_string() -> None:
    ar = parse("x; spf=none smtp.mailfrom=; dkim=none header.d=")
    assert [r.properties for r in ar.results] == [{"smtp.mailfrom": ""}, {"header.d": ""}]


def test_non_ascii_values_are_accepted() -> None:
    ar = parse('例え.テスト; spf=pass smtp.mailfrom=用户@例子.广告 header.from="Ünïcode"')
    assert ar.authserv_id == "例え.テスト"
    assert ar.results[0].properties == {"smtp.mailfrom": "用户@例子.广告", "header.from": "Ünïcode"}


def test_arc_result_with_oldest_pass() -> None:
    ar = parse("mx.example.test; arc=pass header.oldest-pass=0 smtp.remote-ip=192.0.2.1")
    assert ar.results[0].properties == {"header.oldest-pass": "0", "smtp.remote-ip": "192.0.2.1"}


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("  \r\n\t ", id="only-white-space"),
        pytest.param("(just a comment) (and (another))", id="only-comments"),
        pytest.param("; spf=pass", id="missing-authserv-id-semicolon-first"),
        pytest.param("spf=pass smtp.mailfrom=a.example", id="missing-authserv-id-result-first"),
        pytest.param("dkim/1=pass", id="missing-authserv-id-versioned-method-first"),
        pytest.param('""; spf=pass', id="empty-quoted-authserv-id"),
        pytest.param("mx.example.test", id="authserv-id-alone"),
        pytest.param("mx.example.test 1", id="authserv-id-and-version-alone"),
        pytest.param("mx.example.test spf=pass", id="no-semicolon-after-authserv-id"),
        pytest.param("mx.example.test 1x; none", id="version-not-digits"),
        pytest.param("mx.example.test 1234567890; none", id="version-too-long"),
        pytest.param("mx.example.test; spf=", id="method-without-result-at-end"),
        pytest.param("mx.example.test; spf=; dkim=pass", id="method-without-result"),
        pytest.param("mx.example.test; spf= (comment) ;", id="method-without-result-comment"),
        pytest.param("mx.example.test; spf", id="method-without-equals"),
        pytest.param("mx.example.test; spf pass", id="method-without-equals-space"),
        pytest.param("mx.example.test; =pass", id="result-without-method"),
        pytest.param("mx.example.test; dkim/=pass", id="method-version-empty"),
        pytest.param("mx.example.test; dkim/1234567890=pass", id="method-version-too-long"),
        pytest.param("mx.example.test; dkim=pass header.d", id="property-without-value"),
        pytest.param("mx.example.test; dkim=pass header.=x", id="property-name-missing"),
        pytest.param("mx.example.test; dkim=pass header.d=a stray", id="stray-word"),
        pytest.param('mx.example.test; dkim=pass header.b="abc', id="unterminated-quote"),
        pytest.param('"mx.example.test; dkim=pass', id="unterminated-quoted-authserv-id"),
        pytest.param("mx.example.test; dkim=pass (unclosed", id="unterminated-comment"),
        pytest.param("mx.example.test; dkim=pass (a (b)", id="unterminated-nested-comment"),
        pytest.param("mx.example.test; dkim=pass (a\\)", id="unterminated-escaped-paren"),
        pytest.param("mx.example.test; dkim=pass)", id="unbalanced-close-paren"),
        pytest.param(")mx.example.test; none", id="close-paren-first"),
        pytest.param("mx.example.test; none; spf=pass", id="none-with-results"),
        pytest.param("mx.example.test; spf=pass; none", id="results-with-none"),
        pytest.param("mx.example.test; spf=pass\x00", id="nul"),
        pytest.param("mx.example.test; spf=pass\x1b[0m", id="escape-sequence"),
        pytest.param("mx.example.test; dkim=pass.x", id="garbage-after-result"),
        pytest.param('mx.example.test; dkim=pass header.d=a"b"', id="quote-inside-token"),
    ],
)
def test_malformed_value_raises_authres_error(value: str) -> None:
    with pytest.raises(AuthResError):
        parse(value)


def test_over_long_value_is_refused_before_parsing() -> None:
    head = "mx.example.test; spf=pass smtp.mailfrom="
    assert parse(head + "a" * (MAX_LENGTH - len(head))).results[0].result == "pass"
    with pytest.raises(AuthResError) as caught:
        parse(head + "a" * (MAX_LENGTH - len(head) + 1))
    assert caught.value.position is None


def test_comment_nesting_is_capped() -> None:
    deep = "(" * MAX_COMMENT_DEPTH + ")" * MAX_COMMENT_DEPTH
    assert parse(f"mx.example.test; {deep} spf=pass").results[0].method == "spf"
    deeper = "(" * (MAX_COMMENT_DEPTH + 1) + ")" * (MAX_COMMENT_DEPTH + 1)
    with pytest.raises(AuthResError):
        parse(f"mx.example.test; {deeper} spf=pass")


def test_deep_nesting_up_to_the_length_cap_is_refused_not_recursed() -> None:
    with pytest.raises(AuthResError):
        parse("x; " + "(" * (MAX_LENGTH - 3))


@pytest.mark.parametrize("value", [None, b"mx.example.test; none", 42])
def test_non_str_value_raises_authres_error(value: object) -> None:
    with pytest.raises(AuthResError):
        parse(value)  # type: ignore[arg-type]


# --- ARC-Authentication-Results -----------------------------------------------------------------


def test_arc_authentication_results_value() -> None:
    arc = parse_arc(
        "i=1; mx.microsoft.com 1; spf=pass smtp.mailfrom=contoso.com; dmarc=pass action=none"
        " header.from=contoso.com; dkim=pass header.d=contoso.com; arc=none"
    )
    assert arc.instance == 1
    assert (arc.authres.authserv_id, arc.authres.version) == ("mx.microsoft.com", 1)
    assert [(r.method, r.result) for r in arc.authres.results] == [
        ("spf", "pass"),
        ("dmarc", "pass"),
        ("dkim", "pass"),
        ("arc", "none"),
    ]


def test_arc_instance_with_cfws_and_upper_case() -> None:
    arc = parse_arc(" I (set) = 50 ;mx.example.test; arc=pass header.oldest-pass=0")
    assert arc == ArcAuthResults(
        50,
        AuthResults(
            "mx.example.test", None, (AuthResult("arc", "pass", None, {"header.oldest-pass": "0"}),)
        ),
    )


@pytest.mark.parametrize(
    "value",
    [
        "mx.example.test; arc=pass",
        "i=0; mx.example.test; arc=pass",
        "i=51; mx.example.test; arc=pass",
        "i=; mx.example.test; arc=pass",
        "i=1 mx.example.test; arc=pass",
        "i=1;",
        "i=1; spf=pass",
        "",
    ],
)
def test_malformed_arc_value_raises_authres_error(value: str) -> None:
    with pytest.raises(AuthResError):
        parse_arc(value)


# --- property tests -----------------------------------------------------------------------------

_KEYWORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
# Printable text for quoted-strings and comments (control characters are refused by design).
_TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
)
_TOKEN_ALPHABET = st.characters(
    blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters=' ();"='
)
_TOKEN = st.text(_TOKEN_ALPHABET, min_size=1, max_size=20)
_VALUE_TOKEN = st.text(
    st.one_of(_TOKEN_ALPHABET, st.sampled_from("=@<>/:[].+")), min_size=1, max_size=20
).filter(lambda t: not t.startswith('"'))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})"


_SPACE = st.sampled_from([" ", "  ", "\t", "\r\n ", "\r\n\t", "\n "])
_ONE_CFWS = st.one_of(
    _SPACE,
    _TEXT.map(_comment),
    _TEXT.map(lambda t: "(outer " + _comment(t) + ")"),  # nested, not escaped
)
_CFWS_OPT = st.one_of(
    st.just(""), st.just(" "), _ONE_CFWS, st.tuples(_ONE_CFWS, _ONE_CFWS).map("".join)
)
_CFWS_REQ = st.one_of(st.just(" "), _ONE_CFWS, st.tuples(_SPACE, _ONE_CFWS).map("".join))


def _cfws(required: bool = False) -> st.SearchStrategy[str]:
    return _CFWS_REQ if required else _CFWS_OPT


def _recase(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.integers(0, 2 ** len(word) - 1))
    return "".join(c.upper() if flips >> i & 1 else c for i, c in enumerate(word))


_AUTHSERV_ID = st.one_of(
    _TOKEN.filter(lambda t: not t.isdigit()),
    _TEXT.filter(lambda t: t.strip() != ""),
)
_PVALUE = st.one_of(_VALUE_TOKEN, _TEXT)
_PROP_KEY = st.one_of(
    st.tuples(_KEYWORD, _KEYWORD).map(lambda kv: f"{kv[0]}.{kv[1]}"),
    _KEYWORD.filter(lambda k: k != "reason"),
)


@st.composite
def _authres(draw: st.DrawFn) -> tuple[str, AuthResults]:
    """A valid header value rendered with random CFWS, case and quoting, and its parse."""
    authserv_id = draw(_AUTHSERV_ID)
    quote_id = draw(st.booleans()) or any(c in authserv_id for c in ' ();"=\\\t')
    out = [draw(_cfws()), _quote(authserv_id) if quote_id else authserv_id]
    version = draw(st.none() | st.integers(0, 999_999_999))
    if version is not None:
        out += [draw(_cfws(required=True)), str(version)]
    results = []
    for _ in range(draw(st.integers(0, 4))):
        method, result = draw(_KEYWORD), draw(_KEYWORD)
        method_version = draw(st.none() | st.integers(0, 999))
        reason = draw(st.none() | _PVALUE)
        properties = draw(st.dictionaries(_PROP_KEY, _PVALUE, max_size=4))
        out += [draw(_cfws()), ";", draw(_cfws()), _recase(draw, method)]
        if method_version is not None:
            out += [draw(_cfws()), "/", draw(_cfws()), str(method_version)]
        out += [draw(_cfws()), "=", draw(_cfws()), _recase(draw, result)]
        items = [("reason", reason)] if reason is not None else []
        items += list(properties.items())
        for key, value in items:
            rendered_key = ".".join(
                _recase(draw, part) + (draw(_cfws()) if i == 0 and "." in key else "")
                for i, part in enumerate(key.split("."))
            )
            rendered = value if _is_token(value) and draw(st.booleans()) else _quote(value)
            out += [draw(_cfws(required=True)), rendered_key, draw(_cfws()), "="]
            out += [draw(_cfws()), rendered]
        results.append(AuthResult(method, result, reason, properties, method_version))
    if not results:
        out.append(draw(st.sampled_from([";", "; none", ";none;", "; (c) NONE (d)"])))
    elif draw(st.booleans()):
        out.append(";")
    out.append(draw(_cfws()))
    return "".join(out), AuthResults(authserv_id, version, tuple(results))


def _is_token(value: str) -> bool:
    return bool(value) and not value.startswith('"') and not any(c in ' \t\r\n();"' for c in value)


@settings(max_examples=200, deadline=None)
@given(_authres())
def test_round_trip_recovers_the_generated_header(generated: tuple[str, AuthResults]) -> None:
    value, want = generated
    assert parse(value) == want


@settings(max_examples=200, deadline=None)
@given(_authres())
def test_round_trip_through_arc_prefix(generated: tuple[str, AuthResults]) -> None:
    value, want = generated
    assert parse_arc(f"i=3;{value}") == ArcAuthResults(3, want)


def _assert_parses_or_authres_error(value: str) -> None:
    try:
        ar = parse(value)
    except AuthResError as e:
        assert len(str(e)) < 300  # messages quote at most a short excerpt
        return
    assert isinstance(ar, AuthResults)
    assert isinstance(ar.authserv_id, str) and ar.authserv_id.strip()
    for r in ar.results:
        assert r.method and r.method == r.method.lower()
        assert r.result and r.result == r.result.lower()
        assert all(isinstance(v, str) for v in r.properties.values())
        assert all(k == k.lower() for k in r.properties)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_authres_error(value: str) -> None:
    _assert_parses_or_authres_error(value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=' \t\r\n();"=./@\\<>:aZ19-_', max_size=120))
def test_any_text_of_grammar_characters_parses_or_raises_authres_error(value: str) -> None:
    _assert_parses_or_authres_error(value)
    with contextlib.suppress(AuthResError):
        parse(value, authserv_id_optional=True)
    with contextlib.suppress(AuthResError):
        parse_arc(value)


_MUTATION_CHARS = st.sampled_from([*';=()"\\./@<> \t\r\n\x00\x85', "none", "reason", "i=1;"])


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    value, _ = draw(_authres())
    for _ in range(draw(st.integers(1, 4))):
        n = len(value)
        at = draw(st.integers(0, n))
        kind = draw(st.sampled_from(["insert", "delete", "duplicate", "truncate", "swap"]))
        if kind == "insert":
            value = value[:at] + draw(st.one_of(_MUTATION_CHARS, _TEXT)) + value[at:]
        elif kind == "delete":
            value = value[:at] + value[at + draw(st.integers(1, 5)) :]
        elif kind == "duplicate":
            end = draw(st.integers(at, n))
            value = value[:end] + value[at:end] + value[end:]
        elif kind == "truncate":
            value = value[:at]
        elif n > 1:
            other = draw(st.integers(0, n - 1))
            chars = list(value)
            chars[min(at, n - 1)], chars[other] = chars[other], chars[min(at, n - 1)]
            value = "".join(chars)
    return value


@settings(max_examples=300, deadline=None)
@given(_mutated())
def test_mutated_near_valid_header_parses_or_raises_authres_error(value: str) -> None:
    _assert_parses_or_authres_error(value)
    with contextlib.suppress(AuthResError):
        parse(value, authserv_id_optional=True)


def test_error_message_is_bounded_for_a_huge_name() -> None:
    with pytest.raises(AuthResError) as caught:
        parse("x; " + "m" * 60_000 + "=")
    assert len(str(caught.value)) < 200

"""The DKIM key record parser (RFC 6376 §3.6.1, RFC 8301, RFC 8463): pure, offline."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.lab import pki
from probes.parse import dkim_key
from probes.parse.dkim_key import DkimKeySyntaxError, parse


@pytest.fixture(scope="module")
def rsa2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_p(rsa2048) -> str:
    return pki.dkim_public_value(rsa2048)


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _raw_ed(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def syntax_error(text: str) -> DkimKeySyntaxError:
    with pytest.raises(DkimKeySyntaxError) as info:
        parse(text)
    return info.value


# --- well-formed records -----------------------------------------------------------------------


def test_rsa_spki_record_gives_type_size_and_encoding(rsa_p):
    record = parse(f"v=DKIM1; k=rsa; p={rsa_p}")
    assert record.version == "DKIM1"
    assert record.key_type == "rsa"
    assert record.public_key.bits == 2048
    assert record.public_key.encoding == "spki"
    assert not record.revoked and not record.testing


def test_bare_pkcs1_rsa_public_key_is_accepted(rsa2048):
    der = rsa2048.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    record = parse("p=" + base64.b64encode(der).decode())
    assert record.public_key.encoding == "pkcs1"
    assert record.public_key.bits == 2048
    assert record.public_key.same_key(rsa2048.public_key())


def test_ed25519_raw_key_per_rfc8463(ed_key):
    record = parse("v=DKIM1; k=ed25519; p=" + base64.b64encode(_raw_ed(ed_key)).decode())
    assert record.key_type == "ed25519"
    assert record.public_key.bits == 256
    assert record.public_key.same_key(ed_key.public_key())


def test_defaults_without_optional_tags(rsa_p):
    record = parse("p=" + rsa_p)
    assert record.version is None
    assert record.key_type == "rsa"
    assert record.hash_algs is None and record.allows_sha256
    assert record.services == ("*",) and record.for_email
    assert record.flags == ()


def test_whitespace_folding_inside_and_around_tags(rsa_p):
    folded = " \r\n\t".join(rsa_p[i : i + 60] for i in range(0, len(rsa_p), 60))
    record = parse(f"  v = DKIM1 ;\r\n\tk = rsa ; p =\t{folded} ;  ")
    assert record.public_key.bits == 2048


def test_trailing_semicolon_is_allowed(rsa_p):
    assert parse(f"v=DKIM1; p={rsa_p};").public_key is not None


def test_key_split_over_strings_joined_without_separator_parses(rsa_p):
    text = f"v=DKIM1; k=rsa; p={rsa_p}"
    strings = [text[i : i + 255] for i in range(0, len(text), 255)]
    assert len(strings) > 1
    assert parse("".join(strings)).public_key.bits == 2048


def test_empty_p_is_a_revoked_key_not_an_error():
    record = parse("v=DKIM1; k=rsa; p=")
    assert record.revoked
    assert parse("v=DKIM1; p= ;").revoked


def test_testing_and_strict_flags_colon_separated(rsa_p):
    record = parse(f"v=DKIM1; t=y : s; p={rsa_p}")
    assert record.testing and record.strict
    assert parse(f"t=s; p={rsa_p}").testing is False


def test_unknown_flags_hashes_services_and_tags_are_ignored(rsa_p):
    record = parse(f"v=DKIM1; t=x-future; h=sha256:sha512; s=email:x-chat; zz=1; p={rsa_p}")
    assert not record.testing
    assert record.allows_sha256 and record.for_email
    assert record.tags["zz"] == "1"


def test_sha1_only_and_non_email_service_are_reported_as_unusable(rsa_p):
    assert not parse(f"h=sha1; p={rsa_p}").allows_sha256
    assert parse(f"h=SHA256; p={rsa_p}").allows_sha256
    assert not parse(f"s=x-chat; p={rsa_p}").for_email
    assert parse(f"s=*; p={rsa_p}").for_email


def test_key_type_is_case_insensitive(rsa_p):
    assert parse(f"k=RSA; p={rsa_p}").key_type == "rsa"


def test_notes_are_kept(rsa_p):
    assert parse(f"n=rotated=2024; p={rsa_p}").notes == "rotated=2024"


@pytest.mark.parametrize("bits", [768, 1024, 4096])
def test_rsa_size_is_the_modulus_size(bits):
    key = pki.generate_dkim_key("rsa", bits)
    assert parse("p=" + pki.dkim_public_value(key)).public_key.bits == bits


def test_fingerprint_is_the_same_for_spki_and_pkcs1_forms(rsa2048, rsa_p):
    der = rsa2048.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    a = parse("p=" + rsa_p).public_key
    b = parse("p=" + base64.b64encode(der).decode()).public_key
    assert a.fingerprint == b.fingerprint and a.fingerprint.startswith("sha256:")


def test_same_key_is_false_for_other_keys_and_types(rsa_p, ed_key):
    record = parse("p=" + rsa_p)
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert not record.public_key.same_key(other.public_key())
    assert not record.public_key.same_key(ed_key.public_key())


# --- syntax errors name the tag ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("", "p"),
        ("   ", "p"),
        ("v=DKIM1; k=rsa", "p"),
        ("v=DKIM1", "p"),
        ("k=rsa; v=DKIM1; p=", "v"),
        ("v=DKIM2; p=", "v"),
        ("v=dkim1; p=", "v"),
        ("v=spf1 -all", "v"),
        ("v=DKIM1; k=dsa; p=", "k"),
        ("v=DKIM1; p=; p=", "p"),
        ("v=DKIM1; p=abc", "p"),
        ("v=DKIM1; p=ab=c", "p"),
        ("v=DKIM1; p=ab!c", "p"),
        ("v=DKIM1; p=é", "p"),
        ("v=DKIM1; n=caf\u00e9; p=", "n"),
        ("v=DKIM1; p=\ufffd", "p"),
        ("v=DKIM1; t=y:; p=", "t"),
        ("v=DKIM1; t=y,s; p=", "t"),
        ("v=DKIM1; h=sha256:; p=", "h"),
        ("v=DKIM1; s=; p=", "s"),
        ("v=DKIM1; k=; p=", "k"),
        ("v=DKIM1; p=\x00", "p"),
    ],
)
def test_syntax_errors_name_the_tag(text, tag):
    assert syntax_error(text).tag == tag


@pytest.mark.parametrize(
    "text",
    [
        "v=DKIM1;; p=",
        "v=DKIM1; ; p=",
        "google-site-verification=abc",
        "v=DKIM1; 1x=2; p=",
        "v=DKIM1 p",
        "=DKIM1; p=",
    ],
)
def test_tag_list_grammar_violations_are_syntax_errors(text):
    syntax_error(text)


def test_upper_case_tag_names_are_other_tags_and_p_is_missing(rsa_p):
    err = syntax_error(f"V=DKIM1; P={rsa_p}")
    assert err.tag == "p"
    assert "P=" in str(err)


def test_rsa_record_holding_an_ed25519_key_is_a_syntax_error(ed_key):
    err = syntax_error("v=DKIM1; p=" + base64.b64encode(_raw_ed(ed_key)).decode())
    assert err.tag == "p"
    assert "ed25519" in str(err).lower()


def test_ed25519_record_with_spki_or_wrong_length_is_a_syntax_error(ed_key, rsa_p):
    spki = ed_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert syntax_error("k=ed25519; p=" + base64.b64encode(spki).decode()).tag == "p"
    assert syntax_error("k=ed25519; p=" + rsa_p).tag == "p"


def test_rsa_record_holding_an_ec_key_is_a_syntax_error():
    spki = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert syntax_error("k=rsa; p=" + base64.b64encode(spki).decode()).tag == "p"


def test_base64_that_is_not_a_der_key_is_a_syntax_error():
    assert syntax_error("p=" + base64.b64encode(b"not a key at all").decode()).tag == "p"


def test_ten_kilobyte_record_is_judged_quickly():
    err = syntax_error("v=DKIM1; p=" + "A" * 10_000 + "!")
    assert err.tag == "p"
    assert syntax_error("v=DKIM1; p=" + "QUFB" * 2500).tag == "p"


# --- discovery helper ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DKIM1; k=rsa; p=abc", True),
        ("k=rsa; p=abc", True),
        (" p=", True),
        ("v=spf1 include:_spf.example.com -all", False),
        ("google-site-verification=abc", False),
        ("", False),
    ],
)
def test_looks_like_dkim(text, expected):
    assert dkim_key.looks_like_dkim(text) is expected


# --- robustness ----------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_the_one_syntax_error_type(text):
    try:
        parse(text)
    except DkimKeySyntaxError as exc:
        assert exc.tag is None or isinstance(exc.tag, str)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["v", "k", "p", "t", "h", "s", "n", "x"]),
            st.text(alphabet="DKIM1rsaed25519yx:=+/AQab \t", max_size=30),
        ),
        max_size=6,
    )
)
def test_tag_shaped_text_parses_or_raises_the_one_syntax_error_type(pairs):
    text = "; ".join(f"{name}={value}" for name, value in pairs)
    try:
        record = parse(text)
    except DkimKeySyntaxError as exc:
        assert str(exc)
    else:
        assert record.key_type in dkim_key.KEY_TYPES

"""DNSSEC trust anchors (`--trust-anchor FILE`): the packaged IANA root anchor, DS and DNSKEY
files, and malformed files named with their line, in the parser and at the CLI (exit 2)."""

from __future__ import annotations

import pytest

from probes import cli
from probes.parse.trust_anchor import TrustAnchorError, load_trust_anchor, parse_trust_anchor

DS = "example.test. IN DS 2371 13 2 " + "AB" * 32
DNSKEY = (
    "example.test. 3600 IN DNSKEY 257 3 13 "
    + "mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="
)


def test_the_default_is_the_iana_root_anchor_ksk_2017_and_ksk_2024():
    anchors = load_trust_anchor(None)
    assert anchors.zones == (".",)
    assert "IANA" in anchors.source
    (ds,) = anchors.for_zone(".")
    assert sorted(rd.key_tag for rd in ds) == [20326, 38696]
    assert {rd.algorithm for rd in ds} == {8} and {rd.digest_type for rd in ds} == {2}
    assert anchors.closest("mx.example.com") == "."


def test_ds_and_dnskey_records_with_comments_and_blank_lines():
    anchors = parse_trust_anchor(f"; lab anchor\n\n{DS} ; the KSK\n{DNSKEY}\n", "a.zone")
    assert anchors.zones == ("example.test",)
    assert {r.rdtype for r in anchors.for_zone("example.test")} == {43, 48}
    assert anchors.closest("_25._tcp.mx.example.test") == "example.test"
    assert anchors.closest("other.test") is None


def test_two_ds_lines_of_one_zone_make_one_rrset():
    second = "example.test. IN DS 9 13 2 " + "CD" * 32
    anchors = parse_trust_anchor(f"{DS}\n{second}\n")
    (ds,) = anchors.for_zone("example.test")
    assert len(ds) == 2


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (f"{DS}\nexample.test. IN DS 1 13 2 zz", 2, "hexadecimal"),
        (f"{DS}\nexample.test. IN A 192.0.2.1", 2, "not a DS or DNSKEY"),
        ("example.test. CH DS 1 13 2 " + "ab" * 32, 1, "class"),
        ("garbage", 1, ""),
        (f"\n\n{DS[:-10]} (\n  x )", 3, "one line"),
        ("  example.test. IN DS 1 13 2 " + "ab" * 32, 1, "owner name"),
    ],
)
def test_malformed_anchor_names_the_source_and_line(text, line, says):
    with pytest.raises(TrustAnchorError) as caught:
        parse_trust_anchor(text, "anchor.zone")
    assert str(caught.value).startswith(f"anchor.zone:{line}:")
    assert says in str(caught.value)


def test_an_empty_file_is_an_error():
    with pytest.raises(TrustAnchorError, match="no DS or DNSKEY"):
        parse_trust_anchor("; nothing\n", "empty.zone")


def test_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(TrustAnchorError, match=r"missing\.zone"):
        load_trust_anchor(str(tmp_path / "missing.zone"))
    bad = tmp_path / "latin1.zone"
    bad.write_bytes(DS.encode() + b"\n; caf\xe9\n")
    with pytest.raises(TrustAnchorError, match=r"latin1.zone:2: not UTF-8"):
        load_trust_anchor(str(bad))


def test_cli_exits_2_before_probing_naming_file_and_line(tmp_path, capsys):
    bad = tmp_path / "anchor.zone"
    bad.write_text(f"{DS}\nexample.test. IN DS nonsense\n")
    argv = ["check", "example.test", "--trust-anchor", str(bad), "--resolver", "127.0.0.1:9"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--trust-anchor" in err and f"{bad}:2:" in err

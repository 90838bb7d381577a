"""dns.dkim against in-memory DNS (StaticBackend) and local key files in tmp_path."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dnsrounds import RoundsBackend

from probes.checks.dns_dkim import COMMON_SELECTORS, WILDCARD_LABEL, DnsDkim
from probes.lab import pki
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import Redactor, run_one

DOMAIN = "example.com"
# A hang guard (pytest-timeout), not a speed limit: speed is measured in benchmarks.
HANG_GUARD_S = 30


def qname(selector: str) -> str:
    return f"{selector}._domainkey.{DOMAIN}"


def record(key, *extra: str) -> str:
    key_type = "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa"
    return "; ".join(["v=DKIM1", f"k={key_type}", *extra, "p=" + pki.dkim_public_value(key)])


def public_only_record(bits: int) -> str:
    """A record with an RSA public key of `bits` bits (any odd modulus will do for parsing)."""
    n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    pub = rsa.RSAPublicNumbers(65537, n).public_key()
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def split255(text: str) -> tuple[str, ...]:
    return tuple(text[i : i + 255] for i in range(0, len(text), 255))


def run(records, *, selectors=("mail",), discover=False, dkim_keys=(), client=None):
    target = Target(
        domain=DOMAIN, selectors=tuple(selectors), discover_selectors=discover, dkim_keys=dkim_keys
    )
    net = Net(dns_client=client or DnsClient(StaticBackend(records)))
    return run_one(DnsDkim(), target, net, Redactor())


def codes(result) -> list[str]:
    return [f.code for f in result.findings]


def problems(result) -> list[str]:
    return [f.code for f in result.findings if f.severity is not Severity.INFO]


def write_key(path: Path, data: bytes, mode: int = 0o600) -> str:
    path.write_bytes(data)
    os.chmod(path, mode)
    return str(path)


# --- selectors and outcomes ---------------------------------------------------------------------


def test_no_selector_and_no_discovery_is_skipped():
    result = run({}, selectors=())
    assert result.outcome is Outcome.SKIPPED
    assert "--selector" in result.error_detail


def test_good_rsa_2048_key_gives_only_an_info_finding(key2048):
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]})
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == ["DKIM_KEY_OK"]
    finding = result.findings[0]
    assert finding.subject == "mail"
    assert finding.evidence["key_type"] == "rsa" and finding.evidence["bits"] == "2048"
    assert finding.reproduce == f"dig +short TXT {qname('mail')}"


def test_key_split_over_several_strings_is_joined_without_separator(key2048):
    strings = split255(record(key2048))
    assert len(strings) > 1
    assert codes(run({(qname("mail"), "TXT"): [strings]})) == ["DKIM_KEY_OK"]


def test_good_ed25519_key(ed_key):
    result = run({(qname("ed"), "TXT"): [record(ed_key)]}, selectors=("ed",))
    assert codes(result) == ["DKIM_KEY_OK"]
    assert result.findings[0].evidence["key_type"] == "ed25519"


def test_missing_record_is_a_failure_per_selector(key2048):
    result = run({(qname("a"), "TXT"): [record(key2048)]}, selectors=("a", "b"))
    assert [(f.subject, f.code) for f in result.findings] == [
        ("a", "DKIM_KEY_OK"),
        ("b", "DKIM_KEY_MISSING"),
    ]
    assert result.findings[1].severity is Severity.FAIL


def test_name_without_txt_record_is_missing(key2048):
    result = run({(qname("mail"), "A"): ["192.0.2.1"]})
    assert codes(result) == ["DKIM_KEY_MISSING"]
    assert result.findings[0].evidence["rcode"] == "NOERROR"


def test_syntax_error_names_the_tag():
    result = run({(qname("mail"), "TXT"): ["v=DKIM1; k=rsa; p=not*base64"]})
    assert codes(result) == ["DKIM_KEY_SYNTAX_ERROR"]
    assert result.findings[0].severity is Severity.FAIL
    assert result.findings[0].evidence["tag"] == "p"


def test_empty_p_is_revoked_warning():
    result = run({(qname("mail"), "TXT"): ["v=DKIM1; k=rsa; p="]})
    assert codes(result) == ["DKIM_KEY_REVOKED"]
    assert result.findings[0].severity is Severity.WARN


@pytest.mark.parametrize(
    ("bits", "code", "severity"),
    [
        (512, "DKIM_KEY_TOO_SHORT", Severity.FAIL),
        (768, "DKIM_KEY_TOO_SHORT", Severity.FAIL),
        (1023, "DKIM_KEY_TOO_SHORT", Severity.FAIL),
        (1024, "DKIM_KEY_WEAK", Severity.WARN),
        (2047, "DKIM_KEY_WEAK", Severity.WARN),
        (2048, "DKIM_KEY_OK", Severity.INFO),
        (4096, "DKIM_KEY_OK", Severity.INFO),
        (4104, "DKIM_KEY_TOO_LONG", Severity.WARN),
    ],
)
def test_rsa_key_size_thresholds(bits, code, severity):
    result = run({(qname("mail"), "TXT"): [split255(public_only_record(bits))]})
    assert [(f.code, f.severity) for f in result.findings] == [(code, severity)]
    assert result.findings[0].evidence["bits"] == str(bits)


def test_testing_mode_is_a_warning(key2048):
    result = run({(qname("mail"), "TXT"): [split255(record(key2048, "t=y"))]})
    assert codes(result) == ["DKIM_TESTING_MODE"]
    assert result.findings[0].severity is Severity.WARN


def test_testing_mode_and_weak_key_are_both_reported():
    text = public_only_record(1024).replace("k=rsa;", "k=rsa; t=s:y;")
    assert codes(run({(qname("mail"), "TXT"): [split255(text)]})) == [
        "DKIM_TESTING_MODE",
        "DKIM_KEY_WEAK",
    ]


@pytest.mark.parametrize("tag", ["h=sha1", "s=x-chat"])
def test_key_no_verifier_can_use_is_unusable(key2048, tag):
    result = run({(qname("mail"), "TXT"): [split255(record(key2048, tag))]})
    assert codes(result) == ["DKIM_KEY_UNUSABLE"]


def test_multiple_records_at_one_selector_fail_and_each_is_judged(key2048):
    result = run({(qname("mail"), "TXT"): [split255(record(key2048)), "v=DKIM1; k=rsa; p="]})
    assert codes(result) == ["DKIM_KEY_MULTIPLE_RECORDS", "DKIM_KEY_OK", "DKIM_KEY_REVOKED"]
    assert result.findings[0].severity is Severity.FAIL


def test_selector_behind_a_cname_is_followed(key2048):
    result = run(
        {
            (qname("s1"), "CNAME"): ["s1.dkim.provider.example"],
            ("s1.dkim.provider.example", "TXT"): [split255(record(key2048))],
        },
        selectors=("s1",),
    )
    assert codes(result) == ["DKIM_KEY_OK"]
    assert result.findings[0].evidence["cname_chain"] == "s1.dkim.provider.example"


def test_cname_to_nowhere_is_missing():
    result = run(
        {(qname("s1"), "CNAME"): ["gone.provider.example"]},
        selectors=("s1",),
    )
    assert codes(result) == ["DKIM_KEY_MISSING"]


# --- DNS failures --------------------------------------------------------------------------------


def test_servfail_on_one_selector_judges_the_others_then_errors(key2048):
    result = run(
        {(qname("a"), "TXT"): "SERVFAIL", (qname("b"), "TXT"): [split255(record(key2048))]},
        selectors=("a", "b"),
    )
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert codes(result) == ["DKIM_KEY_OK"]
    assert qname("a") in result.error_detail


def test_timeout_is_an_error_timeout_not_missing():
    result = run({(qname("mail"), "TXT"): "TIMEOUT"})
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.TIMEOUT
    assert codes(result) == []


def test_cname_loop_is_a_dns_error():
    result = run(
        {(qname("mail"), "CNAME"): ["x.example.com"], ("x.example.com", "CNAME"): [qname("mail")]}
    )
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS


def test_invalid_selector_name_is_a_config_error(key2048):
    result = run({(qname("ok"), "TXT"): [split255(record(key2048))]}, selectors=("x" * 70, "ok"))
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.CONFIG
    assert codes(result) == ["DKIM_KEY_OK"]


# --- hostile records -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        ("A" * 255,) * 40,  # 10 KB of one TXT record
        (b"v=DKIM1; p=\xff\xfe\x00",),
        ("v=DKIM1; k=rsa; p=" + "QUFB" * 2000,),
        ("v=spf1 -all",),
        ("",),
    ],
)
@pytest.mark.timeout(HANG_GUARD_S)
def test_hostile_records_are_syntax_errors_not_crashes(value):
    client = DnsClient(StaticBackend({(qname("mail"), "TXT"): [value]}))
    result = run({}, client=client)
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == ["DKIM_KEY_SYNTAX_ERROR"]
    assert client.stats.queries == 1  # bounded work: the record is judged, nothing more asked
    assert all(len(v) <= 1100 for v in result.findings[0].evidence.values())


# --- discovery -----------------------------------------------------------------------------------


def test_discovery_reports_only_selectors_that_have_a_record(key2048):
    result = run(
        {(qname("google"), "TXT"): [split255(record(key2048))]},
        selectors=(),
        discover=True,
    )
    assert [(f.subject, f.code) for f in result.findings] == [("google", "DKIM_KEY_OK")]
    assert result.findings[0].evidence["discovered"] == "yes"


def test_discovery_judges_the_keys_it_finds(key2048):
    result = run(
        {
            (qname("selector1"), "TXT"): ["v=DKIM1; k=rsa; p="],
            (qname("k1"), "TXT"): [split255(public_only_record(1024))],
        },
        selectors=(),
        discover=True,
    )
    assert sorted((f.subject, f.code) for f in result.findings) == [
        ("k1", "DKIM_KEY_WEAK"),
        ("selector1", "DKIM_KEY_REVOKED"),
    ]


def test_discovery_ignores_non_dkim_txt_such_as_a_wildcard_spf_record():
    result = run(
        {(qname(sel), "TXT"): ["v=spf1 -all"] for sel in COMMON_SELECTORS},
        selectors=(),
        discover=True,
    )
    assert codes(result) == ["DKIM_NO_SELECTOR_FOUND"]


def test_discovery_finding_nothing_is_an_info_finding():
    result = run({}, selectors=(), discover=True)
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == ["DKIM_NO_SELECTOR_FOUND"]
    assert result.findings[0].severity is Severity.INFO


def test_discovery_sees_through_a_dkim_wildcard(key2048):
    text = split255(record(key2048))
    data = {(qname(sel), "TXT"): [text] for sel in (*COMMON_SELECTORS, WILDCARD_LABEL)}
    data[(qname("mail"), "TXT")] = [split255(public_only_record(1024))]  # a real, different key
    result = run(data, selectors=(), discover=True)
    assert [(f.subject, f.code) for f in result.findings] == [("mail", "DKIM_KEY_WEAK")]


def test_given_selectors_are_judged_even_when_discovery_finds_nothing():
    result = run({}, selectors=("custom",), discover=True)
    assert codes(result) == ["DKIM_KEY_MISSING"]
    assert result.findings[0].subject == "custom"


def test_all_selectors_are_asked_in_parallel(key2048):
    records = {(qname("google"), "TXT"): [split255(record(key2048))]}
    with RoundsBackend(records) as backend:
        result = run({}, selectors=("a", "b", "c"), discover=True, client=backend.client())
    # One round: every given and guessed selector, and the wildcard check, in flight at once.
    selectors = {"a", "b", "c", *COMMON_SELECTORS, WILDCARD_LABEL}
    assert backend.batches == [sorted((qname(sel), "TXT") for sel in selectors)]
    assert ("google", "DKIM_KEY_OK") in [(f.subject, f.code) for f in result.findings]


# --- local private keys --------------------------------------------------------------------------


def test_matching_local_key_pkcs8_pem(tmp_path, key2048):
    path = write_key(tmp_path / "mail.key", pki.private_pem(key2048))
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]}, dkim_keys=(("mail", path),))
    assert codes(result) == ["DKIM_KEY_OK", "DKIM_KEY_MATCHES"]
    assert problems(result) == []


def test_matching_local_key_pkcs1_pem_and_bare_pkcs1_record(tmp_path, key2048):
    path = write_key(tmp_path / "mail.key", pki.dkimpy_private_bytes(key2048))
    assert b"BEGIN RSA PRIVATE KEY" in Path(path).read_bytes()
    der = key2048.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    text = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    result = run({(qname("mail"), "TXT"): [split255(text)]}, dkim_keys=(("mail", path),))
    assert codes(result) == ["DKIM_KEY_OK", "DKIM_KEY_MATCHES"]


def test_matching_ed25519_key_in_dkimpy_raw_format(tmp_path, ed_key):
    path = write_key(tmp_path / "ed.dkimpy", pki.dkimpy_private_bytes(ed_key) + b"\n")
    result = run(
        {(qname("ed"), "TXT"): [record(ed_key)]}, selectors=("ed",), dkim_keys=(("ed", path),)
    )
    assert codes(result) == ["DKIM_KEY_OK", "DKIM_KEY_MATCHES"]


def test_matching_ed25519_key_in_pkcs8_pem(tmp_path, ed_key):
    path = write_key(tmp_path / "ed.pem", pki.private_pem(ed_key))
    result = run(
        {(qname("ed"), "TXT"): [record(ed_key)]}, selectors=("ed",), dkim_keys=(("ed", path),)
    )
    assert codes(result) == ["DKIM_KEY_OK", "DKIM_KEY_MATCHES"]


def test_other_local_key_is_a_mismatch(tmp_path, key2048):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = write_key(tmp_path / "mail.key", pki.private_pem(other))
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]}, dkim_keys=(("mail", path),))
    assert problems(result) == ["DKIM_KEY_MISMATCH"]
    finding = next(f for f in result.findings if f.code == "DKIM_KEY_MISMATCH")
    assert finding.severity is Severity.FAIL and finding.subject == "mail"
    assert finding.evidence["key_file"] == path


def test_local_key_of_another_type_is_a_mismatch(tmp_path, key2048, ed_key):
    path = write_key(tmp_path / "mail.key", pki.private_pem(ed_key))
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]}, dkim_keys=(("mail", path),))
    assert problems(result) == ["DKIM_KEY_MISMATCH"]


def test_local_key_against_revoked_record_is_revoked_at_fail(tmp_path, key2048):
    path = write_key(tmp_path / "mail.key", pki.private_pem(key2048))
    result = run({(qname("mail"), "TXT"): ["v=DKIM1; p="]}, dkim_keys=(("mail", path),))
    assert problems(result) == ["DKIM_KEY_REVOKED"]  # one cause: no DKIM_KEY_MISMATCH beside it
    (revoked,) = result.findings
    assert revoked.severity is Severity.FAIL and revoked.evidence["key_file"] == path
    assert f"yet the private key {path} is configured for it" in revoked.message


def test_local_key_against_missing_record_is_only_missing(tmp_path, key2048):
    path = write_key(tmp_path / "mail.key", pki.private_pem(key2048))
    assert problems(run({}, dkim_keys=(("mail", path),))) == ["DKIM_KEY_MISSING"]


def test_selector_of_a_local_key_is_asked_even_if_not_listed(tmp_path, key2048):
    path = write_key(tmp_path / "k.key", pki.private_pem(key2048))
    result = run(
        {(qname("other"), "TXT"): [split255(record(key2048))]},
        selectors=(),
        dkim_keys=(("other", path),),
    )
    assert codes(result) == ["DKIM_KEY_OK", "DKIM_KEY_MATCHES"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o666])
def test_group_or_world_accessible_key_file_is_exposed(tmp_path, key2048, mode):
    path = write_key(tmp_path / "mail.key", pki.private_pem(key2048), mode)
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]}, dkim_keys=(("mail", path),))
    assert problems(result) == ["DKIM_PRIVATE_KEY_EXPOSED"]
    finding = result.findings[0]
    assert finding.severity is Severity.WARN and finding.subject == "mail"
    assert finding.evidence["path"] == path
    assert finding.evidence["mode"] == f"{mode:04o}"


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_owner_only_key_file_is_not_exposed(tmp_path, key2048, mode):
    path = write_key(tmp_path / "mail.key", pki.private_pem(key2048), mode)
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]}, dkim_keys=(("mail", path),))
    assert problems(result) == []


def test_exposed_key_is_reported_even_when_dns_fails(tmp_path, key2048):
    path = write_key(tmp_path / "mail.key", pki.private_pem(key2048), 0o644)
    result = run({(qname("mail"), "TXT"): "SERVFAIL"}, dkim_keys=(("mail", path),))
    assert codes(result) == ["DKIM_PRIVATE_KEY_EXPOSED"]
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS


def test_missing_key_file_is_a_config_error_naming_the_path(tmp_path, key2048):
    path = str(tmp_path / "nope.key")
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]}, dkim_keys=(("mail", path),))
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.CONFIG
    assert path in result.error_detail
    assert codes(result) == ["DKIM_KEY_OK"]


def test_directory_as_key_file_is_a_config_error(tmp_path, key2048):
    result = run(
        {(qname("mail"), "TXT"): [split255(record(key2048))]},
        dkim_keys=(("mail", str(tmp_path)),),
    )
    assert result.error is ErrorReason.CONFIG


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"SECRETSTUFF-not-a-key-SECRETSTUFF\n",
        b"-----BEGIN PRIVATE KEY-----\nU0VDUkVUU1RVRkY=\n-----END PRIVATE KEY-----\n",
        b"\x00\x01SECRETSTUFF\xff",
    ],
)
def test_unparsable_key_file_is_a_config_error_without_its_content(tmp_path, key2048, content):
    path = write_key(tmp_path / "bad.key", content)
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]}, dkim_keys=(("mail", path),))
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.CONFIG
    assert path in result.error_detail
    assert "SECRETSTUFF" not in result.error_detail
    assert "U0VDUkVU" not in result.error_detail


def test_passphrase_protected_key_is_a_config_error(tmp_path, key2048):
    pem = key2048.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    path = write_key(tmp_path / "enc.key", pem)
    result = run({(qname("mail"), "TXT"): [split255(record(key2048))]}, dkim_keys=(("mail", path),))
    assert result.error is ErrorReason.CONFIG
    assert "passphrase" in result.error_detail


def test_no_finding_or_error_ever_contains_private_key_material(tmp_path, key2048, ed_key):
    rsa_pem = pki.private_pem(key2048)
    ed_raw = pki.dkimpy_private_bytes(ed_key)
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    paths = (
        ("mail", write_key(tmp_path / "a.key", pki.private_pem(other), 0o644)),
        ("ed", write_key(tmp_path / "b.key", ed_raw, 0o666)),
    )
    result = run(
        {(qname("mail"), "TXT"): [split255(record(key2048, "t=y"))], (qname("ed"), "TXT"): []},
        selectors=("mail", "ed"),
        dkim_keys=paths,
    )
    text = repr(result.to_json())
    secrets_ = [
        line.decode() for line in rsa_pem.splitlines() + pki.private_pem(other).splitlines()
    ]
    secrets_ = [s for s in secrets_ if "-----" not in s] + [ed_raw.decode()]
    for secret in secrets_:
        assert secret not in text
    assert {"DKIM_KEY_MISMATCH", "DKIM_PRIVATE_KEY_EXPOSED"} <= set(codes(result))

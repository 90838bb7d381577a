"""dns.dkim against the real lab DNS (Knot), records changed live for each finding code."""

from __future__ import annotations

import os
import shutil

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from probes.checks.dns_dkim import DnsDkim
from probes.lab import pki
from probes.lab.zones import dkim_record, txt_rdata
from probes.model import Outcome, Severity

pytestmark = pytest.mark.lab


@pytest.fixture
def selector_name(dns_lab):
    return f"mail._domainkey.{dns_lab.info.domain}"


@pytest.fixture
def lab_key(dns_lab):
    """The lab's private key of selector `mail` (from its 0600 PEM file)."""
    with open(dns_lab.info.dkim["mail"], "rb") as fh:
        return serialization.load_pem_private_key(fh.read(), password=None)


def publish(zone, name: str, *values: str) -> None:
    zone.replace(name, "TXT", *(txt_rdata(v) for v in values))


def codes(result) -> list[str]:
    return [f.code for f in result.findings]


def problems(result) -> list[str]:
    return [f.code for f in result.findings if f.severity >= Severity.WARN]


def test_correct_lab_gives_no_warn_or_fail_and_the_lab_key_matches(run_probe, lab_target):
    target = lab_target()
    assert target.dkim_keys, "the lab target carries the lab's key files"
    result = run_probe(DnsDkim(), target)
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    assert problems(result) == []
    assert codes(result) == ["DKIM_KEY_OK", "DKIM_KEY_MATCHES"]
    ok = result.findings[0]
    assert (ok.subject, ok.evidence["key_type"], ok.evidence["bits"]) == ("mail", "rsa", "2048")


def test_lab_key_files_are_owner_only(dns_lab):
    for path in (*dns_lab.info.dkim.values(), *dns_lab.info.dkimpy_keys.values()):
        assert os.stat(path).st_mode & 0o077 == 0


def test_deleted_record_is_missing(run_probe, zone, selector_name):
    zone.delete(selector_name, "TXT")
    result = run_probe(DnsDkim())
    assert result.outcome is Outcome.COMPLETED
    assert problems(result) == ["DKIM_KEY_MISSING"]


def test_garbage_record_is_a_syntax_error(run_probe, zone, selector_name):
    publish(zone, selector_name, "v=DKIM1; k=rsa; p=this is not base64!")
    result = run_probe(DnsDkim())
    assert problems(result) == ["DKIM_KEY_SYNTAX_ERROR"]
    assert result.findings[0].evidence["tag"] == "p"


def test_empty_p_is_revoked_and_the_lab_signer_still_has_a_key(run_probe, zone, selector_name):
    publish(zone, selector_name, "v=DKIM1; k=rsa; p=")
    result = run_probe(DnsDkim())
    assert problems(result) == ["DKIM_KEY_REVOKED"]  # one cause, one entry (no MISMATCH)
    assert result.findings[0].severity is Severity.FAIL  # the lab's signer has a key for it
    assert result.findings[0].evidence["key_file"].endswith(".key")


def test_768_bit_key_is_too_short(run_probe, zone, selector_name, lab_target):
    weak = pki.generate_dkim_key("rsa", 768)  # built from numbers, as the lab builds weak keys
    publish(zone, selector_name, dkim_record(pki.dkim_public_value(weak), "rsa"))
    result = run_probe(DnsDkim(), lab_target(dkim_keys=()))
    assert problems(result) == ["DKIM_KEY_TOO_SHORT"]
    assert result.findings[0].severity is Severity.FAIL
    assert result.findings[0].evidence["bits"] == "768"


def test_1024_bit_key_is_weak(run_probe, zone, selector_name, lab_target):
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    publish(zone, selector_name, dkim_record(pki.dkim_public_value(key), "rsa"))
    result = run_probe(DnsDkim(), lab_target(dkim_keys=()))
    assert problems(result) == ["DKIM_KEY_WEAK"]
    assert result.findings[0].evidence["bits"] == "1024"


def test_testing_flag_is_reported_and_the_key_still_matches(
    run_probe, zone, selector_name, lab_key
):
    publish(zone, selector_name, dkim_record(pki.dkim_public_value(lab_key), "rsa", testing=True))
    result = run_probe(DnsDkim())
    assert problems(result) == ["DKIM_TESTING_MODE"]
    assert "DKIM_KEY_MATCHES" in codes(result)


def test_another_published_key_mismatches_the_lab_key_file(run_probe, zone, selector_name):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    publish(zone, selector_name, dkim_record(pki.dkim_public_value(other), "rsa"))
    result = run_probe(DnsDkim())
    assert problems(result) == ["DKIM_KEY_MISMATCH"]
    mismatch = next(f for f in result.findings if f.code == "DKIM_KEY_MISMATCH")
    assert mismatch.severity is Severity.FAIL and mismatch.subject == "mail"


def test_fresh_key_file_mismatches_the_published_lab_key(run_probe, lab_target, tmp_path):
    path = tmp_path / "fresh.key"
    pki.write_secret(path, pki.private_pem(rsa.generate_private_key(65537, 2048)))
    result = run_probe(DnsDkim(), lab_target(dkim_keys=(("mail", str(path)),)))
    assert problems(result) == ["DKIM_KEY_MISMATCH"]


def test_world_readable_copy_of_the_lab_key_is_exposed(run_probe, lab_target, dns_lab, tmp_path):
    copy = tmp_path / "mail.key"
    shutil.copyfile(dns_lab.info.dkim["mail"], copy)
    os.chmod(copy, 0o644)
    result = run_probe(DnsDkim(), lab_target(dkim_keys=(("mail", str(copy)),)))
    assert problems(result) == ["DKIM_PRIVATE_KEY_EXPOSED"]
    exposed = result.findings[0]
    assert exposed.subject == "mail"
    assert exposed.evidence["path"] == str(copy) and exposed.evidence["mode"] == "0644"
    key_text = copy.read_text()
    body = [line for line in key_text.splitlines() if line and "-----" not in line]
    assert not any(line in repr(result.to_json()) for line in body)
    assert "DKIM_KEY_MATCHES" in codes(result)


def test_two_records_at_one_selector_fail(run_probe, zone, selector_name, lab_key):
    good = dkim_record(pki.dkim_public_value(lab_key), "rsa")
    publish(zone, selector_name, good, "v=DKIM1; k=rsa; p=")
    result = run_probe(DnsDkim())
    assert problems(result)[0] == "DKIM_KEY_MULTIPLE_RECORDS"
    assert "DKIM_KEY_REVOKED" in problems(result)


def test_sha1_only_key_is_unusable(run_probe, zone, selector_name, lab_key):
    value = "v=DKIM1; k=rsa; h=sha1; p=" + pki.dkim_public_value(lab_key)
    publish(zone, selector_name, value)
    assert problems(run_probe(DnsDkim())) == ["DKIM_KEY_UNUSABLE"]


def test_ed25519_selector_matches_its_dkimpy_key_file(
    run_probe, zone, dns_lab, lab_target, tmp_path
):
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "ed.dkimpy"
    pki.write_secret(path, pki.dkimpy_private_bytes(key))
    name = f"ed._domainkey.{dns_lab.info.domain}"
    publish(zone, name, dkim_record(pki.dkim_public_value(key), "ed25519"))
    target = lab_target(selectors=("mail", "ed"), dkim_keys=(("ed", str(path)),))
    result = run_probe(DnsDkim(), target)
    assert problems(result) == []
    assert [(f.subject, f.code) for f in result.findings] == [
        ("mail", "DKIM_KEY_OK"),
        ("ed", "DKIM_KEY_OK"),
        ("ed", "DKIM_KEY_MATCHES"),
    ]
    assert result.findings[1].evidence["key_type"] == "ed25519"


def test_lab_dkimpy_key_file_matches_the_published_key(run_probe, dns_lab, lab_target):
    target = lab_target(dkim_keys=(("mail", dns_lab.info.dkimpy_keys["mail"]),))
    assert codes(run_probe(DnsDkim(), target)) == ["DKIM_KEY_OK", "DKIM_KEY_MATCHES"]


def test_discovery_finds_the_lab_selector_and_nothing_else(run_probe, lab_target):
    result = run_probe(DnsDkim(), lab_target(selectors=(), dkim_keys=(), discover_selectors=True))
    assert result.outcome is Outcome.COMPLETED
    assert [(f.subject, f.code) for f in result.findings] == [("mail", "DKIM_KEY_OK")]
    assert result.findings[0].evidence["discovered"] == "yes"


def test_no_selector_and_no_discovery_is_skipped(run_probe, lab_target):
    result = run_probe(DnsDkim(), lab_target(selectors=(), dkim_keys=()))
    assert result.outcome is Outcome.SKIPPED


def test_selector_outside_the_served_zones_is_a_dns_error(run_probe, lab_target):
    # The lab DNS refuses names outside its zones: a failure, never "missing".
    result = run_probe(DnsDkim(), lab_target(domain="unserved.invalid", dkim_keys=()))
    assert result.outcome is Outcome.ERROR
    assert problems(result) == []


def test_record_split_over_strings_is_joined(run_probe, zone, selector_name, lab_key):
    value = dkim_record(pki.dkim_public_value(lab_key), "rsa")
    strings = txt_rdata(value)
    assert strings.count('" "') >= 1  # really several character-strings
    zone.replace(selector_name, "TXT", strings)
    assert problems(run_probe(DnsDkim())) == []

"""probes.probekit.tls_findings: certificate and protocol-version facts -> findings."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ssl

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from probes.lab.pki import certs_pem, make_ca, make_server_cert, private_pem
from probes.model import Severity
from probes.parse.certificate import CertInfo, parse_certificate
from probes.probe import BaseProbe
from probes.probekit.tls_findings import (
    EXPIRY_WARN_DAYS,
    TLS_CODES,
    VerifyResult,
    certificate_findings,
    shorten_list,
    tls_version_findings,
)

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
SUBJECT = "mx.example.com:25"
REPRO = "openssl s_client -connect mx.example.com:25 -starttls smtp -brief </dev/null"
OK = VerifyResult(verified=True, ca_source="/tmp/ca.pem")


class TlsProbe(BaseProbe):
    id = "smtp.mx"
    description = "test probe"
    codes = TLS_CODES


PROBE = TlsProbe()

BASE = CertInfo(
    subject="CN=mx.example.com,O=Example",
    issuer="CN=Example CA,O=Example",
    common_names=("mx.example.com",),
    dns_names=("mx.example.com", "mail.example.com"),
    ip_addresses=("127.0.0.25",),
    not_before=NOW - dt.timedelta(days=30),
    not_after=NOW + dt.timedelta(days=60),
    serial="1A2B",
    key_type="EC",
    key_bits=256,
    curve="secp256r1",
    signature_algorithm="ecdsa-with-SHA256",
    self_signed=False,
    sha256_fingerprint="AB:CD",
)


def cert(**changes) -> CertInfo:
    return dataclasses.replace(BASE, **changes)


def judge(info=BASE, verify=OK, hostname="mx.example.com", now=NOW):
    return certificate_findings(
        PROBE,
        info=info,
        verify=verify,
        hostname=hostname,
        now=now,
        subject=SUBJECT,
        reproduce=REPRO,
    )


def codes(findings) -> dict[str, Severity]:
    out = {f.code: f.severity for f in findings}
    assert len(out) == len(findings), "one finding per code expected"
    return out


def by_code(findings, code):
    (finding,) = [f for f in findings if f.code == code]
    return finding


def failed(code: int, message: str = "certificate verify failed") -> VerifyResult:
    return VerifyResult(verified=False, code=code, message=message, ca_source="/tmp/ca.pem")


# -- the healthy case ---------------------------------------------------------------------------


def test_valid_verified_matching_certificate_is_one_cert_ok_with_what_was_seen():
    findings = judge()
    assert codes(findings) == {"CERT_OK": Severity.INFO}
    ok = findings[0]
    assert ok.subject == SUBJECT
    assert ok.reproduce == REPRO
    assert ok.probe_id == "smtp.mx"
    assert ok.evidence["certificate"] == "CN=mx.example.com,O=Example"
    assert ok.evidence["issuer"] == "CN=Example CA,O=Example"
    assert ok.evidence["san_dns"] == "mx.example.com mail.example.com"
    assert ok.evidence["san_ip"] == "127.0.0.25"
    assert ok.evidence["not_after"] == "2025-07-31T12:00:00Z"
    assert ok.evidence["days_left"] == "60"
    assert ok.evidence["key"] == "EC 256 bits secp256r1"
    assert ok.evidence["verified"] == "yes, against /tmp/ca.pem"
    assert ok.evidence["sha256_fingerprint"] == "AB:CD"


def test_every_evidence_value_is_a_string():
    for findings in (judge(), judge(info=cert(key_type="RSA", key_bits=1024, curve=None))):
        for f in findings:
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in f.evidence.items())


def test_no_hostname_means_no_hostname_check():
    findings = judge(hostname=None, info=cert(dns_names=("other.example",)))
    assert codes(findings) == {"CERT_OK": Severity.INFO}


# -- dates --------------------------------------------------------------------------------------


def test_expired_certificate_is_cert_expired_fail():
    info = cert(not_after=NOW - dt.timedelta(days=2, hours=1))
    findings = judge(info=info)
    assert codes(findings) == {"CERT_EXPIRED": Severity.FAIL, "CERT_SEEN": Severity.INFO}
    assert by_code(findings, "CERT_EXPIRED").evidence["not_after"] == "2025-05-30T11:00:00Z"
    assert by_code(findings, "CERT_EXPIRED").evidence["days_left"] == "-3"


def test_expiry_reported_by_openssl_is_explained_and_trust_is_not_claimed():
    info = cert(not_after=NOW - dt.timedelta(days=2))
    findings = judge(info=info, verify=failed(10, "certificate has expired"))
    assert codes(findings) == {"CERT_EXPIRED": Severity.FAIL, "CERT_SEEN": Severity.INFO}
    evidence = by_code(findings, "CERT_EXPIRED").evidence
    assert evidence["verify_code"] == "10"
    assert evidence["chain_checked"].startswith("no")


def test_openssl_expiry_code_for_a_leaf_that_is_not_expired_is_untrusted():
    # e.g. an expired intermediate: the leaf's own dates are fine
    findings = judge(verify=failed(10, "certificate has expired"))
    assert codes(findings) == {"CERT_UNTRUSTED": Severity.FAIL, "CERT_SEEN": Severity.INFO}
    assert by_code(findings, "CERT_UNTRUSTED").evidence["verify_code"] == "10"


@pytest.mark.parametrize(
    ("remaining", "days"),
    [
        (dt.timedelta(days=5), "5"),
        (dt.timedelta(hours=3), "0"),
        (dt.timedelta(0), "0"),
        (dt.timedelta(days=EXPIRY_WARN_DAYS) - dt.timedelta(seconds=1), "20"),
    ],
)
def test_expiring_within_21_days_is_cert_expiring_soon_warn(remaining, days):
    findings = judge(info=cert(not_after=NOW + remaining))
    assert codes(findings) == {"CERT_EXPIRING_SOON": Severity.WARN, "CERT_SEEN": Severity.INFO}
    assert by_code(findings, "CERT_EXPIRING_SOON").evidence["days_left"] == days
    assert "not_after" in by_code(findings, "CERT_EXPIRING_SOON").evidence


def test_exactly_21_days_left_is_not_expiring_soon():
    findings = judge(info=cert(not_after=NOW + dt.timedelta(days=EXPIRY_WARN_DAYS)))
    assert codes(findings) == {"CERT_OK": Severity.INFO}


def test_not_yet_valid_certificate_is_cert_not_yet_valid_fail():
    info = cert(not_before=NOW + dt.timedelta(days=3))
    findings = judge(info=info, verify=failed(9, "certificate is not yet valid"))
    assert codes(findings) == {"CERT_NOT_YET_VALID": Severity.FAIL, "CERT_SEEN": Severity.INFO}
    evidence = by_code(findings, "CERT_NOT_YET_VALID").evidence
    assert evidence["not_before"] == "2025-06-04T12:00:00Z"
    assert evidence["verify_code"] == "9"


def test_naive_now_is_taken_as_utc():
    naive = NOW.replace(tzinfo=None)
    assert codes(judge(now=naive)) == {"CERT_OK": Severity.INFO}
    assert "CERT_EXPIRED" in codes(judge(info=cert(not_after=NOW - dt.timedelta(1)), now=naive))


# -- trust --------------------------------------------------------------------------------------


def test_self_signed_leaf_is_a_warning_and_not_also_untrusted():
    info = cert(self_signed=True, issuer=BASE.subject)
    findings = judge(info=info, verify=failed(18, "self-signed certificate"))
    assert codes(findings) == {"CERT_SELF_SIGNED": Severity.WARN, "CERT_SEEN": Severity.INFO}
    evidence = by_code(findings, "CERT_SELF_SIGNED").evidence
    assert evidence["trusted"] == "no"
    assert evidence["verify_code"] == "18"


def test_self_signed_leaf_trusted_through_the_ca_file_is_still_reported():
    info = cert(self_signed=True, issuer=BASE.subject)
    findings = judge(info=info)
    assert codes(findings) == {"CERT_SELF_SIGNED": Severity.WARN, "CERT_SEEN": Severity.INFO}
    assert by_code(findings, "CERT_SELF_SIGNED").evidence["trusted"].startswith("yes")


def test_openssl_self_signed_code_for_a_leaf_that_is_not_self_signed_is_untrusted():
    findings = judge(verify=failed(18, "self-signed certificate"))
    assert codes(findings) == {"CERT_UNTRUSTED": Severity.FAIL, "CERT_SEEN": Severity.INFO}


@pytest.mark.parametrize("code", [2, 7, 19, 20, 21, 24, 26, 27, 28, None])
def test_other_verification_failures_are_cert_untrusted(code):
    verify = VerifyResult(verified=False, code=code, message="boom", ca_source="system store")
    findings = judge(verify=verify)
    assert codes(findings) == {"CERT_UNTRUSTED": Severity.FAIL, "CERT_SEEN": Severity.INFO}
    evidence = by_code(findings, "CERT_UNTRUSTED").evidence
    assert evidence["verify_code"] == ("unknown" if code is None else str(code))
    assert evidence["verify_message"] == "boom"
    assert evidence["ca_source"] == "system store"


def test_expired_and_untrusted_chain_are_both_reported():
    info = cert(not_after=NOW - dt.timedelta(days=1))
    findings = judge(info=info, verify=failed(20, "unable to get local issuer certificate"))
    assert codes(findings) == {
        "CERT_EXPIRED": Severity.FAIL,
        "CERT_UNTRUSTED": Severity.FAIL,
        "CERT_SEEN": Severity.INFO,
    }
    assert "chain_checked" not in by_code(findings, "CERT_EXPIRED").evidence


# -- host name ----------------------------------------------------------------------------------


def test_wrong_host_is_cert_hostname_mismatch_with_names_seen():
    info = cert(dns_names=("wrong-host.invalid",), ip_addresses=())
    findings = judge(info=info)
    assert codes(findings) == {"CERT_HOSTNAME_MISMATCH": Severity.FAIL, "CERT_SEEN": Severity.INFO}
    evidence = by_code(findings, "CERT_HOSTNAME_MISMATCH").evidence
    assert evidence["expected"] == "mx.example.com"
    assert evidence["san_dns"] == "wrong-host.invalid"
    assert evidence["san_ip"] == "none"


def test_ip_hostname_matches_ip_san():
    assert codes(judge(hostname="127.0.0.25")) == {"CERT_OK": Severity.INFO}
    assert codes(judge(hostname="127.0.0.26")) == {
        "CERT_HOSTNAME_MISMATCH": Severity.FAIL,
        "CERT_SEEN": Severity.INFO,
    }


def test_mismatch_on_cn_only_certificate_shows_the_common_name():
    info = cert(dns_names=(), ip_addresses=(), common_names=("other.example.com",))
    evidence = by_code(judge(info=info), "CERT_HOSTNAME_MISMATCH").evidence
    assert evidence["common_name"] == "other.example.com"


def test_long_san_list_is_shortened_with_a_count():
    names = tuple(f"host{i:03d}.example.com" for i in range(100))
    evidence = by_code(judge(info=cert(dns_names=names)), "CERT_HOSTNAME_MISMATCH").evidence
    assert len(evidence["san_dns"]) <= 240
    assert evidence["san_dns"].startswith("host000.example.com host001.example.com")
    assert "100 in all" in evidence["san_dns"]


def test_shorten_list_keeps_short_lists_whole_and_names_empty_ones():
    assert shorten_list(["a", "b"]) == "a b"
    assert shorten_list([]) == "none"
    assert shorten_list(["x" * 500]).endswith("…")
    assert len(shorten_list(["x" * 500])) == 200


# -- key and signature --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "bits", "curve", "weak"),
    [
        ("RSA", 1024, None, True),
        ("RSA", 2047, None, True),
        ("RSA", 2048, None, False),
        ("DSA", 1024, None, True),
        ("EC", 192, "secp192r1", True),
        ("EC", 224, "secp224r1", False),
        ("EC", 256, "secp256r1", False),
        ("Ed25519", 256, None, False),
        ("Ed448", 456, None, False),
        ("1.2.3.4", None, None, False),
    ],
)
def test_weak_keys_are_cert_weak_key_warn(key_type, bits, curve, weak):
    findings = judge(info=cert(key_type=key_type, key_bits=bits, curve=curve))
    if weak:
        assert codes(findings) == {"CERT_WEAK_KEY": Severity.WARN, "CERT_SEEN": Severity.INFO}
        evidence = by_code(findings, "CERT_WEAK_KEY").evidence
        assert evidence["key_type"] == key_type
        assert evidence["key_bits"] == str(bits)
    else:
        assert codes(findings) == {"CERT_OK": Severity.INFO}


@pytest.mark.parametrize(
    "algorithm",
    [
        "sha1WithRSAEncryption",
        "md5WithRSAEncryption",
        "ecdsa-with-SHA1",
        "dsa-with-sha1",
        "1.2.840.113549.1.1.5",
    ],
)
def test_sha1_or_md5_signature_is_cert_weak_signature_warn(algorithm):
    findings = judge(info=cert(signature_algorithm=algorithm))
    assert codes(findings) == {"CERT_WEAK_SIGNATURE": Severity.WARN, "CERT_SEEN": Severity.INFO}
    assert by_code(findings, "CERT_WEAK_SIGNATURE").evidence["signature_algorithm"] == algorithm


@pytest.mark.parametrize("algorithm", ["sha256WithRSAEncryption", "ed25519", "rsassaPss"])
def test_modern_signatures_are_not_weak(algorithm):
    assert codes(judge(info=cert(signature_algorithm=algorithm))) == {"CERT_OK": Severity.INFO}


def test_sha1_self_signature_is_not_a_weak_signature_finding():
    info = cert(signature_algorithm="sha1WithRSAEncryption", self_signed=True, issuer=BASE.subject)
    findings = judge(info=info, verify=failed(18))
    assert codes(findings) == {"CERT_SELF_SIGNED": Severity.WARN, "CERT_SEEN": Severity.INFO}


# -- real certificates end to end ---------------------------------------------------------------


def lab_leaf(kind: str) -> CertInfo:
    chain, _ = make_server_cert(make_ca("t"), ["mx.example.test"], ["127.0.0.25"], kind=kind)
    return parse_certificate(chain[0].public_bytes(Encoding.DER))


@pytest.mark.parametrize(
    ("kind", "verify", "expected"),
    [
        ("valid", OK, {"CERT_OK": Severity.INFO}),
        ("expired", failed(10), {"CERT_EXPIRED": Severity.FAIL, "CERT_SEEN": Severity.INFO}),
        ("expiring-soon", OK, {"CERT_EXPIRING_SOON": Severity.WARN, "CERT_SEEN": Severity.INFO}),
        (
            "self-signed",
            failed(18),
            {"CERT_SELF_SIGNED": Severity.WARN, "CERT_SEEN": Severity.INFO},
        ),
        ("wrong-host", OK, {"CERT_HOSTNAME_MISMATCH": Severity.FAIL, "CERT_SEEN": Severity.INFO}),
    ],
)
def test_lab_certificate_kinds_give_their_finding(kind, verify, expected):
    findings = certificate_findings(
        PROBE,
        info=lab_leaf(kind),
        verify=verify,
        hostname="mx.example.test",
        now=dt.datetime.now(dt.UTC),
        subject="127.0.0.25:25",
        reproduce=REPRO,
    )
    assert codes(findings) == expected
    assert all(f.subject == "127.0.0.25:25" for f in findings)


# -- protocol versions --------------------------------------------------------------------------

MODERN = {"SSLv3": None, "TLSv1": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}


def versions(accepted, negotiated="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384"):
    return tls_version_findings(
        PROBE,
        negotiated=negotiated,
        cipher=cipher,
        accepted=accepted,
        subject=SUBJECT,
        reproduce=REPRO,
    )


def test_modern_server_gets_only_tls_negotiated_with_what_was_tried():
    findings = versions(MODERN)
    assert [(f.code, f.severity) for f in findings] == [("TLS_NEGOTIATED", Severity.INFO)]
    evidence = findings[0].evidence
    assert evidence["negotiated"] == "TLSv1.3"
    assert evidence["cipher"] == "TLS_AES_256_GCM_SHA384"
    assert evidence["accepted"] == "TLSv1.2 TLSv1.3"
    assert evidence["refused"] == "TLSv1 TLSv1.1"
    assert evidence["untested"] == "SSLv3 (local OpenSSL has no SSLv3)"
    assert findings[0].subject == SUBJECT
    assert findings[0].reproduce == REPRO


def test_each_accepted_legacy_version_is_one_finding():
    accepted = {**MODERN, "TLSv1": True, "TLSv1.1": True, "SSLv3": True}
    findings = versions(accepted)
    legacy = [
        (f.evidence["version"], f.severity) for f in findings if f.code == "TLS_LEGACY_PROTOCOL"
    ]
    assert legacy == [
        ("SSLv3", Severity.FAIL),
        ("TLSv1", Severity.WARN),
        ("TLSv1.1", Severity.WARN),
    ]
    assert findings[-1].code == "TLS_NEGOTIATED"
    assert findings[-1].evidence["accepted"] == "SSLv3 TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"
    assert findings[-1].evidence["untested"] == "none"


def test_negotiated_legacy_version_counts_as_accepted():
    accepted = {"TLSv1.2": False, "TLSv1.3": False}
    findings = versions(accepted, negotiated="TLSv1.1", cipher="ECDHE-RSA-AES128-SHA")
    legacy = [f for f in findings if f.code == "TLS_LEGACY_PROTOCOL"]
    assert [(f.evidence["version"], f.severity) for f in legacy] == [("TLSv1.1", Severity.WARN)]
    untested = findings[-1].evidence["untested"]
    assert "SSLv3 (not tried)" in untested
    assert "TLSv1 (not tried)" in untested


def test_untestable_legacy_versions_are_not_findings():
    accepted = {"SSLv3": None, "TLSv1": None, "TLSv1.1": None, "TLSv1.2": True, "TLSv1.3": True}
    findings = versions(accepted)
    assert [f.code for f in findings] == ["TLS_NEGOTIATED"]
    untested = findings[0].evidence["untested"]
    assert untested.startswith("SSLv3 (local OpenSSL has no SSLv3), TLSv1 (")
    assert findings[0].evidence["refused"] == "none"


# -- real OpenSSL verdicts (in-memory handshake, no sockets) -------------------------------------


def memory_handshake(tmp_path, chain, key, ca) -> tuple[bytes, VerifyResult]:
    """A TLS handshake between two in-memory SSLObjects, the client set up as the network door
    is (chain verified against the CA file, host name not checked); the leaf DER and verdict."""
    cert_file, key_file, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert_file.write_bytes(certs_pem(chain))
    key_file.write_bytes(private_pem(key))
    ca_file.write_bytes(certs_pem([ca.cert]))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.load_verify_locations(ca_file)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_client, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(to_client, from_client, server_side=False)
    server = server_ctx.wrap_bio(to_server, from_server, server_side=True)
    verify = VerifyResult(verified=True, ca_source=str(ca_file))
    for _ in range(10):
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLCertVerificationError as err:
            verify = VerifyResult(False, err.verify_code, err.verify_message, str(ca_file))
            break
        to_server.write(from_client.read())
        with contextlib.suppress(ssl.SSLWantReadError):
            server.do_handshake()
        to_client.write(from_server.read())
    else:
        raise AssertionError("handshake did not finish")
    if not verify.verified:  # what the door does: the leaf from the server side's own chain
        return chain[0].public_bytes(Encoding.DER), verify
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return der, verify


@pytest.mark.parametrize(
    ("kind", "signer", "expected_code", "expected"),
    [
        ("valid", "lab", None, {"CERT_OK"}),
        ("expired", "lab", 10, {"CERT_EXPIRED", "CERT_SEEN"}),
        ("expiring-soon", "lab", None, {"CERT_EXPIRING_SOON", "CERT_SEEN"}),
        ("self-signed", "lab", 18, {"CERT_SELF_SIGNED", "CERT_SEEN"}),
        ("wrong-host", "lab", None, {"CERT_HOSTNAME_MISMATCH", "CERT_SEEN"}),
        ("valid", "other", 19, {"CERT_UNTRUSTED", "CERT_SEEN"}),
        ("expired", "other", 19, {"CERT_EXPIRED", "CERT_UNTRUSTED", "CERT_SEEN"}),
    ],
)
def test_openssl_verdicts_map_to_findings(tmp_path, kind, signer, expected_code, expected):
    lab_ca, other_ca = make_ca("lab"), make_ca("other")
    chain, key = make_server_cert(
        lab_ca if signer == "lab" else other_ca, ["mx.example.test"], ["127.0.0.25"], kind=kind
    )
    der, verify = memory_handshake(tmp_path, chain, key, lab_ca)
    assert verify.code == expected_code
    findings = certificate_findings(
        PROBE,
        info=parse_certificate(der),
        verify=verify,
        hostname="mx.example.test",
        now=dt.datetime.now(dt.UTC),
        subject="127.0.0.25:25",
        reproduce=REPRO,
    )
    assert set(codes(findings)) == expected

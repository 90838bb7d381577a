"""message.roundtrip's judgement of a received message, offline: receiver vs own verdicts."""

from __future__ import annotations

from probes.checks.message_roundtrip import MessageRoundTripProbe
from probes.lab.pki import generate_dkim_key
from probes.mail.compose import compose
from probes.mail.dkim_sign import sign, signing_key_from_private
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend

DOMAIN = "example.test"
RECEIVER = "mx.example.test"
CLIENT = "127.0.0.10"


def _setup(header_from: str = f"user@{DOMAIN}"):
    key = signing_key_from_private(generate_dkim_key("rsa", 2048))
    message = compose(
        token="t0k3n", header_from=header_from, to=f"user@{DOMAIN}", mail_from=f"user@{DOMAIN}"
    )
    signed = sign(message.raw, key=key, domain=DOMAIN, selector="sel")
    net = Net(
        dns_client=DnsClient(
            StaticBackend(
                {
                    (f"sel._domainkey.{DOMAIN}", "TXT"): [f"v=DKIM1; k=rsa; p={key.public_value}"],
                    (DOMAIN, "TXT"): [f"v=spf1 ip4:{CLIENT} -all"],
                    (f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=reject"],
                }
            )
        )
    )
    return message, signed, net


def _received(signed: bytes, ar: str) -> bytes:
    return (
        f"Return-Path: <user@{DOMAIN}>\r\n"
        f"Authentication-Results: {ar}\r\n"
        f"Received: from client-a.{DOMAIN} ([{CLIENT}] helo=client-a.{DOMAIN}) by {RECEIVER} "
        "with esmtps id 1abc; Sun, 22 Nov 2026 02:00:00 +0000\r\n"
    ).encode() + signed


def _codes(findings) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in findings:
        out.setdefault(f.code, []).append(f)
    return out


def test_agreeing_receiver_gives_no_warn_or_fail():
    message, signed, net = _setup()
    ar = f"{RECEIVER}; dkim=pass header.d={DOMAIN} header.s=sel; spf=pass smtp.mailfrom={DOMAIN}"
    findings = list(
        MessageRoundTripProbe().judge(_received(signed, ar), message, RECEIVER, net, "r")
    )
    assert {f.code for f in findings if f.severity.value != "info"} == set()
    assert "AUTHRES_SEEN" in _codes(findings) and "OWN_VERDICTS" in _codes(findings)


def test_receiver_saying_fail_where_the_signature_verifies_is_a_disagreement():
    message, signed, net = _setup()
    ar = f"{RECEIVER}; dkim=fail header.d={DOMAIN} header.s=sel; spf=pass smtp.mailfrom={DOMAIN}"
    codes = _codes(
        MessageRoundTripProbe().judge(_received(signed, ar), message, RECEIVER, net, "r")
    )
    assert "AUTHRES_DKIM_NOT_PASS" in codes
    (disagreement,) = codes["VERDICT_DISAGREEMENT"]
    assert disagreement.evidence["method"] == "dkim"
    assert (disagreement.evidence["own"], disagreement.evidence["receiver"]) == ("pass", "fail")
    assert "DKIM_SIGNATURE_INVALID" not in codes


def test_results_from_another_authserv_id_count_as_missing():
    message, signed, net = _setup()
    ar = f"elsewhere.example; dkim=pass header.d={DOMAIN}"
    codes = _codes(
        MessageRoundTripProbe().judge(_received(signed, ar), message, RECEIVER, net, "r")
    )
    assert "AUTHRES_MISSING" in codes
    assert "VERDICT_DISAGREEMENT" not in codes


def test_unaligned_from_fails_dmarc_in_the_harness_own_verdict():
    message, signed, net = _setup(header_from="user@other.test")
    ar = f"{RECEIVER}; dkim=pass header.d={DOMAIN} header.s=sel; spf=pass smtp.mailfrom={DOMAIN}"
    codes = _codes(
        MessageRoundTripProbe().judge(_received(signed, ar), message, RECEIVER, net, "r")
    )
    assert "DMARC_NOT_ALIGNED" in codes

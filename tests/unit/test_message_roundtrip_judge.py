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


def _setup(
    header_from: str = f"user@{DOMAIN}",
    dmarc: str | None = "v=DMARC1; p=reject",
    publish_other_key: bool = False,
):
    key = signing_key_from_private(generate_dkim_key("rsa", 2048))
    published = (
        signing_key_from_private(generate_dkim_key("rsa", 2048)) if publish_other_key else key
    )
    message = compose(
        token="t0k3n", header_from=header_from, to=f"user@{DOMAIN}", mail_from=f"user@{DOMAIN}"
    )
    signed = sign(message.raw, key=key, domain=DOMAIN, selector="sel")
    records = {
        (f"sel._domainkey.{DOMAIN}", "TXT"): [f"v=DKIM1; k=rsa; p={published.public_value}"],
        (DOMAIN, "TXT"): [f"v=spf1 ip4:{CLIENT} -all"],
        ("_dmarc.other.test", "TXT"): ["v=DMARC1; p=none"],
    }
    if dmarc is not None:
        records[(f"_dmarc.{DOMAIN}", "TXT")] = [dmarc]
    net = Net(dns_client=DnsClient(StaticBackend(records)))
    return message, signed, net


def _received(signed: bytes, *ars: str) -> bytes:
    headers = "".join(f"Authentication-Results: {ar}\r\n" for ar in ars)
    return (
        f"Return-Path: <user@{DOMAIN}>\r\n"
        f"{headers}"
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


# OpenDMARC style: one header per milter (policyd-spf, OpenDKIM, OpenDMARC), one authserv-id.
POSTFIX_ARS = (
    f"{RECEIVER}; spf=pass smtp.mailfrom={DOMAIN}",
    f"{RECEIVER}; dkim=pass (2048-bit key) header.d={DOMAIN} header.i=@{DOMAIN} header.s=sel",
)


def test_opendmarcs_verdict_agreeing_with_the_harness_is_compared_and_quiet():
    message, signed, net = _setup()
    dmarc = f"{RECEIVER}; dmarc=pass (p=reject dis=none) header.from={DOMAIN}"
    findings = list(
        MessageRoundTripProbe().judge(
            _received(signed, dmarc, *POSTFIX_ARS), message, RECEIVER, net, "r"
        )
    )
    codes = _codes(findings)
    assert {f.code for f in findings if f.severity.value != "info"} == set()
    assert len(codes["AUTHRES_SEEN"][0].evidence) == 3
    assert codes["OWN_VERDICTS"][0].evidence["dmarc"] == "pass"
    # which identifiers align with the From domain (the HTML scorecard draws it)
    assert codes["OWN_VERDICTS"][0].evidence["dkim_aligned"] == DOMAIN


def test_opendmarc_saying_fail_where_the_harness_finds_alignment_is_a_disagreement():
    message, signed, net = _setup()
    dmarc = f"{RECEIVER}; dmarc=fail (p=reject dis=none) header.from={DOMAIN}"
    codes = _codes(
        MessageRoundTripProbe().judge(
            _received(signed, dmarc, *POSTFIX_ARS), message, RECEIVER, net, "r"
        )
    )
    assert "AUTHRES_DMARC_NOT_PASS" in codes
    (disagreement,) = codes["VERDICT_DISAGREEMENT"]
    assert disagreement.evidence == {
        "method": "dmarc",
        "what": DOMAIN,
        "own": "pass",
        "receiver": "fail",
    }


def test_an_unaligned_from_failing_at_opendmarc_and_in_the_harness_is_no_disagreement():
    message, signed, net = _setup(header_from="user@other.test")
    dmarc = "mx.example.test; dmarc=fail (p=none dis=none) header.from=other.test"
    codes = _codes(
        MessageRoundTripProbe().judge(
            _received(signed, dmarc, *POSTFIX_ARS), message, RECEIVER, net, "r"
        )
    )
    assert "DMARC_NOT_ALIGNED" in codes and "AUTHRES_DMARC_NOT_PASS" in codes
    assert "VERDICT_DISAGREEMENT" not in codes


def test_opendmarcs_bestguesspass_matches_the_harness_finding_no_policy():
    message, signed, net = _setup(dmarc=None)
    dmarc = f"{RECEIVER}; dmarc=bestguesspass header.from={DOMAIN}"
    codes = _codes(
        MessageRoundTripProbe().judge(
            _received(signed, dmarc, *POSTFIX_ARS), message, RECEIVER, net, "r"
        )
    )
    assert codes["OWN_VERDICTS"][0].evidence["dmarc"] == "none"
    assert "VERDICT_DISAGREEMENT" not in codes


def test_opendkims_policy_verdict_on_a_key_the_harness_fails_is_no_disagreement():
    # OpenDKIM: `dkim=policy reason="signing key too small"` where the harness says fail.
    message, signed, net = _setup(publish_other_key=True)
    ar = (
        f'{RECEIVER}; dkim=policy reason="signing key too small" header.d={DOMAIN} '
        f"header.s=sel; spf=pass smtp.mailfrom={DOMAIN}"
    )
    codes = _codes(
        MessageRoundTripProbe().judge(_received(signed, ar), message, RECEIVER, net, "r")
    )
    assert "AUTHRES_DKIM_NOT_PASS" in codes and "DKIM_SIGNATURE_INVALID" in codes
    assert "VERDICT_DISAGREEMENT" not in codes


def test_a_policy_verdict_on_a_signature_the_harness_passes_is_a_disagreement():
    message, signed, net = _setup()
    ar = f"{RECEIVER}; dkim=policy header.d={DOMAIN} header.s=sel; spf=pass smtp.mailfrom={DOMAIN}"
    codes = _codes(
        MessageRoundTripProbe().judge(_received(signed, ar), message, RECEIVER, net, "r")
    )
    (disagreement,) = codes["VERDICT_DISAGREEMENT"]
    assert (disagreement.evidence["own"], disagreement.evidence["receiver"]) == ("pass", "fail")

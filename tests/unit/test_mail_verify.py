"""probes.mail.verify: the harness's own DKIM, SPF and DMARC verdicts against static DNS."""

from __future__ import annotations

import datetime as dt

import dkim
import pytest

from probes.lab.pki import dkim_public_value, dkimpy_private_bytes, generate_dkim_key
from probes.mail.compose import compose
from probes.mail.dkim_sign import sign, signing_key_from_private
from probes.mail.verify import (
    header_from_domain,
    verify_dkim,
    verify_message,
    verify_spf,
)
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend

WHEN = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
CLIENT = "192.0.2.10"


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa": generate_dkim_key("rsa", 2048),
        "ed": generate_dkim_key("ed25519", 256),
        "weak": generate_dkim_key("rsa", 768),
    }


def key_record(private, extra=""):
    kind = "rsa" if hasattr(private, "key_size") else "ed25519"
    return f"v=DKIM1; k={kind};{extra} p={dkim_public_value(private)}"


def net_for(records):
    return Net(dns_client=DnsClient(StaticBackend(records)))


def message(frm="probe@example.com"):
    return compose(
        token="beef01", header_from=frm, to="user@example.net", mail_from=frm, date=WHEN
    ).raw


def signed(private, *, domain="example.com", selector="s1", raw=None, **kw):
    key = signing_key_from_private(private)
    return sign(raw or message(), key=key, domain=domain, selector=selector, **kw)


def results(verdicts):
    return [v.result for v in verdicts]


# --- DKIM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
@pytest.mark.parametrize("kind", ["rsa", "ed"])
def test_a_good_signature_passes(keys, kind, canon):
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys[kind])]})
    [v] = verify_dkim(signed(keys[kind], canonicalization=canon), net)
    assert (v.result, v.domain, v.selector, v.testing) == ("pass", "example.com", "s1", False)
    assert v.algorithm == ("rsa-sha256" if kind == "rsa" else "ed25519-sha256")
    assert v.key_bits == (2048 if kind == "rsa" else 256)


def test_no_signature_gives_no_verdict(keys):
    assert verify_dkim(message(), net_for({})) == []


def test_a_tampered_body_fails(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["ed"])]})
    raw = signed(keys["ed"]).replace(b"Token: beef01", b"Token: beef02")
    assert results(verify_dkim(raw, net)) == ["fail"]


def test_a_tampered_signed_header_fails(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["rsa"])]})
    raw = signed(keys["rsa"]).replace(b"Subject: mailprobe", b"Subject: Mailprobe")
    assert results(verify_dkim(raw, net)) == ["fail"]


def test_a_from_added_after_an_oversigned_signature_fails(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["ed"])]})
    raw = signed(keys["ed"])
    assert results(verify_dkim(raw, net)) == ["pass"]
    forged = raw.replace(b"From: probe@", b"From: ceo@example.com\r\nFrom: probe@")
    assert results(verify_dkim(forged, net)) == ["fail"]


def test_dkimpy_treats_from_as_oversigned_even_when_the_signer_did_not(keys):
    # dkimpy's verifier appends one more "from" to h= (its bug #644046 fix), so a second From
    # breaks a signature that listed From once; other verifiers may accept it.
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["ed"])]})
    raw = signed(keys["ed"], oversign_from=False)
    forged = raw.replace(b"From: probe@", b"From: ceo@example.com\r\nFrom: probe@")
    assert results(verify_dkim(forged, net)) == ["fail"]


def test_a_missing_key_is_a_permerror(keys):
    assert results(verify_dkim(signed(keys["rsa"]), net_for({}))) == ["permerror"]


def test_a_name_with_other_txt_but_no_key_is_a_permerror(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): ["v=spf1 -all"]})
    assert results(verify_dkim(signed(keys["rsa"]), net)) == ["permerror"]


def test_a_servfail_key_lookup_is_a_temperror(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): "SERVFAIL"})
    assert results(verify_dkim(signed(keys["rsa"]), net)) == ["temperror"]


def test_a_timed_out_key_lookup_is_a_temperror(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): "TIMEOUT"})
    assert results(verify_dkim(signed(keys["rsa"]), net)) == ["temperror"]


def test_a_768_bit_rsa_key_fails_even_with_a_good_signature(keys):
    net = net_for({("weak._domainkey.example.com", "TXT"): [key_record(keys["weak"])]})
    [v] = verify_dkim(signed(keys["weak"], selector="weak"), net)
    assert (v.result, v.key_bits) == ("fail", 768)


def test_a_testing_key_passes_and_says_so(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["ed"], " t=y;")]})
    [v] = verify_dkim(signed(keys["ed"]), net)
    assert (v.result, v.testing) == ("pass", True)
    assert v.reason


def test_a_key_that_does_not_match_fails(keys):
    other = generate_dkim_key("ed25519", 256)
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(other)]})
    assert results(verify_dkim(signed(keys["ed"]), net)) == ["fail"]


def test_a_revoked_key_is_a_permerror(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): ["v=DKIM1; k=rsa; p="]})
    assert results(verify_dkim(signed(keys["rsa"]), net)) == ["permerror"]


def test_a_key_of_the_wrong_type_is_a_permerror(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["rsa"])]})
    assert results(verify_dkim(signed(keys["ed"]), net)) == ["permerror"]


def test_a_key_record_that_does_not_parse_is_a_permerror(keys):
    net = net_for({("s1._domainkey.example.com", "TXT"): ["v=DKIM1; k=rsa; p=!!!"]})
    assert results(verify_dkim(signed(keys["rsa"]), net)) == ["permerror"]


def test_an_rsa_sha1_signature_is_refused_by_policy(keys):
    raw = message()
    header = dkim.sign(
        raw,
        b"s1",
        b"example.com",
        dkimpy_private_bytes(keys["rsa"]),
        signature_algorithm=b"rsa-sha1",
        include_headers=[b"from", b"subject"],
    )
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["rsa"])]})
    [v] = verify_dkim(header + raw, net)
    assert (v.result, v.algorithm) == ("policy", "rsa-sha1")


def test_a_signature_without_from_in_h_is_a_permerror(keys):
    raw = signed(keys["ed"])
    broken = raw.replace(b"h=from : from : to", b"h=to", 1).replace(b"h=from:from:to", b"h=to", 1)
    assert broken != raw
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["ed"])]})
    assert results(verify_dkim(broken, net)) == ["permerror"]


def test_a_malformed_signature_is_a_permerror():
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com\r\n" + message()
    [v] = verify_dkim(raw, net_for({}))
    assert (v.result, v.domain) == ("permerror", "example.com")


def test_garbage_around_a_signature_never_raises():
    raw = b" continuation first\r\nDKIM-Signature: v=1; \xff\r\n\r\nbody"
    assert results(verify_dkim(raw, net_for({}))) == ["permerror"]
    raw = b"DKIM-Signature: ;;;\r\nFrom: a@b\r\n\r\n"
    assert results(verify_dkim(raw, net_for({}))) == ["permerror"]


def test_every_signature_gets_a_verdict_in_order(keys):
    raw = signed(keys["rsa"], domain="example.net", selector="s2", raw=signed(keys["ed"]))
    net = net_for({("s1._domainkey.example.com", "TXT"): [key_record(keys["ed"])]})
    verdicts = verify_dkim(raw, net)
    assert [(v.domain, v.result) for v in verdicts] == [
        ("example.net", "permerror"),
        ("example.com", "pass"),
    ]


# --- SPF ----------------------------------------------------------------------------------------

SPF = {("example.com", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"]}


def test_spf_passes_for_an_authorized_ip():
    r = verify_spf(CLIENT, "probe@example.com", "mx.example.com", net_for(SPF))
    assert (r.result, r.domain, r.identity) == ("pass", "example.com", "mailfrom")


def test_spf_fails_for_another_ip():
    r = verify_spf("198.51.100.1", "probe@example.com", "mx.example.com", net_for(SPF))
    assert r.result == "fail"


def test_the_null_sender_is_checked_for_the_helo_name():
    net = net_for({("mx.example.com", "TXT"): ["v=spf1 ip4:192.0.2.10 -all"]})
    r = verify_spf(CLIENT, "<>", "mx.example.com", net)
    assert (r.result, r.domain, r.identity) == ("pass", "mx.example.com", "helo")


def test_spf_dns_failure_is_a_temperror():
    net = net_for({("example.com", "TXT"): "SERVFAIL"})
    assert verify_spf(CLIENT, "probe@example.com", "h", net).result == "temperror"


def test_spf_rejects_a_bad_ip():
    with pytest.raises(ValueError):
        verify_spf("not-an-ip", "probe@example.com", "h", net_for(SPF))


def test_header_from_domain_needs_exactly_one_address():
    assert header_from_domain(message()) == ("example.com", None)
    two_fields = b"From: a@example.com\r\nFrom: b@example.com\r\n\r\n"
    assert header_from_domain(two_fields)[0] is None
    two_addresses = b"From: a@example.com, b@example.org\r\n\r\n"
    assert header_from_domain(two_addresses)[0] is None
    assert header_from_domain(b"From: nobody\r\n\r\n")[0] is None


# --- the whole message --------------------------------------------------------------------------


def records(keys, dmarc="v=DMARC1; p=reject", more=None):
    data = {
        ("s1._domainkey.example.com", "TXT"): [key_record(keys["ed"])],
        ("example.com", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"],
    }
    if dmarc:
        data[("_dmarc.example.com", "TXT")] = [dmarc]
    data.update(more or {})
    return data


def test_a_good_message_passes_everything(keys):
    own = verify_message(
        signed(keys["ed"]),
        client_ip=CLIENT,
        mail_from="probe@example.com",
        helo="mx.example.com",
        net=net_for(records(keys)),
    )
    assert own.dkim_result == "pass"
    assert own.spf.result == "pass"
    assert (own.dmarc.result, own.dmarc.policy) == ("pass", "reject")
    assert own.dmarc.dkim_aligned == ("example.com",)
    assert own.dmarc.spf_aligned
    assert own.header_from_domain == "example.com"


def test_an_unaligned_signature_and_foreign_mail_from_fail_dmarc(keys):
    net = net_for(records(keys, more={("_dmarc.example.org", "TXT"): ["v=DMARC1; p=reject"]}))
    own = verify_message(
        signed(keys["ed"], raw=message("probe@example.org")),
        client_ip=CLIENT,
        mail_from="probe@example.com",
        helo="mx.example.com",
        net=net,
    )
    assert own.dkim_result == "pass"
    assert own.spf.result == "pass"
    assert (own.dmarc.result, own.dmarc.dkim_aligned, own.dmarc.spf_aligned) == (
        "fail",
        (),
        False,
    )


def test_strict_dkim_alignment_fails_a_subdomain_from(keys):
    own = verify_message(
        signed(keys["ed"], raw=message("probe@sub.example.com")),
        client_ip=None,
        mail_from="probe@sub.example.com",
        helo="mx.example.com",
        net=net_for(records(keys, dmarc="v=DMARC1; p=reject; adkim=s")),
    )
    assert own.spf is None
    assert (own.dmarc.result, own.dmarc.policy_domain) == ("fail", "example.com")


def test_relaxed_dkim_alignment_passes_a_subdomain_from(keys):
    own = verify_message(
        signed(keys["ed"], raw=message("probe@sub.example.com")),
        client_ip=None,
        mail_from="probe@sub.example.com",
        helo="mx.example.com",
        net=net_for(records(keys)),
    )
    assert own.dmarc.result == "pass"
    assert own.dmarc.dkim_aligned == ("example.com",)


def test_aligned_spf_alone_passes_dmarc(keys):
    own = verify_message(
        message(),
        client_ip=CLIENT,
        mail_from="bounce@example.com",
        helo="mx.example.com",
        net=net_for(records(keys)),
    )
    assert own.dkim == [] and own.dkim_result == "none"
    assert (own.dmarc.result, own.dmarc.spf_aligned) == ("pass", True)


def test_no_dmarc_record_gives_none(keys):
    own = verify_message(
        signed(keys["ed"]),
        client_ip=CLIENT,
        mail_from="probe@example.com",
        helo="h",
        net=net_for(records(keys, dmarc=None)),
    )
    assert own.dmarc.result == "none"


def test_two_from_fields_give_a_dmarc_permerror(keys):
    raw = message().replace(b"From: probe@", b"From: x@example.org\r\nFrom: probe@")
    own = verify_message(raw, client_ip=None, mail_from="", helo="h", net=net_for(records(keys)))
    assert (own.dmarc.result, own.header_from_domain) == ("permerror", "")


def test_a_failed_dmarc_lookup_gives_a_dmarc_temperror(keys):
    net = net_for(records(keys, dmarc=None, more={("_dmarc.example.com", "TXT"): "SERVFAIL"}))
    own = verify_message(
        signed(keys["ed"]), client_ip=None, mail_from="probe@example.com", helo="h", net=net
    )
    assert own.dkim_result == "pass"
    assert own.dmarc.result == "temperror"

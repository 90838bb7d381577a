"""message.roundtrip against the real lab, in every flavour: send, read back, judge.

The Target is the one `mailprobe check --lab` builds (submission through the outbound MTA on
587 with the lab user, mailprobe signing with the lab key, the outbound MTA signing too, the
mx verifying and adding Authentication-Results, Dovecot storing (behind Perdition in that
flavour), IMAPS+IDLE reading back). Each scenario asserts the exact warn/fail codes. Lab facts
behind the expectations (per MTA in flavour_facts.py):
- the mx verifies DKIM (RFC 8301: RSA under 1024 bits is `dkim=fail` at Exim, `dkim=policy`
  at OpenDKIM), Ed25519 included, and SPF (pyspf: Exim's ${run} hook, policyd-spf,
  pyspf-milter) against the envelope sender; only Postfix's OpenDMARC gives `dmarc=`, which
  the round trip compares with the harness's own DMARC verdict; only Exim gives `iprev=`;
- the outbound MTA signs with the same selector as mailprobe (`mail`), so a submitted message
  carries two signatures with the same d= and s=;
- Dovecot allows 100 connections per user and address (mail_max_userip_connections), so
  20 round trips can wait in the one lab mailbox at once.
"""

from __future__ import annotations

import imaplib
import json
import ssl
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from flavour_facts import SHORT_KEY_DKIM, STRIPS_FORGED_DKIM_RESULTS, mta, mx_methods

from probes.checks.message_roundtrip import MessageRoundTripProbe
from probes.lab.pki import generate_dkim_key, private_pem, write_secret
from probes.lab.spec import LabSpec, SelectorSpec
from probes.lab.target import lab_target as build_lab_target
from probes.model import MessageOptions, Outcome, ProbeResult, Severity, Target, Timeouts
from probes.net import Net
from probes.parse import authres
from probes.runner import Redactor, run_one

pytestmark = pytest.mark.lab
FLAVOURED = True  # every test runs on every lab flavour (tests/lab/conftest.py)

DEADLINE_S = 10.0
OTHER = "other.test"

SPECS = {
    "testing": LabSpec(selectors=(SelectorSpec(testing=True),)),
    "rsa-768": LabSpec(selectors=(SelectorSpec(bits=768),)),
    "ed25519": LabSpec(selectors=(SelectorSpec(key_type="ed25519"),)),
    "other-domain": LabSpec(
        extra_zones={OTHER: ('@ TXT "v=spf1 -all"', '_dmarc TXT "v=DMARC1; p=reject"')}
    ),
}

# (result, the lab's password) of every round trip of the module, for the secret check
RESULTS: list[tuple[ProbeResult, str]] = []


# ----- labs and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_for(flavour_lab, flavoured, mailprobe_lab_factory_session):
    """lab_for(name) -> the flavour's correct lab for "default", else a lab for SPECS[name] in
    the flavour, started once; the module's own labs are removed when the module is done."""
    labs = {}

    def get(name: str):
        if name == "default":
            return flavour_lab
        if name not in labs:
            labs[name] = mailprobe_lab_factory_session(flavoured(SPECS[name]))
        return labs[name]

    yield get
    with ThreadPoolExecutor(max_workers=4) as pool:  # Lab.stop is safe to call again later
        list(pool.map(lambda lab: lab.stop(), labs.values()))


@pytest.fixture
def roundtrip(lab_for):
    """roundtrip(lab_name="default", dkim_keys=None, net=None, **message_options) ->
    (ProbeResult, LabInfo)."""

    def run(lab_name: str = "default", *, dkim_keys=None, net: Net | None = None, **options):
        info = lab_for(lab_name).info
        target = lab_target(info, dkim_keys=dkim_keys, **options)
        result = run_one(MessageRoundTripProbe(), target, net or Net.for_target(target), Redactor())
        RESULTS.append((result, info.password))
        return result, info

    return run


def lab_target(info, *, dkim_keys=None, **options) -> Target:
    domain = info.domain
    message = {
        "submit_host": f"outbound.{domain}",
        "source_address": info.client_ips["authorized"],
        "deadline_s": DEADLINE_S,
        **options,
    }
    return build_lab_target(  # the lab's login travels in memory, in the Target
        info,
        timeouts=Timeouts(dns=2.0, connect=3.0, io=5.0),
        dkim_keys=tuple(dkim_keys if dkim_keys is not None else info.dkim.items()),
        message=MessageOptions(**message),
    )


def severe(result: ProbeResult) -> Counter:
    """The warn/fail codes of a completed run, counted."""
    assert result.outcome is Outcome.COMPLETED, (result.error, result.error_detail)
    return Counter(f.code for f in result.findings if f.severity is not Severity.INFO)


def info_codes(result: ProbeResult) -> set[str]:
    return {f.code for f in result.findings if f.severity is Severity.INFO}


def finding(result: ProbeResult, code: str):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, (code, [f.code for f in result.findings])
    return found[0]


def receiver_results(result: ProbeResult, method: str) -> list[authres.AuthResult]:
    """The `method` results of the trusted Authentication-Results header (AUTHRES_SEEN)."""
    seen = finding(result, "AUTHRES_SEEN")
    parsed = [authres.parse(value) for value in seen.evidence.values()]
    return [r for ar in parsed for r in ar.results if r.method == method]


def own(result: ProbeResult) -> dict[str, str]:
    return dict(finding(result, "OWN_VERDICTS").evidence)


def token_of(result: ProbeResult) -> str:
    return finding(result, "MESSAGE_DELIVERED").evidence["token"]


def imap_search(info, *criteria: str) -> tuple[imaplib.IMAP4_SSL, list[bytes]]:
    im = imaplib.IMAP4_SSL(
        info.hosts["mailbox"],
        info.ports["imaps"],
        ssl_context=ssl.create_default_context(cafile=info.ca_file),
        timeout=10,
    )
    im.login(info.user, info.password)
    im.select("INBOX")
    _, data = im.uid("SEARCH", *criteria)
    return im, data[0].split()


def in_mailbox(info, *tokens: str) -> int:
    """How many messages carry one of `tokens` in their X-Mailprobe-Token header."""
    im, uids = imap_search(info, "HEADER", "X-Mailprobe-Token", tokens[0])
    try:
        for token in tokens[1:]:
            _, data = im.uid("SEARCH", "HEADER", "X-Mailprobe-Token", token)
            uids += data[0].split()
    finally:
        im.logout()
    return len(uids)


def delete_bounce(info, token: str, wait_s: float = 10.0) -> int:
    """Wait for the bounce quoting `token` in its body, delete it; how many were deleted."""
    end = time.monotonic() + wait_s
    while True:
        im, uids = imap_search(info, "BODY", token)
        try:
            if uids:
                im.uid("STORE", b",".join(uids).decode(), "+FLAGS.SILENT", r"(\Deleted)")
                im.expunge()
                return len(uids)
        finally:
            im.logout()
        if time.monotonic() > end:
            return 0
        time.sleep(0.1)


@pytest.fixture
def foreign_key(tmp_path) -> str:
    """A fresh RSA key, not the one published in DNS (owner-only, like a real key file)."""
    path = tmp_path / "foreign.key"
    write_secret(path, private_pem(generate_dkim_key("rsa", 2048)))
    return str(path)


# ----- a correct lab --------------------------------------------------------------------------


def test_a_correct_lab_round_trip_has_no_warn_or_fail_and_passes_dmarc(roundtrip, flavour):
    result, info = roundtrip()
    methods = mx_methods(flavour)
    assert severe(result) == Counter()
    assert info_codes(result) == {"MESSAGE_DELIVERED", "AUTHRES_SEEN", "OWN_VERDICTS"}
    assert finding(result, "AUTHRES_SEEN").subject == f"mx.{info.domain}"
    # Two signatures (mailprobe's and the outbound MTA's), both passing at the mx.
    assert [r.result for r in receiver_results(result, "dkim")] == ["pass", "pass"]
    assert [r.result for r in receiver_results(result, "spf")] == ["pass"]
    iprev = [r.result for r in receiver_results(result, "iprev")]
    assert iprev == (["pass"] if "iprev" in methods else [])
    # OpenDMARC's verdict, compared with the harness's own (no VERDICT_DISAGREEMENT above)
    dmarc = [r.result for r in receiver_results(result, "dmarc")]
    assert dmarc == (["pass"] if "dmarc" in methods else [])
    verdicts = own(result)
    assert verdicts["dmarc"] == "pass"
    assert verdicts["spf"] == f"pass ({info.domain})"
    assert verdicts["dkim"].split() == ["pass(d=example.test", "s=mail)"] * 2
    assert "dkim_testing" not in verdicts
    assert (verdicts["dkim_aligned"], verdicts["spf_aligned"]) == ("example.test", "yes")
    delivered = finding(result, "MESSAGE_DELIVERED").evidence
    assert delivered["deleted"] == "yes"
    assert delivered["retrieved_via"] == "imaps (idle)"
    assert in_mailbox(info, delivered["token"]) == 0


# ----- DKIM -----------------------------------------------------------------------------------


def test_a_signing_key_other_than_the_published_one_fails_dkim_but_dmarc_passes_on_spf(
    roundtrip, foreign_key
):
    # Straight to the mx from the authorized client: mailprobe's is the only signature.
    result, _ = roundtrip(dkim_keys=(("mail", foreign_key),), send_via="mx")
    assert severe(result) == Counter({"AUTHRES_DKIM_NOT_PASS": 1, "DKIM_SIGNATURE_INVALID": 1})
    assert finding(result, "AUTHRES_DKIM_NOT_PASS").evidence["result"] == "fail"
    invalid = finding(result, "DKIM_SIGNATURE_INVALID")
    assert (invalid.evidence["d"], invalid.evidence["s"], invalid.evidence["result"]) == (
        "example.test",
        "mail",
        "fail",
    )
    assert invalid.subject == "mail._domainkey.example.test"
    assert own(result)["dmarc"] == "pass"
    assert own(result)["spf"] == "pass (example.test)"
    # the signature failed: DMARC passes on the aligned SPF alone
    assert (own(result)["dkim_aligned"], own(result)["spf_aligned"]) == ("none", "yes")


def test_a_bad_signature_next_to_a_good_one_with_the_same_selector_is_no_disagreement(
    roundtrip, foreign_key
):
    # Submitted: the outbound Exim adds a good signature with the same d= and s= as
    # mailprobe's bad one; the mx and the harness agree on {pass, fail}.
    result, _ = roundtrip(dkim_keys=(("mail", foreign_key),))
    assert severe(result) == Counter({"AUTHRES_DKIM_NOT_PASS": 1, "DKIM_SIGNATURE_INVALID": 1})
    assert sorted(r.result for r in receiver_results(result, "dkim")) == ["fail", "pass"]
    assert own(result)["dmarc"] == "pass"


def test_a_key_in_testing_mode_passes_and_the_own_verdict_says_so(roundtrip):
    result, _ = roundtrip("testing")
    assert severe(result) == Counter()
    verdicts = own(result)
    assert verdicts["dkim_testing"] == "d=example.test s=mail"
    assert verdicts["dkim"].count("t=y") == 2
    assert verdicts["dmarc"] == "pass"


def test_a_768_bit_rsa_key_fails_at_the_mx_and_in_the_own_verdict(roundtrip, flavour):
    # RFC 8301 §3.2: RSA keys under 1024 bits are never valid. Exim 4.96 (default
    # dkim_verify_min_keysizes rsa=1024) says dkim=fail for both signatures (mailprobe's and
    # the outbound's), OpenDKIM (MinimumKeyBits 1024) dkim=policy; the harness's fail agrees
    # with both; DMARC still passes on aligned SPF.
    result, _ = roundtrip("rsa-768")
    assert severe(result) == Counter({"AUTHRES_DKIM_NOT_PASS": 2, "DKIM_SIGNATURE_INVALID": 2})
    expected = SHORT_KEY_DKIM[mta(flavour)]
    assert [r.result for r in receiver_results(result, "dkim")] == [expected, expected]
    invalid = [f for f in result.findings if f.code == "DKIM_SIGNATURE_INVALID"]
    assert {f.evidence["result"] for f in invalid} == {"fail"}
    assert own(result)["dmarc"] == "pass"


def test_an_ed25519_key_passes_at_the_mx_and_in_the_own_verdict(roundtrip):
    result, _ = roundtrip("ed25519")
    assert severe(result) == Counter()
    dkim = receiver_results(result, "dkim")
    assert [(r.result, r.properties["header.a"]) for r in dkim] == [
        ("pass", "ed25519-sha256"),
        ("pass", "ed25519-sha256"),
    ]
    assert own(result)["dmarc"] == "pass"


def test_the_targets_mta_signing_alone_passes(roundtrip):
    result, _ = roundtrip(signer="target")
    assert severe(result) == Counter()
    assert [r.result for r in receiver_results(result, "dkim")] == ["pass"]
    assert own(result)["dkim"] == "pass(d=example.test s=mail)"
    assert own(result)["dmarc"] == "pass"


def test_simple_simple_canonicalization_passes(roundtrip):
    result, _ = roundtrip(canonicalization="simple/simple")
    assert severe(result) == Counter()
    assert [r.result for r in receiver_results(result, "dkim")] == ["pass", "pass"]


# ----- SPF and DMARC --------------------------------------------------------------------------


@pytest.fixture
def unauthorized(lab_for) -> str:
    return lab_for("default").info.client_ips["unauthorized"]


def test_a_sending_address_not_in_spf_fails_spf_at_the_mx_and_nothing_else(roundtrip, unauthorized):
    result, info = roundtrip(send_via="mx", source_address=unauthorized)
    assert severe(result) == Counter({"AUTHRES_SPF_NOT_PASS": 1})
    spf = finding(result, "AUTHRES_SPF_NOT_PASS").evidence
    assert spf["result"] == "fail"
    # the address (Exim) or its domain (policyd-spf, pyspf-milter): RFC 8601 allows both
    assert spf["smtp.mailfrom"] in (info.user, info.domain)
    assert own(result)["spf"] == "fail (example.test)"
    assert own(result)["dmarc"] == "pass"  # on the aligned DKIM signature


def test_a_from_domain_not_aligned_with_dkim_or_spf_fails_dmarc_alignment(roundtrip, flavour):
    # Exim and sendmail do no DMARC: only the harness says so. Postfix's OpenDMARC says
    # dmarc=fail too (AUTHRES_DMARC_NOT_PASS), in agreement (no VERDICT_DISAGREEMENT). SPF is
    # for the envelope sender (example.test) and passes.
    result, _ = roundtrip(
        "other-domain",
        header_from=f"user@{OTHER}",
        signing_domain="example.test",
        send_via="mx",
    )
    at_mx = "dmarc" in mx_methods(flavour)
    expected = Counter({"DMARC_NOT_ALIGNED": 1, "AUTHRES_DMARC_NOT_PASS": 1 if at_mx else 0})
    assert severe(result) == +expected
    if at_mx:
        (dmarc,) = receiver_results(result, "dmarc")
        assert (dmarc.result, dmarc.properties["header.from"]) == ("fail", OTHER)
    misaligned = finding(result, "DMARC_NOT_ALIGNED")
    assert misaligned.subject == OTHER
    assert misaligned.evidence["dkim_pass"] == "example.test"
    assert misaligned.evidence["spf"] == "pass (example.test)"
    assert [r.result for r in receiver_results(result, "spf")] == ["pass"]
    assert own(result)["dmarc"] == "fail"


# ----- forged results -------------------------------------------------------------------------


def test_results_carried_in_the_sent_message_are_forged_and_the_real_ones_still_trusted(
    roundtrip,
):
    # SPF only: every mx flavour delivers it as it came.
    forged = "mx.example.test; spf=pass smtp.mailfrom=example.test"
    result, _ = roundtrip(extra_headers=(("Authentication-Results", forged),))
    assert severe(result) == Counter({"AUTHRES_FORGED": 1})
    flagged = finding(result, "AUTHRES_FORGED")
    assert flagged.evidence["header"] == forged
    assert flagged.subject == "mx.example.test"
    seen = finding(result, "AUTHRES_SEEN").evidence
    assert forged not in seen.values()
    assert [r.result for r in receiver_results(result, "dkim")] == ["pass", "pass"]
    assert [r.result for r in receiver_results(result, "spf")] == ["pass"]


def test_forged_dkim_results_are_flagged_or_removed_by_the_mx_never_trusted(roundtrip, flavour):
    # OpenDKIM removes results claiming its authserv-id that carry dkim= (RFC 8601 §5);
    # Exim leaves them, and the harness flags them.
    forged = "mx.example.test; dkim=pass header.d=example.test; spf=pass smtp.mailfrom=example.test"
    result, _ = roundtrip(extra_headers=(("Authentication-Results", forged),))
    stripped = STRIPS_FORGED_DKIM_RESULTS[mta(flavour)]
    assert severe(result) == (Counter() if stripped else Counter({"AUTHRES_FORGED": 1}))
    assert forged not in finding(result, "AUTHRES_SEEN").evidence.values()
    assert [r.result for r in receiver_results(result, "dkim")] == ["pass", "pass"]


def test_results_under_another_authserv_id_leave_the_configured_receiver_missing(roundtrip):
    result, _ = roundtrip(receiver_id="gateway.example.test")
    assert severe(result) == Counter({"AUTHRES_MISSING": 1})
    missing = finding(result, "AUTHRES_MISSING")
    assert missing.subject == "gateway.example.test"
    assert missing.evidence["other_authserv_ids"] == "mx.example.test"
    assert own(result)["dmarc"] == "pass"  # the harness's own verdicts still stand


# ----- refused messages -----------------------------------------------------------------------


def test_a_message_the_mx_refuses_after_submission_is_not_delivered(roundtrip):
    result, info = roundtrip(rcpt_to="unknown@example.test", deadline_s=3)
    assert severe(result) == Counter({"MESSAGE_NOT_DELIVERED": 1})
    refused = finding(result, "MESSAGE_NOT_DELIVERED")
    assert refused.evidence["sent_to"] == f"outbound.{info.domain}:587"
    assert "stage" not in refused.evidence
    # The outbound relay accepted it, the mx refused it, the bounce came back to the sender.
    assert delete_bounce(info, refused.evidence["token"]) == 1


def test_a_message_the_mx_refuses_in_the_smtp_dialogue_is_not_delivered_at_rcpt(roundtrip):
    result, _ = roundtrip(send_via="mx", rcpt_to="unknown@example.test")
    assert severe(result) == Counter({"MESSAGE_NOT_DELIVERED": 1})
    refused = finding(result, "MESSAGE_NOT_DELIVERED").evidence
    assert refused["stage"] == "RCPT"
    assert refused["reply"].startswith("550")
    assert "sent_to" not in refused


# ----- retrieval ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("via", "method"),
    [("imaps", "idle"), ("imap", "idle"), ("pop3s", "pop3"), ("pop3", "pop3")],
)
def test_every_retrieval_protocol_finds_and_deletes_the_message(roundtrip, via, method):
    result, info = roundtrip(retrieve_via=via)
    assert severe(result) == Counter()
    delivered = finding(result, "MESSAGE_DELIVERED").evidence
    assert delivered["retrieved_via"] == f"{via} ({method})"
    assert delivered["deleted"] == "yes"
    assert in_mailbox(info, delivered["token"]) == 0


def test_a_kept_message_stays_in_the_mailbox(roundtrip):
    result, info = roundtrip(keep=True)
    assert severe(result) == Counter()
    delivered = finding(result, "MESSAGE_DELIVERED").evidence
    assert delivered["deleted"] == "no"
    token = delivered["token"]
    im, uids = imap_search(info, "HEADER", "X-Mailprobe-Token", token)
    try:
        assert len(uids) == 1
        im.uid("STORE", uids[0].decode(), "+FLAGS.SILENT", r"(\Deleted)")
        im.expunge()
    finally:
        im.logout()


# ----- concurrency and secrets ----------------------------------------------------------------


def test_twenty_concurrent_round_trips_each_find_their_own_message(lab_for):
    info = lab_for("default").info
    target = lab_target(info)

    # Each its own run (own Net, own connection slots), like 20 `mailprobe check` at once:
    # 20 readers wait in one mailbox while 20 messages land.
    def one(_) -> ProbeResult:
        return run_one(MessageRoundTripProbe(), target, Net.for_target(target), Redactor())

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    RESULTS.extend((r, info.password) for r in results)
    assert [severe(r) for r in results] == [Counter()] * 20
    tokens = [token_of(r) for r in results]
    assert len(set(tokens)) == 20
    for result in results:
        assert own(result)["dmarc"] == "pass"
        assert finding(result, "MESSAGE_DELIVERED").evidence["deleted"] == "yes"
    assert in_mailbox(info, *tokens) == 0


def test_the_lab_password_never_appears_in_any_result(roundtrip):
    roundtrip()
    roundtrip(send_via="mx", rcpt_to="unknown@example.test")
    roundtrip(retrieve_via="pop3")
    assert len(RESULTS) >= 3
    for result, password in RESULTS:
        assert password not in json.dumps(result.to_json())

"""message.roundtrip: send a test message, read it back, and judge how it was received.

The self-hosted version of mailing port25's check-auth or mail-tester and reading the report:
1. compose a message carrying a unique token (Message-ID, X-Mailprobe-Token, Subject), so
   concurrent runs never confuse their messages;
2. sign it with dkimpy (`--dkim-key`; `signer: target` sends it unsigned and expects the
   target's MTA to sign);
3. send it: submission 587 (STARTTLS + AUTH), 465 (implicit TLS + AUTH), or straight to an MX
   on 25 from the configured source address;
4. read it back over IMAP (IDLE where offered) or POP3, implicit TLS or STARTTLS, matched by
   token, until the deadline; delete it unless told to keep it;
5. judge: the receiver's own Authentication-Results (probes.mail.trust: authserv-id match,
   forged ones flagged), the harness's own DKIM/SPF/DMARC verdicts (probes.mail.verify), and
   every disagreement between the two.

Codes (CONTRACT.md "Message round trip"; subject: the receiver id or the d=/selector):
MESSAGE_NOT_DELIVERED [fail], AUTHRES_MISSING [fail], AUTHRES_FORGED [warn],
AUTHRES_{SPF,DKIM,DMARC,IPREV}_NOT_PASS [fail], DKIM_SIGNATURE_INVALID [fail],
DMARC_NOT_ALIGNED [fail], VERDICT_DISAGREEMENT [warn]; added: MESSAGE_DELIVERED [info] (timings),
AUTHRES_SEEN [info] (the trusted header), OWN_VERDICTS [info] (the harness's verdicts).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace

from probes.codes import Code, Fix, declare
from probes.credentials import Credentials, has_login, login_for
from probes.errors import ProbeConfigError, ProbeSkipped
from probes.mail import trust
from probes.mail.compose import TestMessage, compose, new_token
from probes.mail.dkim_sign import load_signing_key, sign
from probes.mail.verify import OwnVerdicts, verify_message
from probes.model import (
    Finding,
    Severity,
    Target,
)
from probes.net import Net
from probes.net.mailbox import fetch_by_token
from probes.net.smtp_send import SmtpRejected, send_message
from probes.parse.authres import AuthResult
from probes.probe import BaseProbe
from probes.probekit.endpoints import Endpoint, endpoints_for
from probes.probekit.message_codes import MESSAGE_CODES
from probes.probekit.reproduce import swaks_line
from probes.validate import check_message

# send_via -> (role, port, TLS mode)
SEND = {
    "submission": ("submission", 587, "starttls"),
    "submissions": ("submission", 465, "implicit"),
    "mx": ("mx", 25, "starttls"),
}
# retrieve_via -> (protocol, port, TLS mode)
RETRIEVE = {
    "imaps": ("imap", 993, "implicit"),
    "imap": ("imap", 143, "starttls"),
    "pop3s": ("pop3", 995, "implicit"),
    "pop3": ("pop3", 110, "starttls"),
}
METHODS = ("spf", "dkim", "dmarc", "iprev")
EHLO_NAME = "mailprobe.invalid"


class MessageRoundTrip:
    """Shared by the probe and the benchmark: one round trip, its raw results."""

    def __init__(self, target: Target, net: Net, creds: Credentials) -> None:
        self.target, self.net, self.creds = target, net, creds
        self.opts = target.message

    def addresses(self) -> tuple[str, str, str]:
        """(envelope sender, header From, recipient)."""
        o = self.opts
        mail_from = o.mail_from or self.creds.user
        header_from = o.header_from or mail_from
        rcpt_to = o.rcpt_to or self.creds.user
        for label, value in (("mail_from", mail_from), ("header_from", header_from)):
            if "@" not in value:
                raise ProbeConfigError(f"message.{label} {value!r}: not an address")
        return mail_from, header_from, rcpt_to

    def build(self) -> TestMessage:
        mail_from, header_from, rcpt_to = self.addresses()
        message = compose(
            token=new_token(),
            header_from=header_from,
            to=rcpt_to,
            mail_from=mail_from,
            extra_headers=self.opts.extra_headers,
        )
        if self.opts.signer != "mailprobe" or not self.target.dkim_keys:
            return message
        selector, path = self.target.dkim_keys[0]
        raw = sign(
            message.raw,
            key=load_signing_key(path),
            domain=(self.opts.signing_domain or header_from.rsplit("@", 1)[1]).lower(),
            selector=selector,
            canonicalization=self.opts.canonicalization,
            headers=self.opts.signed_headers,
            oversign_from=self.opts.oversign_from,
        )
        return TestMessage(
            token=message.token,
            raw=raw,
            message_id=message.message_id,
            header_from=message.header_from,
            mail_from=message.mail_from,
            rcpt_to=message.rcpt_to,
        )

    def submit_endpoint(self) -> tuple[Endpoint, str]:
        role, port, mode = SEND[self.opts.send_via]
        target = self.target
        if role == "submission" and self.opts.submit_host:
            target = replace(target, submission_hosts=(self.opts.submit_host,))
        return endpoints_for(target, self.net, role, port)[0], mode

    def mailbox_endpoint(self) -> tuple[Endpoint, str, str]:
        protocol, port, mode = RETRIEVE[self.opts.retrieve_via]
        return endpoints_for(self.target, self.net, "mailbox", port)[0], protocol, mode

    def send(self, message: TestMessage) -> tuple[Endpoint, float]:
        ep, mode = self.submit_endpoint()
        net = self.net
        if self.opts.source_address:
            # A copy bound to the source address, still sharing the run's connection slots
            # and DNS door (a copy made before they exist would get its own).
            net = replace(
                net,
                source_address=self.opts.source_address,
                host_slots=net.slots,
                dns_client=net.dns,
            )
        t0 = time.monotonic()
        send_message(
            net,
            ip=ep.ip,
            port=ep.port,
            server_name=ep.host,
            mode=mode,
            helo=EHLO_NAME,
            mail_from=message.mail_from,
            rcpt_to=[message.rcpt_to],
            raw=message.raw,
            creds=self.creds if self.opts.send_via != "mx" else None,
        )
        return ep, time.monotonic() - t0

    def fetch(self, message: TestMessage, deadline: float):
        ep, protocol, mode = self.mailbox_endpoint()
        return fetch_by_token(
            self.net,
            ip=ep.ip,
            port=ep.port,
            server_name=ep.host,
            protocol=protocol,
            tls=mode,
            creds=self.creds,
            token=message.token,
            deadline=deadline,
            delete=not self.opts.keep,
        )


class MessageRoundTripProbe(BaseProbe):
    id = "message.roundtrip"
    description = (
        "send a DKIM-signed test message, read it back over IMAP/POP3, judge the receiver's "
        "Authentication-Results against the harness's own DKIM/SPF/DMARC verdicts"
    )
    codes = declare(
        MESSAGE_CODES,
        Code(
            "MESSAGE_DELIVERED",
            "the test message arrived: submit and delivery timings",
            Severity.INFO,
        ),
        Code(
            "AUTHRES_MISSING",
            "no Authentication-Results from the trusted receiver",
            Severity.FAIL,
            fix=Fix(
                "The receiver added no Authentication-Results header with the authserv-id "
                "mailprobe trusts (--receiver-id; default: the first MX host name). Either it "
                "verifies nothing, or it writes another id (the evidence lists the ids seen): "
                "turn verification on and make the id the one mailprobe expects, or pass the "
                "receiver's id with --receiver-id.",
                {
                    "exim": "# acl_smtp_data\n"
                    "  warn  add_header = :at_start:${authresults{<authserv-id>}}",
                    "postfix": "smtpd_milters = unix:/run/opendkim/opendkim.sock, "
                    "unix:/run/opendmarc/opendmarc.sock",
                    "sendmail": "INPUT_MAIL_FILTER(`opendkim', "
                    "`S=local:/run/opendkim/opendkim.sock, F=T')dnl",
                    "opendkim": "AuthservID <authserv-id>\nAlwaysAddARHeader yes",
                    "opendmarc": "AuthservID <authserv-id>\nTrustedAuthservIDs <authserv-id>",
                },
            ),
        ),
        Code(
            "AUTHRES_FORGED",
            "an Authentication-Results header claiming the receiver's id came with the message",
            Severity.WARN,
            fix=Fix(
                "The message arrived already carrying an Authentication-Results header with "
                "the receiver's own authserv-id, and the receiver kept it. A receiver must "
                "remove such headers from incoming mail before adding its own (RFC 8601 §5), "
                "or a sender can forge a pass that your users and filters trust. Configure the "
                "verifier (milter or MTA) to strip Authentication-Results headers bearing its "
                "id from mail that arrives from outside, then repeat the round trip."
            ),
        ),
        Code("AUTHRES_SEEN", "the receiver's own Authentication-Results", Severity.INFO),
        Code("OWN_VERDICTS", "the harness's own DKIM, SPF and DMARC results", Severity.INFO),
        Code(
            "VERDICT_DISAGREEMENT",
            "the harness's verdict for a method differs from the receiver's",
            Severity.WARN,
            fix=Fix(
                "mailprobe and the receiver judged the same message differently. Compare the "
                "evidence: the usual causes are an SPF check made for another address (the "
                "receiver sits behind a relay or a NAT and checks the internal hop), a DNS "
                "record changed between the two checks (TTL), or a verifier with a "
                "different idea of the rules (an old library rejecting ed25519 or accepting "
                "rsa-sha1). Make the receiver check the client address the mail came from, "
                "let the TTLs pass after a DNS change, and update the verifier."
            ),
        ),
    )

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        target = replace(target, message=check_message(target.message))
        if not has_login(target):
            raise ProbeSkipped(
                "the round trip logs in to read the message back: give --credentials"
            )
        creds = login_for(target)
        assert creds is not None
        trip = MessageRoundTrip(target, net, creds)
        message = trip.build()
        receiver_id = self.receiver_id(target, net)
        sent_ep, _ = trip.submit_endpoint()
        reproduce = self.reproduce(sent_ep, target, message, creds)
        try:
            sent_ep, submit_s = trip.send(message)
        except SmtpRejected as refused:
            yield self.finding(
                "MESSAGE_NOT_DELIVERED",
                Severity.FAIL,
                f"{sent_ep.subject} refused the test message at {refused.stage}",
                evidence={
                    "token": message.token,
                    "stage": refused.stage,
                    "reply": f"{refused.code} {refused.text}"[:300],
                },
                reproduce=reproduce,
                subject=message.rcpt_to,
                volatile=["token"],
            )
            return
        sent_at = time.monotonic()
        retrieved = trip.fetch(message, sent_at + target.message.deadline_s)
        if retrieved is None:
            yield self.finding(
                "MESSAGE_NOT_DELIVERED",
                Severity.FAIL,
                f"the test message did not arrive within {target.message.deadline_s:g} s",
                evidence={"token": message.token, "sent_to": sent_ep.subject},
                reproduce=reproduce,
                subject=message.rcpt_to,
                volatile=["token"],
            )
            return
        yield self.finding(
            "MESSAGE_DELIVERED",
            Severity.INFO,
            f"the test message arrived after {time.monotonic() - sent_at:.2f} s",
            evidence={
                "token": message.token,
                "submit_s": f"{submit_s:.3f}",
                "found_after_s": f"{retrieved.found_after_s:.3f}",
                "retrieved_via": f"{target.message.retrieve_via} ({retrieved.method})",
                "deleted": "yes" if retrieved.deleted else "no",
            },
            reproduce=reproduce,
            subject=message.rcpt_to,
            volatile=["token", "submit_s", "found_after_s"],
        )
        yield from self.judge(retrieved.raw, message, receiver_id, net, reproduce)

    def receiver_id(self, target: Target, net: Net) -> str:
        if target.message.receiver_id:
            return target.message.receiver_id
        return endpoints_for(target, net, "mx", 25)[0].host

    # ----- judging ------------------------------------------------------------------------
    def judge(
        self, raw: bytes, message: TestMessage, receiver_id: str, net: Net, reproduce: str
    ) -> Iterator[Finding]:
        verdicts = trust.judge(raw, message.raw, receiver_id)
        for ar, why in verdicts.forged:
            yield self.finding(
                "AUTHRES_FORGED",
                Severity.WARN,
                f"an Authentication-Results header claims {receiver_id}, but {why}",
                evidence={"header": ar.value[:300], "why": why},
                reproduce=reproduce,
                subject=receiver_id,
                volatile=per_message({"header": ar.value}),
            )
        receiver = _receiver_results(verdicts)
        if not verdicts.trusted:
            yield self.finding(
                "AUTHRES_MISSING",
                Severity.FAIL,
                f"no Authentication-Results from {receiver_id} in the received message",
                evidence={
                    "other_authserv_ids": " ".join(
                        sorted({a.parsed.authserv_id for a in verdicts.foreign if a.parsed})
                    )
                    or "none",
                    "unparsed": str(len(verdicts.unparsed)),
                },
                reproduce=reproduce,
                subject=receiver_id,
            )
        else:
            headers = {f"header_{i}": a.value[:400] for i, a in enumerate(verdicts.trusted)}
            yield self.finding(
                "AUTHRES_SEEN",
                Severity.INFO,
                f"{receiver_id} added Authentication-Results",
                evidence=headers,
                reproduce=reproduce,
                subject=receiver_id,
                volatile=per_message(headers),
            )
            for method in METHODS:
                for result in receiver.get(method, []):
                    if result.result != "pass":
                        evidence = _result_evidence(result)
                        # Receivers such as Exim give their reasons in comments, which the
                        # parser drops: the header itself shows them.
                        evidence["header"] = _excerpt(verdicts.trusted, method)
                        yield self.finding(
                            f"AUTHRES_{method.upper()}_NOT_PASS",
                            Severity.FAIL,
                            f"{receiver_id} says {method}={result.result}",
                            evidence=evidence,
                            reproduce=reproduce,
                            subject=receiver_id,
                            volatile=per_message(evidence),
                        )
        seen = trust.client_seen(raw, receiver_id, message.raw)
        own = verify_message(
            raw,
            client_ip=seen.ip,
            mail_from=trust.return_path(raw) or message.mail_from,
            helo=seen.helo or EHLO_NAME,
            net=net,
        )
        yield from self.own_findings(own, receiver_id, reproduce)
        if verdicts.trusted:
            yield from self.disagreements(own, receiver, receiver_id, reproduce)

    def own_findings(self, own: OwnVerdicts, receiver_id: str, reproduce: str) -> Iterator[Finding]:
        evidence = {"dkim": _own_dkim_text(own, notes=True) or "none", "dmarc": own.dmarc.result}
        testing = dict.fromkeys(f"d={s.domain} s={s.selector}" for s in own.dkim if s.testing)
        if testing:
            evidence["dkim_testing"] = " ".join(testing)
        if own.spf is not None:
            evidence["spf"] = f"{own.spf.result} ({own.spf.domain})"
        evidence.update(own.aligned_evidence())
        yield self.finding(
            "OWN_VERDICTS",
            Severity.INFO,
            "the harness's own verification of the received message",
            evidence=evidence,
            reproduce=reproduce,
            subject=own.header_from_domain,
        )
        for sig in own.dkim:
            if sig.result != "pass":
                yield self.finding(
                    "DKIM_SIGNATURE_INVALID",
                    Severity.FAIL,
                    f"the DKIM signature d={sig.domain} s={sig.selector} does not verify "
                    f"({sig.result})",
                    evidence={
                        "d": sig.domain,
                        "s": sig.selector,
                        "result": sig.result,
                        "reason": sig.reason or "",
                    },
                    reproduce=reproduce,
                    subject=f"{sig.selector}._domainkey.{sig.domain}",
                )
        # CONTRACT: neither an aligned DKIM pass nor an aligned SPF pass (also when no DMARC
        # policy is published: dns.dmarc reports that); unknowable on perm/temperror.
        unaligned = not own.dmarc.dkim_aligned and not own.dmarc.spf_aligned
        if unaligned and own.dmarc.result not in ("permerror", "temperror"):
            yield self.finding(
                "DMARC_NOT_ALIGNED",
                Severity.FAIL,
                f"neither an aligned DKIM pass nor an aligned SPF pass for "
                f"{own.header_from_domain}",
                evidence={
                    "header_from": own.header_from_domain,
                    "dkim_pass": " ".join(s.domain for s in own.dkim if s.result == "pass")
                    or "none",
                    "spf": f"{own.spf.result} ({own.spf.domain})" if own.spf else "not checked",
                    "adkim": own.dmarc.adkim or "r",
                    "aspf": own.dmarc.aspf or "r",
                    "reason": own.dmarc.reason,
                },
                reproduce=reproduce,
                subject=own.header_from_domain,
            )

    def disagreements(
        self,
        own: OwnVerdicts,
        receiver: dict[str, list[AuthResult]],
        receiver_id: str,
        reproduce: str,
    ) -> Iterator[Finding]:
        pairs: list[tuple[str, str, str, str]] = []  # (method, what, own, receiver)
        if own.spf is not None:
            # Only the identity the harness checked: a receiver may also report smtp.helo.
            other = "smtp.helo" if own.spf.identity == "mailfrom" else "smtp.mailfrom"
            for result in receiver.get("spf", []):
                if other not in result.properties:
                    pairs.append(("spf", own.spf.domain, own.spf.result, result.result))
        pairs.extend(_dkim_pairs(own, receiver.get("dkim", [])))
        for result in receiver.get("dmarc", []):
            # OpenDMARC's `bestguesspass` (no policy published, would pass) is no policy to
            # evaluate, like the harness's own `none`.
            theirs = "none" if result.result == "bestguesspass" else result.result
            pairs.append(("dmarc", own.header_from_domain, own.dmarc.result, theirs))
        for method, what, mine, theirs in pairs:
            if mine != theirs:
                yield self.finding(
                    "VERDICT_DISAGREEMENT",
                    Severity.WARN,
                    f"{method} for {what}: the harness says {mine}, {receiver_id} says {theirs}",
                    evidence={"method": method, "what": what, "own": mine, "receiver": theirs},
                    reproduce=reproduce,
                    subject=receiver_id,
                )

    def reproduce(
        self, ep: Endpoint, target: Target, message: TestMessage, creds: Credentials
    ) -> str:
        tls = "implicit" if target.message.send_via == "submissions" else "starttls"
        return swaks_line(
            ep.ip,
            ep.port,
            tls=tls,
            auth_user=creds.user if target.message.send_via != "mx" else None,
            ehlo=EHLO_NAME,
            mail_from=message.mail_from,
            to=message.rcpt_to,
        )


# A receiver's `policy` (signed, but refused by its local policy: OpenDKIM says it for keys
# under its MinimumKeyBits) is the harness's `fail` for such a key (RFC 8301: never valid).
_DKIM_COMPARABLE = {"policy": "fail"}


def _dkim_pairs(own: OwnVerdicts, results: list[AuthResult]) -> list[tuple[str, str, str, str]]:
    """(method, what, own, receiver) for DKIM. Signatures are matched by (d=, s=); several
    with the same pair (the target's MTA signing with the same selector as the harness) are
    compared as multisets of results: they agree when every result the receiver gives is
    among the harness's (a receiver may evaluate fewer signatures than there are). The
    receiver's `policy` compares as `fail`."""
    mine: dict[tuple[str, str], Counter[str]] = {}
    for sig in own.dkim:
        mine.setdefault((sig.domain.lower(), sig.selector.lower()), Counter())[sig.result] += 1
    theirs: dict[tuple[str, str], Counter[str]] = {}
    pairs = []
    for result in results:
        key = (
            result.properties.get("header.d", "").lower(),
            result.properties.get("header.s", "").lower(),
        )
        if key in mine:
            theirs.setdefault(key, Counter())[
                _DKIM_COMPARABLE.get(result.result, result.result)
            ] += 1
        elif result.result == "none" and own.dkim:
            pairs.append(("dkim", "any signature", _own_dkim_text(own), "none"))
    for key, counted in theirs.items():
        if counted - mine[key]:  # a receiver result the harness does not have
            pairs.append(("dkim", f"d={key[0]} s={key[1]}", _words(mine[key]), _words(counted)))
    return pairs


def _words(counted: Counter[str]) -> str:
    return " ".join(sorted(counted.elements()))


def _receiver_results(verdicts: trust.Judgement) -> dict[str, list[AuthResult]]:
    out: dict[str, list[AuthResult]] = {}
    for ar in verdicts.trusted:
        assert ar.parsed is not None
        for result in ar.parsed.results:
            out.setdefault(result.method, []).append(result)
    return out


# What an Authentication-Results header carries that differs from message to message: a DKIM
# signature's first bytes (RFC 6008 header.b), which some receivers (OpenDKIM) add.
_PER_MESSAGE = re.compile(r"\bheader\.b\s*=", re.IGNORECASE)


def per_message(evidence: dict[str, str]) -> list[str]:
    """The evidence keys whose value changes with every message (volatile, never drift)."""
    return [k for k, v in evidence.items() if k == "header.b" or _PER_MESSAGE.search(v)]


def _excerpt(trusted: tuple[trust.ArHeader, ...], method: str) -> str:
    """The part of the receiver's header about `method` (comments included), shortened."""
    for ar in trusted:
        for part in ar.value.split(";"):
            if part.strip().lower().startswith(method + "="):
                return part.strip()[:300]
    return trusted[0].value[:300] if trusted else ""


def _result_evidence(result: AuthResult) -> dict[str, str]:
    evidence = {"result": result.result, "reason": result.reason or ""}
    evidence.update({k: str(v) for k, v in result.properties.items()})
    return evidence


def _own_dkim_text(own: OwnVerdicts, *, notes: bool = False) -> str:
    return " ".join(
        f"{s.result}(d={s.domain} s={s.selector}{' t=y' if notes and s.testing else ''})"
        for s in own.dkim
    )

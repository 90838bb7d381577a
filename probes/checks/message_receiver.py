"""message.receiver: receiver mode, the self-hosted port25 "check-auth".

mailprobe runs its own SMTP receiver (probes.net.receiver) on `message.receiver_listen`
("IP:PORT"), submits an unsigned test message through the target's submission service
addressed to `check-auth@<message.receiver_domain>` (a domain whose MX points at the
receiver), and judges what the target's outbound MTA delivers: SPF for the connecting IP and
the envelope sender, DKIM of the raw bytes, DMARC (policy via the DNS tree walk, alignment),
and iprev (PTR of the peer IP, each name forward-confirmed). Here mailprobe IS the receiver,
so its own verdicts are the receiver's verdicts.

Sending: the test message (probes.mail.compose, unsigned: the target is expected to sign) goes
to `message.submit_host` (default: the first submission host) by `message.send_via`:
"submission" 587 STARTTLS, "submissions" 465 implicit TLS, both with AUTH when a login is
given (`credentials_ref`, or a lab's in-memory login); "mx" means port 25 (STARTTLS) without
AUTH. Without credentials the
message is relayed unauthenticated from `message.source_address` (else the run's source
address): the target must relay for that address. Envelope sender: `message.mail_from`, else
the login user, else postmaster@<domain>; From: `message.header_from`, else the sender.

Codes (subject: the peer IP the message came from; the receiver address when nothing came):
- MESSAGE_NOT_DELIVERED [fail] the submission service refused the message (evidence: stage
  and reply), or nothing with the token arrived before `message.deadline_s` (counted from the
  end of the submission).
- AUTHRES_SPF_NOT_PASS, AUTHRES_DKIM_NOT_PASS (one per signature, or result "none" without
  any), AUTHRES_DMARC_NOT_PASS, AUTHRES_IPREV_NOT_PASS [fail]: the receiver's (mailprobe's)
  verdict is not pass; evidence: result and reason.
- DKIM_SIGNATURE_INVALID [fail] a signature is present but does not verify (fail, neutral,
  permerror, policy; a temperror is only AUTHRES_DKIM_NOT_PASS: the check could not be made).
- DMARC_NOT_ALIGNED [fail] neither an aligned DKIM pass nor an aligned SPF pass (RFC 9989
  §4.4), whether or not a DMARC policy is published (not judged on a DMARC permerror, no
  single From domain, or temperror, the policy lookup failed).
- RECEIVER_REPORT [info] what a check-auth reply says: each method's result, the envelope,
  the timings, and `authentication_results`, the RFC 8601 header value mailprobe would add.

iprev results (RFC 8601 §2.7.3): pass (a PTR name resolves back to the IP), fail (none
does), permerror (no PTR data published), temperror (a lookup failed: SERVFAIL, timeout).
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from probes.codes import Code, declare
from probes.credentials import Credentials, has_login, login_for
from probes.errors import ProbeConfigError, ProbeSkipped
from probes.lookup.mx import ask_mx
from probes.lookup.ptr import Iprev, confirms, forward_type, iprev, reverse_name
from probes.mail.compose import TestMessage, compose, new_token
from probes.mail.verify import OwnVerdicts, verify_message
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.receiver import ReceivedMessage, Receiver, split_listen
from probes.net.smtp_send import SmtpRejected, send_message
from probes.probe import BaseProbe
from probes.probekit.endpoints import Endpoint, endpoints_for
from probes.probekit.message_codes import MESSAGE_CODES
from probes.probekit.reproduce import swaks_line
from probes.validate import check_message

# send_via -> (port, TLS mode, authenticate)
SEND = {
    "submission": (587, "starttls", True),
    "submissions": (465, "implicit", True),
    "mx": (25, "starttls", False),
}
EHLO_NAME = "mailprobe.invalid"
RECIPIENT_LOCAL_PART = "check-auth"


# ----- the Authentication-Results value -------------------------------------------------------
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+\Z")  # RFC 2045 token
_ADDRESS = re.compile(
    r"[!#$%&'*+\-/=?^_`{|}~.0-9A-Za-z]*@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\Z"
)


def ar_value(text: str) -> str:
    """`text` as an RFC 8601 pvalue/value: a token or an address as is, else a quoted-string."""
    if text and (_TOKEN.match(text) or _ADDRESS.match(text)):
        return text
    cleaned = "".join(c if c >= " " and c != "\x7f" else " " for c in text)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _resinfo(method: str, result: str, reason: str | None, props: Iterable[tuple[str, str]]):
    parts = [f"{method}={result}"]
    if reason:
        parts.append(f"reason={ar_value(reason[:200])}")
    parts += [f"{key}={ar_value(value)}" for key, value in props if value]
    return " ".join(parts)


def authentication_results(
    authserv_id: str, own: OwnVerdicts, rev: Iprev, mail_from: str, helo: str | None
) -> str:
    """The Authentication-Results value (RFC 8601) mailprobe, as the receiver, would add."""
    items = []
    items.append(
        _resinfo(
            "iprev",
            rev.result,
            None if rev.result == "pass" else rev.reason,
            [("policy.iprev", rev.ip)],
        )
        + (f" ({rev.confirmed_by})" if rev.confirmed_by else "")
    )
    spf = own.spf
    identity = ("smtp.mailfrom", mail_from) if mail_from else ("smtp.helo", helo or "")
    if spf is None:
        items.append(_resinfo("spf", "none", None, [identity]))
    else:
        reason = None if spf.result == "pass" else _reason(spf)
        items.append(_resinfo("spf", spf.result, reason, [identity]))
    if not own.dkim:
        items.append(_resinfo("dkim", "none", None, []))
    for sig in own.dkim:
        reason = None if sig.result == "pass" else _reason(sig)
        items.append(
            _resinfo(
                "dkim", sig.result, reason, [("header.d", sig.domain), ("header.s", sig.selector)]
            )
        )
    dmarc = own.dmarc
    reason = None if dmarc.result == "pass" else dmarc.reason
    items.append(
        _resinfo("dmarc", dmarc.result, reason, [("header.from", own.header_from_domain or "")])
        + (f" (p={dmarc.policy})" if dmarc.policy else "")
    )
    return "; ".join([ar_value(authserv_id), *items])


def _reason(verdict: object) -> str | None:
    reason = getattr(verdict, "reason", None)
    return str(reason) if reason else None


# ----- the probe ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    listen_ip: str
    listen_port: int
    domain: str
    endpoint: Endpoint
    mode: str
    creds: Credentials | None
    message: TestMessage
    source_address: str | None


class MessageReceiver(BaseProbe):
    id = "message.receiver"
    description = (
        "receiver mode (port25-style check-auth): mailprobe's own SMTP receiver judges SPF, "
        "DKIM, DMARC and iprev of what the target's outbound MTA sends it"
    )
    codes = declare(
        MESSAGE_CODES,
        Code(
            "RECEIVER_REPORT",
            "what a check-auth reply says: each method's result, the envelope, the timings",
            Severity.INFO,
        ),
    )

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        opts = target.message
        if not opts.receiver_listen:
            raise ProbeSkipped(
                "receiver mode needs an address to listen on: set message.receiver_listen "
                "(--receiver-listen IP:PORT) and message.receiver_domain (--receiver-domain)"
            )
        plan = self.plan(target, net)
        hostname = receiver_hostname(net, plan.domain, plan.listen_ip)
        receiver = Receiver(
            plan.listen_ip, plan.listen_port, hostname=hostname, accept_domains=[plan.domain]
        )
        reproduce = self.reproduce(plan)
        with receiver:
            t0 = time.monotonic()
            send_net = replace(net, source_address=plan.source_address)
            try:
                send_message(
                    send_net,
                    ip=plan.endpoint.ip,
                    port=plan.endpoint.port,
                    server_name=plan.endpoint.host,
                    mode=plan.mode,
                    helo=EHLO_NAME,
                    mail_from=plan.message.mail_from,
                    rcpt_to=[plan.message.rcpt_to],
                    raw=plan.message.raw,
                    creds=plan.creds,
                )
            except SmtpRejected as refused:
                yield self.finding(
                    "MESSAGE_NOT_DELIVERED",
                    Severity.FAIL,
                    f"{plan.endpoint.subject} refused the test message at {refused.stage}",
                    evidence={
                        "token": plan.message.token,
                        "submitted_to": plan.endpoint.subject,
                        "stage": refused.stage,
                        "reply": f"{refused.code} {refused.text}"[:300],
                        "receiver": receiver.address,
                    },
                    reproduce=reproduce,
                    subject=receiver.address,
                    volatile=["token"],
                )
                return
            submitted = time.monotonic()
            got = receiver.wait_for(plan.message.token, submitted + opts.deadline_s)
        if got is None:
            yield self.finding(
                "MESSAGE_NOT_DELIVERED",
                Severity.FAIL,
                f"the test message submitted to {plan.endpoint.subject} did not reach the "
                f"receiver {receiver.address} within {opts.deadline_s:g} s",
                evidence={
                    "token": plan.message.token,
                    "submitted_to": plan.endpoint.subject,
                    "rcpt_to": plan.message.rcpt_to,
                    "receiver": receiver.address,
                    "receiver_hostname": hostname,
                    "other_messages": str(len(receiver.messages)),
                },
                reproduce=reproduce,
                subject=receiver.address,
                volatile=["token", "other_messages"],
            )
            return
        yield from self.judge(
            got,
            plan,
            hostname,
            net,
            reproduce,
            submit_s=submitted - t0,
            delivered_s=got.monotonic - t0,
        )

    # ----- configuration --------------------------------------------------------------------
    def plan(self, target: Target, net: Net) -> _Plan:
        opts = check_message(target.message)
        listen_ip, listen_port = split_listen(opts.receiver_listen or "")
        domain = (opts.receiver_domain or "").strip().rstrip(".").lower()
        if not domain:
            raise ProbeConfigError(
                "message.receiver_domain (--receiver-domain) is not set: the domain whose MX "
                "points at the receiver, where the test message is addressed"
            )
        port, mode, authenticate = SEND[opts.send_via]
        creds = None
        if authenticate and has_login(target):
            creds = login_for(target)
        host_target = target
        if opts.submit_host:
            host_target = replace(target, submission_hosts=(opts.submit_host,))
        endpoint = endpoints_for(host_target, net, "submission", port)[0]
        mail_from = opts.mail_from or (creds.user if creds else f"postmaster@{target.domain}")
        header_from = opts.header_from or mail_from
        for label, value in (("mail_from", mail_from), ("header_from", header_from)):
            if "@" not in value:
                raise ProbeConfigError(f"message.{label} {value!r}: not an address")
        try:
            message = compose(
                token=new_token(),
                header_from=header_from,
                to=f"{RECIPIENT_LOCAL_PART}@{domain}",
                mail_from=mail_from,
                extra_headers=opts.extra_headers,
            )
        except ValueError as exc:
            raise ProbeConfigError(f"cannot compose the test message: {exc}") from None
        return _Plan(
            listen_ip=listen_ip,
            listen_port=listen_port,
            domain=domain,
            endpoint=endpoint,
            mode=mode,
            creds=creds,
            message=message,
            source_address=opts.source_address or net.source_address,
        )

    # ----- judging --------------------------------------------------------------------------
    def judge(
        self,
        got: ReceivedMessage,
        plan: _Plan,
        hostname: str,
        net: Net,
        reproduce: str,
        *,
        submit_s: float,
        delivered_s: float,
    ) -> Iterator[Finding]:
        subject = got.peer_ip
        own = verify_message(
            got.raw, client_ip=got.peer_ip, mail_from=got.mail_from, helo=got.helo or "", net=net
        )
        rev = iprev(got.peer_ip, net.dns)
        ar = authentication_results(hostname, own, rev, got.mail_from, got.helo)
        spf_identity = got.mail_from or f"postmaster@{got.helo}"

        spf_result = own.spf.result if own.spf is not None else "none"
        if spf_result != "pass":
            yield self.finding(
                "AUTHRES_SPF_NOT_PASS",
                Severity.FAIL,
                f"SPF for {got.peer_ip} sending as {spf_identity}: {spf_result}",
                evidence={
                    "result": spf_result,
                    "reason": (_reason(own.spf) if own.spf else None) or "",
                    "domain": own.spf.domain if own.spf is not None else "",
                    "client_ip": got.peer_ip,
                    "mail_from": got.mail_from or "<>",
                    "helo": got.helo or "",
                },
                reproduce=reproduce,
                subject=subject,
            )
        if not own.dkim:
            yield self.finding(
                "AUTHRES_DKIM_NOT_PASS",
                Severity.FAIL,
                "the message arrived without a DKIM signature",
                evidence={"result": "none", "reason": "no DKIM-Signature header"},
                reproduce=reproduce,
                subject=subject,
            )
        for sig in own.dkim:
            if sig.result == "pass":
                continue
            evidence = {
                "result": sig.result,
                "reason": _reason(sig) or "",
                "d": sig.domain,
                "s": sig.selector,
            }
            yield self.finding(
                "AUTHRES_DKIM_NOT_PASS",
                Severity.FAIL,
                f"DKIM d={sig.domain} s={sig.selector}: {sig.result}",
                evidence=evidence,
                reproduce=reproduce,
                subject=subject,
            )
            if sig.result != "temperror":
                yield self.finding(
                    "DKIM_SIGNATURE_INVALID",
                    Severity.FAIL,
                    f"the DKIM signature d={sig.domain} s={sig.selector} does not verify "
                    f"({sig.result})",
                    evidence=evidence,
                    reproduce=net.dns.dig(f"{sig.selector}._domainkey.{sig.domain}", "TXT"),
                    subject=f"{sig.selector}._domainkey.{sig.domain}",
                )
        dmarc = own.dmarc
        if dmarc.result != "pass":
            yield self.finding(
                "AUTHRES_DMARC_NOT_PASS",
                Severity.FAIL,
                f"DMARC for {own.header_from_domain or '(no From domain)'}: {dmarc.result}",
                evidence={
                    "result": dmarc.result,
                    "reason": dmarc.reason,
                    "header_from": own.header_from_domain or "",
                    "policy": dmarc.policy or "",
                    "policy_domain": dmarc.policy_domain or "",
                },
                reproduce=reproduce,
                subject=subject,
            )
        judged = dmarc.result in ("pass", "fail", "none")  # not on permerror/temperror
        if judged and not dmarc.dkim_aligned and not dmarc.spf_aligned:
            yield self.finding(
                "DMARC_NOT_ALIGNED",
                Severity.FAIL,
                f"neither an aligned DKIM pass nor an aligned SPF pass for "
                f"{own.header_from_domain}",
                evidence={
                    "header_from": own.header_from_domain or "",
                    "dkim_pass": " ".join(s.domain for s in own.dkim if s.result == "pass")
                    or "none",
                    "spf": f"{spf_result} ({own.spf.domain})" if own.spf else "none",
                    "adkim": dmarc.adkim,
                    "aspf": dmarc.aspf,
                    "reason": dmarc.reason,
                },
                reproduce=reproduce,
                subject=subject,
            )
        if rev.result != "pass":
            yield self.finding(
                "AUTHRES_IPREV_NOT_PASS",
                Severity.FAIL,
                f"iprev for {got.peer_ip}: {rev.result}",
                evidence={
                    "result": rev.result,
                    "reason": rev.reason,
                    "ip": got.peer_ip,
                    "ptr": " ".join(rev.names) or "none",
                },
                reproduce=net.dns.dig(reverse_name(ipaddress.ip_address(got.peer_ip)), "PTR"),
                subject=subject,
            )
        dkim_text = " ".join(f"{s.result}(d={s.domain} s={s.selector})" for s in own.dkim)
        yield self.finding(
            "RECEIVER_REPORT",
            Severity.INFO,
            f"the receiver got the test message from {got.peer_ip}, {delivered_s:.2f} s after "
            "the submission began",
            evidence={
                "spf": spf_result,
                "dkim": dkim_text or "none",
                "dmarc": dmarc.result,
                "iprev": rev.result,
                "authentication_results": ar,
                "peer_ip": got.peer_ip,
                "helo": got.helo or "",
                "mail_from": got.mail_from or "<>",
                "rcpt_to": " ".join(got.rcpt_to),
                "header_from": own.header_from_domain or "",
                "spf_domain": own.spf.domain if own.spf is not None else "",
                **own.aligned_evidence(),
                "token": got.token,
                "submitted_to": plan.endpoint.subject,
                "submit_s": f"{submit_s:.3f}",
                "delivered_after_s": f"{delivered_s:.3f}",
                "size": str(len(got.raw)),
            },
            reproduce=reproduce,
            subject=subject,
            volatile=["token", "submit_s", "delivered_after_s", "size"],
        )

    def reproduce(self, plan: _Plan) -> str:
        return swaks_line(
            plan.endpoint.ip,
            plan.endpoint.port,
            tls=plan.mode,
            auth_user=plan.creds.user if plan.creds else None,
            ehlo=EHLO_NAME,
            mail_from=plan.message.mail_from,
            to=plan.message.rcpt_to,
        )


def receiver_hostname(net: Net, domain: str, listen_ip: str) -> str:
    """The name the receiver greets with (and its authserv-id): the receiver domain's MX host
    that resolves to the listen address, else the receiver domain itself. DNS failures are
    not errors here (the name is cosmetic)."""
    mxs = ask_mx(domain, net.dns)
    if not mxs.answer.ok or not mxs.records:
        return domain
    hosts = list(mxs.exchanges)
    try:
        ip = ipaddress.ip_address(listen_ip)
    except ValueError:
        return domain
    rdtype = forward_type(ip)
    for host, fwd in zip(
        hosts[:8], net.dns.query_many([(h, rdtype) for h in hosts[:8]]), strict=True
    ):
        if confirms(fwd, ip):
            return host
    return domain

"""SMTP endpoints: smtp.mx (25, STARTTLS), smtp.submission (587), smtp.submissions (465).

On top of the shared transport checks (probes.probekit.transport): AUTH offered before TLS,
on port 25 VRFY/EXPN and the banner/EHLO name against the address's PTR, and the ESMTP
extensions (SIZE, PIPELINING, 8BITMIME, SMTPUTF8, REQUIRETLS...) as evidence.
SMTP findings reproduce with swaks; TLS and certificate findings with openssl s_client.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from probes.codes import Code, Fix
from probes.credentials import Credentials
from probes.lookup.ptr import reverse_name
from probes.model import Finding, Severity
from probes.net import Net
from probes.net.mail_sessions import EHLO_NAME, SmtpSession
from probes.net.stream import Connection
from probes.net.tls import TlsSession
from probes.parse import smtp_reply
from probes.parse.smtp_reply import Ehlo
from probes.probekit.dane import DANE_MATCH_CODES, dane_findings
from probes.probekit.endpoints import Endpoint
from probes.probekit.reproduce import swaks_line
from probes.probekit.transport import (
    Conversation,
    Dialect,
    EndpointProbe,
    StartTlsRefused,
    endpoint_codes,
)

EXTENSIONS = ("SIZE", "PIPELINING", "8BITMIME", "SMTPUTF8", "REQUIRETLS", "CHUNKING", "DSN")
PROBE_ADDRESS = "postmaster"

SMTP_CAPABILITIES = Code(
    "SMTP_CAPABILITIES",
    "the SMTP greeting and EHLO capabilities before and after TLS",
    Severity.INFO,
)
MX_ONLY_CODES = (
    Code(
        "SMTP_VRFY_ENABLED",
        "VRFY postmaster is answered 250 or 251",
        Severity.WARN,
        fix=Fix(
            "Turn VRFY off: it tells anyone which addresses exist, which spammers use to "
            "harvest them. (A 252 answer, which confirms nothing, is fine.) Check with "
            "`VRFY postmaster` in a session opened by "
            "`openssl s_client -connect <host>:25 -starttls smtp`: no 250 or 251.",
            {
                "exim": "# no acl_smtp_vrfy = accept: without an ACL Exim refuses VRFY\n"
                "acl_smtp_vrfy = deny",
                "postfix": "disable_vrfy_command = yes",
                "sendmail": "define(`confPRIVACY_FLAGS', "
                "`authwarnings,novrfy,noexpn,restrictqrun')dnl",
            },
        ),
    ),
    Code(
        "SMTP_EXPN_ENABLED",
        "EXPN postmaster is answered 250 or 251",
        Severity.WARN,
        fix=Fix(
            "Turn EXPN off: it lists the members of aliases and mailing lists to anyone. "
            "(Postfix has no EXPN.) Check with `EXPN postmaster` in a session opened by "
            "`openssl s_client -connect <host>:25 -starttls smtp`: the answer must be an error.",
            {
                "exim": "# no acl_smtp_expn = accept: without an ACL Exim refuses EXPN\n"
                "acl_smtp_expn = deny",
                "sendmail": "define(`confPRIVACY_FLAGS', "
                "`authwarnings,novrfy,noexpn,restrictqrun')dnl",
            },
        ),
    ),
    Code(
        "SMTP_BANNER_PTR_MISMATCH",
        "the banner or EHLO name is not a PTR name of the server's address",
        Severity.WARN,
        fix=Fix(
            "Make the server's own name, its PTR record and its A record agree: set the MTA's "
            "host name (used in the banner and EHLO) to the name the address's PTR gives, or "
            "have the PTR changed to the MTA's name. Some receivers score a mismatch as spam. "
            "Check with `dig +short -x <ip>` and the banner of `swaks --server <host> "
            "--quit-after HELO`.",
            {
                "exim": "primary_hostname = <host>",
                "postfix": "myhostname = <host>",
                "sendmail": "define(`confDOMAIN_NAME', `<host>')dnl",
                "zone": "<d>.<c>.<b>.<a>.in-addr.arpa. 3600 IN PTR <host>.\n"
                "<host>. 3600 IN A <a>.<b>.<c>.<d>",
            },
        ),
    ),
)


class SmtpDialect(Dialect):
    name = "smtp"

    def open(self, conn: Connection) -> SmtpSession:
        return SmtpSession(conn)

    def greet(self, session: SmtpSession) -> tuple[str, Ehlo | None]:
        banner = session.banner()
        if banner.code != 220:
            raise smtp_reply.SmtpReplyError(
                f"the server greets with {banner.code} {smtp_reply.shorten(banner.text)}, not 220"
            )
        _, ehlo = session.ehlo()
        return banner.text, ehlo

    def starttls_offered(self, caps: Ehlo | None) -> bool:
        return caps is not None and caps.has("STARTTLS")

    def request_tls(self, session: SmtpSession) -> None:
        reply = session.command("STARTTLS")
        if reply.code != 220:
            raise StartTlsRefused(f"{reply.code} {smtp_reply.shorten(reply.text)}")

    def capabilities_after_tls(self, session: SmtpSession) -> Ehlo | None:
        return session.ehlo()[1]

    def plaintext_auth(self, caps: Ehlo | None) -> str | None:
        if caps is None or not caps.has("AUTH"):
            return None
        return "AUTH " + " ".join(caps.auth_mechanisms)

    def login(
        self, session: SmtpSession, caps: Ehlo | None, creds: Credentials
    ) -> tuple[bool, str]:
        if caps is None or "PLAIN" not in caps.auth_mechanisms:
            offered = " ".join(caps.auth_mechanisms) if caps else "no EHLO"
            return False, f"AUTH PLAIN is not offered after TLS (offered: {offered or 'none'})"
        reply = session.auth_plain(creds.user, creds.password)
        return reply.code == 235, f"{reply.code} {smtp_reply.shorten(reply.text)}"

    def goodbye(self, session: SmtpSession) -> None:
        session.quit()

    def capabilities_evidence(self, before: Ehlo | None, after: Ehlo | None) -> dict[str, str]:
        evidence: dict[str, str] = {}
        for label, ehlo in (("before_tls", before), ("after_tls", after)):
            if ehlo is not None:
                evidence[label] = " ".join(sorted(ehlo.keywords))[:300]
        seen = after or before
        if seen is not None:
            evidence["ehlo_name"] = seen.name
            for ext in EXTENSIONS:
                if seen.has(ext):
                    params = " ".join(seen.keywords[ext])
                    evidence[ext.lower()] = params or "yes"
            if seen.auth_mechanisms:
                evidence["auth"] = " ".join(seen.auth_mechanisms)
        return evidence


class SmtpEndpointProbe(EndpointProbe):
    dialect = SmtpDialect()
    capabilities_code = SMTP_CAPABILITIES.code
    swaks_tls: ClassVar[str | None] = "starttls"

    def plain_reproduce(self, ep: Endpoint, net: Net, user: str | None = None) -> str:
        return swaks_line(
            ep.ip,
            ep.port,
            tls=self.swaks_tls,
            quit_after="AUTH" if user else "EHLO",
            auth_user=user,
            ehlo=EHLO_NAME,
        )

    def starttls_reproduce(self, ep: Endpoint, net: Net) -> str:
        return swaks_line(ep.ip, ep.port, tls="starttls", quit_after="TLS", ehlo=EHLO_NAME)


class SmtpMx(SmtpEndpointProbe):
    id = "smtp.mx"
    description = (
        "SMTP on port 25 of each MX host: STARTTLS, certificate, TLS versions, AUTH before "
        "TLS, VRFY/EXPN, banner name vs PTR"
    )
    role = "mx"
    port = 25
    implicit_tls = False
    codes = endpoint_codes(
        implicit_tls=False,
        logs_in=False,
        capabilities=SMTP_CAPABILITIES,
        extra=(*MX_ONLY_CODES, *DANE_MATCH_CODES),
    )

    def session_findings(self, ep: Endpoint, net: Net, session: TlsSession) -> list[Finding]:
        """DANE (RFC 7672): the chain this conversation received against the host's TLSA."""
        return dane_findings(
            self, ip=ep.ip, port=ep.port, host=ep.host, subject=ep.subject, net=net, session=session
        )

    def plain_findings(self, ep: Endpoint, net: Net, session: Any, talk: Conversation) -> None:
        super().plain_findings(ep, net, session, talk)
        smtp: SmtpSession = session
        self._vrfy_expn(ep, smtp, talk)
        self._banner_ptr(ep, net, talk)

    def _vrfy_expn(self, ep: Endpoint, smtp: SmtpSession, talk: Conversation) -> None:
        for verb, code in (("VRFY", "SMTP_VRFY_ENABLED"), ("EXPN", "SMTP_EXPN_ENABLED")):
            reply = smtp.command(f"{verb} {PROBE_ADDRESS}")
            # 250/251 disclose an address; 252 is the polite "cannot verify, will accept".
            if reply.code in (250, 251):
                talk.findings.append(
                    self.finding(
                        code,
                        Severity.WARN,
                        f"{ep.subject} answers {verb}: it discloses which addresses exist",
                        evidence={"command": f"{verb} {PROBE_ADDRESS}", "reply": _show(reply)},
                        reproduce=_nc_line(ep, f"{verb} {PROBE_ADDRESS}"),
                        subject=ep.subject,
                    )
                )

    def _banner_ptr(self, ep: Endpoint, net: Net, talk: Conversation) -> None:
        names = {
            n for n in (_first_word(talk.greeting), talk.before.name if talk.before else None) if n
        }
        if not names:
            return
        answer = net.dns.query(reverse_name(ipaddress.ip_address(ep.ip)), "PTR")
        if not answer.ok or not answer.records:
            return  # no PTR: dns.ptr reports PTR_MISSING; nothing to compare here
        ptr_names = {str(r).rstrip(".").lower() for r in answer.records}
        wrong = sorted(n for n in names if n.rstrip(".").lower() not in ptr_names)
        if wrong:
            talk.findings.append(
                self.finding(
                    "SMTP_BANNER_PTR_MISMATCH",
                    Severity.WARN,
                    f"{ep.subject} announces itself as {', '.join(wrong)} but {ep.ip} has the "
                    f"PTR name {', '.join(sorted(ptr_names))}",
                    evidence={
                        "announced": " ".join(sorted(names)),
                        "ptr": " ".join(sorted(ptr_names)),
                    },
                    reproduce=self.plain_reproduce(ep, net),
                    subject=ep.subject,
                )
            )


class SmtpSubmission(SmtpEndpointProbe):
    id = "smtp.submission"
    description = (
        "SMTP submission on port 587: STARTTLS, certificate, TLS versions, AUTH only after "
        "TLS, login with configured credentials"
    )
    role = "submission"
    port = 587
    implicit_tls = False
    logs_in = True
    alternatives = (465,)
    codes = endpoint_codes(implicit_tls=False, logs_in=True, capabilities=SMTP_CAPABILITIES)


class SmtpSubmissions(SmtpEndpointProbe):
    id = "smtp.submissions"
    description = (
        "SMTP submission over implicit TLS on port 465: handshake, certificate, TLS versions, "
        "login with configured credentials"
    )
    role = "submission"
    port = 465
    implicit_tls = True
    logs_in = True
    alternatives = (587,)
    swaks_tls = "implicit"
    codes = endpoint_codes(implicit_tls=True, logs_in=True, capabilities=SMTP_CAPABILITIES)


def _show(reply: smtp_reply.Reply) -> str:
    return f"{reply.code} {smtp_reply.shorten(reply.text)}"


def _first_word(text: str) -> str | None:
    word = text.split(" ", 1)[0].strip() if text else ""
    return word if "." in word else None


def _nc_line(ep: Endpoint, command: str) -> str:
    # swaks sends no VRFY/EXPN; a plain conversation shows the answer. It waits for the
    # greeting and sends a line a second (nc -i 1): sendmail refuses a client that talks first
    # or sends VRFY/EXPN in one packet with EHLO ("554 5.5.0 SMTP protocol error").
    lines = f"EHLO {EHLO_NAME}\\r\\n{command}\\r\\nQUIT\\r\\n"
    return f"{{ sleep 1; printf '{lines}'; }} | nc -i 1 -q 5 {ep.ip} {ep.port}"

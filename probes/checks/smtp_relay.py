"""smtp.relay: does port 25 of an MX host relay for strangers?

The test asks without authenticating: MAIL FROM and RCPT TO both outside the target's domains
(RFC 2606 names, which real servers cannot confuse with their own). An accepted RCPT is an open
relay. The transaction is then reset and closed: DATA is never sent, so nothing is relayed.
"""

from __future__ import annotations

from collections.abc import Iterable

from probes.codes import Code, Fix, declare
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.mail_sessions import EHLO_NAME, SmtpSession
from probes.net.stream import Connection
from probes.parse import smtp_reply
from probes.probe import BaseProbe
from probes.probekit.endpoints import Endpoint, check_all, endpoints_for
from probes.probekit.reproduce import swaks_line

RELAY_FROM = "mailprobe-relay-test@example.net"
RELAY_TO = "mailprobe-relay-test@example.com"


class SmtpRelay(BaseProbe):
    id = "smtp.relay"
    description = (
        "open relay test on port 25 of each MX host: a foreign sender and recipient, then RSET "
        "(never DATA)"
    )
    codes = declare(
        Code(
            "SMTP_OPEN_RELAY",
            "RCPT TO a foreign address is accepted from a foreign sender, unauthenticated",
            Severity.FAIL,
            fix=Fix(
                "Close the relay at once: spammers find open relays within hours and your "
                "address ends on block lists. Accept a recipient in another domain only from "
                "authenticated users and from your own networks (which must not include "
                "0.0.0.0/0 or a whole provider's range). Check with "
                "`swaks --server <mx-host> --from someone@example.net "
                "--to someone@example.org --quit-after RCPT`: RCPT must be refused.",
                {
                    "exim": "# acl_smtp_rcpt, before any final accept\n"
                    "  accept  hosts = +relay_from_hosts\n"
                    "  accept  authenticated = *\n"
                    "  require message = relay not permitted\n"
                    "          domains = +local_domains : +relay_to_domains",
                    "postfix": "mynetworks = 127.0.0.0/8 [::1]/128\n"
                    "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
                    "defer_unauth_destination",
                    "sendmail": "dnl remove FEATURE(`promiscuous_relay') and any RELAY "
                    "entry in /etc/mail/access for a network that is not yours\n"
                    "FEATURE(`access_db')dnl",
                },
            ),
        ),
        Code("SMTP_RELAY_REFUSED", "the relay attempt was refused", Severity.INFO),
        Code(
            "SMTP_RELAY_UNTESTED",
            "the foreign sender was refused already, so relaying could not be tested",
            Severity.INFO,
        ),
    )

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        endpoints = endpoints_for(target, net, "mx", 25)
        yield from check_all(endpoints, lambda ep, out: self.check(ep, out, net))

    def check(self, ep: Endpoint, out: list[Finding], net: Net) -> None:
        reproduce = swaks_line(
            ep.ip, ep.port, quit_after="RCPT", ehlo=EHLO_NAME, mail_from=RELAY_FROM, to=RELAY_TO
        )
        try:
            # a foreign sender and recipient, whatever the domain: once per fleet run
            conn = Connection.open(net, ep.ip, ep.port, label=ep.subject, shared=True)
        except ConnectionRefusedError:
            return  # smtp.mx reports the closed port
        with conn:
            smtp = SmtpSession(conn)
            banner = smtp.banner()
            if banner.code != 220:
                raise smtp_reply.SmtpReplyError(f"the server greets with {banner.code}, not 220")
            smtp.ehlo()
            mail = smtp.command(f"MAIL FROM:<{RELAY_FROM}>")
            rcpt = smtp.command(f"RCPT TO:<{RELAY_TO}>") if mail.code == 250 else None
            smtp.command("RSET")
            smtp.quit()
        evidence = {"mail_from": f"{mail.code} {smtp_reply.shorten(mail.text)}"}
        if rcpt is None:
            out.append(
                self.finding(
                    "SMTP_RELAY_UNTESTED",
                    Severity.INFO,
                    f"{ep.subject} refused the foreign sender, so relaying could not be tested",
                    evidence=evidence,
                    reproduce=reproduce,
                    subject=ep.subject,
                )
            )
            return
        evidence["rcpt_to"] = f"{rcpt.code} {smtp_reply.shorten(rcpt.text)}"
        if rcpt.code in (250, 251):
            out.append(
                self.finding(
                    "SMTP_OPEN_RELAY",
                    Severity.FAIL,
                    f"{ep.subject} accepts mail from {RELAY_FROM} to {RELAY_TO} without "
                    "authentication: an open relay",
                    evidence=evidence,
                    reproduce=reproduce,
                    subject=ep.subject,
                )
            )
        else:
            out.append(
                self.finding(
                    "SMTP_RELAY_REFUSED",
                    Severity.INFO,
                    f"{ep.subject} refuses to relay for a stranger",
                    evidence=evidence,
                    reproduce=reproduce,
                    subject=ep.subject,
                )
            )

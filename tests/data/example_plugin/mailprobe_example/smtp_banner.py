"""example.smtp_banner: what each MX host says on port 25, and whether it offers STARTTLS.

A worked example of a third-party probe (docs/plugins.md): it asks DNS through the door
(`net.dns`), opens an SMTP session through the door (`Connection`, `SmtpSession`), upgrades
it to TLS, and declares every code it can emit.
"""

from __future__ import annotations

from collections.abc import Iterator

from probes.codes import Code, Fix, declare
from probes.errors import ProbeSkipped
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.mail_sessions import SmtpSession
from probes.net.stream import Connection
from probes.probe import BaseProbe

BANNER = Code("EXAMPLE_BANNER", "the banner and EHLO name of an MX host", Severity.INFO)
NO_ADDRESS = Code(
    "EXAMPLE_MX_NO_ADDRESS",
    "an MX host has no A or AAAA record",
    Severity.FAIL,
    fix=Fix(
        "Publish an A (and AAAA) record for the MX host, or correct the MX record. Check with "
        "`dig +short A <mx-host>`.",
        {"zone": "<mx-host>. 3600 IN A <ipv4>"},
    ),
)
NO_STARTTLS = Code(
    "EXAMPLE_NO_STARTTLS",
    "an MX host does not offer STARTTLS",
    Severity.WARN,
    fix=Fix(
        "Give the MTA a certificate and turn STARTTLS on, then check with "
        "`openssl s_client -connect <mx-host>:25 -starttls smtp`.",
        {"postfix": "smtpd_tls_security_level = may", "exim": "tls_advertise_hosts = *"},
    ),
)
TLS = Code("EXAMPLE_TLS", "the TLS version an MX host negotiates after STARTTLS", Severity.INFO)

MAX_HOSTS = 5


class SmtpBanner(BaseProbe):
    id = "example.smtp_banner"
    description = "Example plug-in: each MX host's SMTP banner, STARTTLS and TLS version"
    codes = declare(BANNER, NO_ADDRESS, NO_STARTTLS, TLS)

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        hosts = list(target.mx_hosts)
        if not hosts:
            # A DNS question through the door: cached for the run, failures come back as data.
            answer = net.dns.query(target.domain, "MX").raise_for_failure()
            hosts = sorted(name for _pref, name in answer.records if name not in ("", "."))
        if not hosts:
            raise ProbeSkipped(f"{target.domain} has no MX host")
        for host in hosts[:MAX_HOSTS]:
            a, aaaa = net.dns.addresses(host)  # both asked at once
            ips = [*a.records, *aaaa.records]
            if not ips:
                yield self.finding(
                    NO_ADDRESS.code,
                    NO_ADDRESS.severity,
                    f"MX host {host} has no address",
                    evidence={"A": a.rcode, "AAAA": aaaa.rcode},
                    reproduce=net.dns.dig(host, "A"),
                    subject=host,
                )
                continue
            yield from self.talk(host, ips[0], net)

    def talk(self, host: str, ip: str, net: Net) -> Iterator[Finding]:
        subject = f"{host}:25"
        reproduce = f"swaks --server {ip} --port 25 --quit-after EHLO"
        # An SMTP session through the door: timeouts from the Target, at most
        # --max-per-host connections per address; connection errors propagate and the runner
        # classifies them (ERROR/CONNECTIVITY, TIMEOUT, ...).
        with Connection.open(net, ip, 25, label=subject) as conn:
            smtp = SmtpSession(conn)
            banner = smtp.banner()
            _reply, ehlo = smtp.ehlo()
            yield self.finding(
                BANNER.code,
                BANNER.severity,
                f"{subject} greets with {banner.code} {banner.text}",
                evidence={
                    "banner": banner.text,
                    "ehlo_name": ehlo.name if ehlo else "(no EHLO)",
                },
                reproduce=reproduce,
                subject=subject,
            )
            if ehlo is None or not ehlo.has("STARTTLS") or smtp.command("STARTTLS").code != 220:
                yield self.finding(
                    NO_STARTTLS.code,
                    NO_STARTTLS.severity,
                    f"{subject} does not offer STARTTLS",
                    reproduce=reproduce,
                    subject=subject,
                )
                smtp.quit()
                return
            # TLS through the door. The chain is not verified here: judging certificates is
            # the transport probes' job (smtp.mx).
            session = conn.start_tls(server_name=host, verify=False)
            yield self.finding(
                TLS.code,
                TLS.severity,
                f"{subject} negotiates {session.version}",
                evidence={"version": session.version, "cipher": session.cipher},
                reproduce=f"openssl s_client -connect {ip}:25 -starttls smtp -brief",
                subject=subject,
            )
            smtp.ehlo()  # RFC 3207: start over after TLS
            smtp.quit()

"""dns.dane: TLSA records for SMTP (RFC 7672) at `_25._tcp.<mx host>` for every MX host.

Presence, parameters and whether the records are DNSSEC-secure (probes.net.dnssec, through
`net.dnssec`): senders ignore TLSA records that are not (RFC 7672 §2.2). Whether the
certificate an MX presents matches its TLSA records is judged by smtp.mx, which holds the TLS
session (probes.probekit.dane.dane_findings). The TLSA name is taken from the MX host
name as published (RFC 7672 §2.2.2 uses the CNAME-expanded name only when the alias chain is
DNSSEC-secure, which cannot be told here). With no MX records the domain itself is the host
(implicit MX). Two levels: MX, then every host's TLSA at once.

Codes (subject: the MX host):
- DANE_TLSA_PRESENT [info] TLSA records found (evidence: usage selector mtype data).
- DANE_TLSA_MISSING [info] no TLSA record.
- DANE_TLSA_UNUSABLE [warn] records an SMTP client treats as unusable: usage PKIX-TA(0) or
  PKIX-EE(1) (RFC 7672 §3.1.3), unknown usage/selector/matching type, or data whose length
  does not fit the matching type.
- DANE_TLSA_UNVERIFIABLE [warn] TLSA records in a zone that is unsigned or DNSSEC-bogus
  (evidence: the validation's reason); nothing when validation cannot tell (no DNSSEC data).
"""

from __future__ import annotations

from collections.abc import Iterator

from probes.codes import Code, Fix, declare
from probes.lookup.mx import ask_mx
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import DnsAnswer, normalize_name
from probes.net.dnssec import BOGUS, INSECURE
from probes.probe import BaseProbe
from probes.probekit.dane import (
    DANE_TLSA_UNVERIFIABLE,
    MAX_LISTED,
    format_tlsa,
    tlsa_name,
    tlsa_problem,
)


class DnsDane(BaseProbe):
    id = "dns.dane"
    description = "DANE for SMTP: TLSA records at _25._tcp of each MX host (presence, parameters)"
    codes = declare(
        Code("DANE_TLSA_PRESENT", "TLSA records at _25._tcp of an MX host", Severity.INFO),
        Code(
            "DANE_TLSA_MISSING",
            "no TLSA record at _25._tcp of an MX host",
            Severity.INFO,
            absent=True,
        ),
        Code(
            "DANE_TLSA_UNUSABLE",
            "a TLSA record SMTP clients cannot use (usage 0/1, unknown parameters, bad data)",
            Severity.WARN,
            fix=Fix(
                "Replace the record by one SMTP clients use: `3 1 1` (DANE-EE, the SHA-256 of "
                "the server's public key) or `2 1 1` (DANE-TA, of the issuing CA's key); usages "
                "0 and 1 are not for SMTP (RFC 7672 §3.1.3). Compute the hash from the "
                "certificate the server presents; when you change the key, publish the new "
                "record beside the old one first. The zone must be DNSSEC-signed. Check with "
                "`dig +dnssec TLSA _25._tcp.<mx-host>`.",
                {
                    "openssl": "openssl x509 -in <certificate.pem> -noout -pubkey "
                    "| openssl pkey -pubin -outform DER | openssl dgst -sha256",
                    "zone": "_25._tcp.<mx-host>. 3600 IN TLSA 3 1 1 <sha256-hex-of-the-public-key>",
                },
            ),
        ),
        DANE_TLSA_UNVERIFIABLE,
    )

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        dns = net.dns
        domain = normalize_name(target.domain)
        mxs = ask_mx(domain, dns)
        mxs.answer.raise_for_failure()
        hosts = [host.name for host in mxs.hosts if host.ip_literal is None]
        answers = dns.query_many([(tlsa_name(host), "TLSA") for host in hosts])
        failures: list[DnsAnswer] = []
        for host, tlsa in zip(hosts, answers, strict=True):
            if not tlsa.ok:
                failures.append(tlsa)
                continue
            reproduce = dns.dig(tlsa.name, "TLSA")
            if not tlsa.records:
                yield self.finding(
                    "DANE_TLSA_MISSING",
                    Severity.INFO,
                    f"MX host {host} publishes no TLSA record (no DANE for SMTP)",
                    evidence={"name": tlsa.name, "TLSA": tlsa.rcode},
                    reproduce=reproduce,
                    subject=host,
                )
                continue
            records = [format_tlsa(r) for r in tlsa.records]
            yield self.finding(
                "DANE_TLSA_PRESENT",
                Severity.INFO,
                f"MX host {host} publishes {len(records)} TLSA record(s)",
                evidence={
                    "name": tlsa.name,
                    "records": "; ".join(records[:MAX_LISTED])
                    + (
                        f"; … {len(records) - MAX_LISTED} more" if len(records) > MAX_LISTED else ""
                    ),
                    "note": "certificate match is checked by smtp.mx",
                },
                reproduce=reproduce,
                subject=host,
            )
            verdict = net.dnssec.check(tlsa.name, "TLSA")
            if verdict.state in (INSECURE, BOGUS):
                yield self.finding(
                    "DANE_TLSA_UNVERIFIABLE",
                    Severity.WARN,
                    f"MX host {host}: its TLSA records are "
                    + ("DNSSEC-bogus" if verdict.state == BOGUS else "not DNSSEC-signed")
                    + ": DANE senders ignore them",
                    evidence={
                        "name": tlsa.name,
                        "dnssec": verdict.state,
                        "zone": verdict.zone,
                        "reason": verdict.reason,
                    },
                    reproduce=dns.dig(tlsa.name, "TLSA").replace("dig ", "dig +dnssec ", 1),
                    subject=host,
                )
            problems = [
                (text, problem)
                for rec, text in zip(tlsa.records, records, strict=True)
                if (problem := tlsa_problem(rec)) is not None
            ]
            if problems:
                usable = len(records) - len(problems)
                yield self.finding(
                    "DANE_TLSA_UNUSABLE",
                    Severity.WARN,
                    f"MX host {host}: {len(problems)} of {len(records)} TLSA record(s) "
                    "unusable for SMTP"
                    + ("" if usable else " (none usable: DANE senders cannot authenticate it)"),
                    evidence={
                        "name": tlsa.name,
                        "usable": str(usable),
                        **{
                            f"record {i + 1}": f"{t}: {p}"
                            for i, (t, p) in enumerate(problems[:MAX_LISTED])
                        },
                    },
                    reproduce=reproduce,
                    subject=host,
                )
        if failures:
            failures[0].raise_for_failure()

"""dns.dnssec: is each zone that matters DNSSEC-signed, and does its chain of trust hold?

The zones that matter: the domain's (judged on its MX answer, the one every sender asks) and,
for each MX host, the zone of its TLSA owner `_25._tcp.<mx>` (judged on the TLSA answer, the
one DANE senders ask; RFC 7672 §2.2). Validation is probes.net.dnssec over the run's door
(`net.dnssec`), against `--trust-anchor` or the IANA root anchor. One finding per zone.

Codes (subject: the zone):
- DNSSEC_SIGNED [info] the answers validate from the trust anchor down.
- DNSSEC_UNSIGNED [info; warn when a TLSA record is published in it] no chain of trust
  reaches the zone (a delegation without DS, or no anchor covers it).
- DNSSEC_BOGUS [fail] the zone is signed but its answers do not validate: expired signature,
  missing DNSKEY, DS mismatch, missing RRSIG… (evidence `reason`).
- DNSSEC_INDETERMINATE [info] the resolver REFUSED a DNSKEY/DS question of the chain (it does
  not serve the trust anchor's zone: an authoritative-only server asked with the root
  anchor); subject: the name judged. Any other failure (SERVFAIL, timeout) ends in ERROR.
"""

from __future__ import annotations

from collections.abc import Iterator

from probes.codes import Code, Fix, declare
from probes.errors import DnsError
from probes.lookup.mx import ask_mx
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import normalize_name
from probes.net.dnssec import BOGUS, INDETERMINATE, NO_DNSSEC_DATA, SECURE, Verdict
from probes.probe import BaseProbe
from probes.probekit.dane import tlsa_name

SIGNING_LINES = {
    "zone": "; BIND 9.16+ (named.conf): sign the zone, keys and re-signing automatic\n"
    '; zone "<domain>" { type primary; file "<domain>.zone"; dnssec-policy default; '
    "inline-signing yes; };\n"
    "; Knot (knot.conf): automatic signing\n"
    "; policy:\n;   - id: auto\n;     algorithm: ecdsap256sha256\n"
    "; zone:\n;   - domain: <domain>\n;     dnssec-signing: on\n;     dnssec-policy: auto\n"
    "; then at the parent (registrar): the DS of the key-signing key\n"
    "<domain>. 3600 IN DS <key-tag> 13 2 <sha256-of-the-ksk>",
    "shell": "keymgr <domain> ds          # Knot: the DS records to give the parent\n"
    "dnssec-dsfromkey -2 K<domain>.+013+<tag>.key   # BIND\n"
    "delv +vtrace MX <domain>      # check the chain of trust",
}


class DnsDnssec(BaseProbe):
    id = "dns.dnssec"
    description = (
        "DNSSEC: the chain of trust to the domain's zone and each MX host's TLSA zone, "
        "validated from the trust anchor"
    )
    codes = declare(
        Code("DNSSEC_SIGNED", "the zone's answers validate from the trust anchor", Severity.INFO),
        Code(
            "DNSSEC_INDETERMINATE",
            "the chain of trust cannot be followed: the resolver refuses a question on the way, "
            "or no trust anchor given covers the name",
            Severity.INFO,
        ),
        Code(
            "DNSSEC_UNSIGNED",
            "no chain of trust reaches the zone (warn when it publishes TLSA records)",
            Severity.INFO,
            fix=Fix(
                "Sign the zone and publish the DS of its key-signing key at the parent (through "
                "the registrar): RFC 7672 senders ignore TLSA records in an unsigned zone, so "
                "DANE does nothing until the zone is signed. Check with "
                "`delv +vtrace TLSA _25._tcp.<mx-host>` (answers end in `; fully validated`).",
                SIGNING_LINES,
            ),
        ),
        Code(
            "DNSSEC_BOGUS",
            "the zone is signed but its answers do not validate (expired, missing key, DS "
            "mismatch)",
            Severity.FAIL,
            fix=Fix(
                "Validating resolvers answer SERVFAIL for a bogus zone: mail to it stops. Follow "
                "the reason: re-sign an expired zone (and make signing automatic), publish the "
                "DNSKEY the DS names, or replace the DS at the parent with the one of the "
                "current key-signing key (during a key roll keep the old DS until the new key "
                "is published). Check with `delv +vtrace MX <domain>` or "
                "https://dnsviz.net/d/<domain>/analyze/.",
                SIGNING_LINES,
            ),
        ),
    )

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        dns = net.dns
        validator = net.dnssec
        domain = normalize_name(target.domain)
        mxs = ask_mx(domain, dns)
        mxs.answer.raise_for_failure()
        hosts = [host.name for host in mxs.hosts if host.ip_literal is None]
        questions = [(domain, "MX")] + [(tlsa_name(h), "TLSA") for h in hosts]
        answers = dns.query_many(questions)
        # zone -> (verdict, questions judged, TLSA published)
        zones: dict[str, tuple[Verdict, list[str], bool]] = {}
        failures = []
        for (name, rdtype), answer in zip(questions, answers, strict=True):
            if not answer.ok:
                if rdtype == "MX":
                    answer.raise_for_failure()
                failures.append(f"{rdtype} {name}: {answer.rcode}")
                continue
            verdict = validator.check(name, rdtype)
            if verdict.state == INDETERMINATE and not (verdict.refused or verdict.unanchored):
                if verdict.reason != NO_DNSSEC_DATA:  # (StaticBackend: nothing to judge)
                    failures.append(verdict.reason)
                continue
            # a chain that cannot be followed is reported for the name judged
            key = name if verdict.state == INDETERMINATE else verdict.zone
            known = zones.get(key)
            if known is None or (known[0].state != BOGUS and verdict.state == BOGUS):
                asked = known[1] if known else []
                tlsa = known[2] if known else False
                known = (verdict, asked, tlsa)
            known[1].append(f"{rdtype} {name}")
            zones[key] = (
                known[0],
                known[1],
                known[2] or (rdtype == "TLSA" and bool(answer.records)),
            )
        for zone, (verdict, asked, tlsa) in zones.items():
            yield self._finding(dns, zone, verdict, asked, tlsa, net)
        if failures:
            raise DnsError("DNSSEC status not determined: " + "; ".join(failures[:3]))

    def _finding(
        self, dns, zone: str, verdict: Verdict, asked: list[str], tlsa: bool, net: Net
    ) -> Finding:
        rdtype, name = asked[0].split(" ", 1)
        # the records with their RRSIGs; `delv +vtrace` follows the whole chain
        reproduce = dnssec_dig(dns, name, rdtype)
        evidence = {
            "zone": zone,
            "judged": "; ".join(asked),
            "trust anchor": net.dnssec.anchors.source,
            "reason": verdict.reason,
        }
        if verdict.state == SECURE:
            return self.finding(
                "DNSSEC_SIGNED",
                Severity.INFO,
                f"zone {zone} is DNSSEC-signed and validates from the trust anchor",
                evidence=evidence,
                reproduce=reproduce,
                subject=zone,
            )
        if verdict.state == INDETERMINATE:
            return self.finding(
                "DNSSEC_INDETERMINATE",
                Severity.INFO,
                f"the DNSSEC status of {zone} cannot be told: {verdict.reason}",
                evidence=evidence,
                reproduce=reproduce,
                subject=zone,
            )
        if verdict.state == BOGUS:
            if "DS mismatch" in verdict.reason or "missing DNSKEY" in verdict.reason:
                # the keys are the fault, not the records: show the DS beside the DNSKEYs
                reproduce = (
                    dnssec_dig(dns, verdict.zone, "DS")
                    + "; "
                    + dnssec_dig(dns, verdict.zone, "DNSKEY")
                )
            return self.finding(
                "DNSSEC_BOGUS",
                Severity.FAIL,
                f"zone {zone} is DNSSEC-bogus: {verdict.reason}",
                evidence=evidence,
                reproduce=reproduce,
                subject=zone,
            )
        return self.finding(
            "DNSSEC_UNSIGNED",
            Severity.WARN if tlsa else Severity.INFO,
            f"zone {zone} is not DNSSEC-signed"
            + (" but publishes TLSA records: DANE senders ignore them" if tlsa else ""),
            evidence=evidence,
            reproduce=reproduce,
            subject=zone,
        )


def dnssec_dig(dns, name: str, rdtype: str) -> str:
    """The door's dig line for (name, rdtype), asking for the RRSIGs too."""
    return dns.dig(name, rdtype).replace("dig ", "dig +dnssec ", 1)

"""https.bimi: the BIMI assertion record at `default._bimi.<domain>`, its logo, and the DMARC
policy BIMI requires (draft-brand-indicators-for-message-identification).

The record is read with the pure parser of probes.parse.bimi; the logo (`l=`) is fetched with
the bounded, verified HTTPS client of the network door (probes.net.https: only the addresses
the target's DNS gives, the certificate verified for the host, no redirects, 64 KiB cap) and
checked against the SVG Tiny PS profile as far as no renderer is needed (probes.parse.bimi
check_svg: size, root element and attributes, title, no scripts, animation or external
references; a DTD or entity declaration is refused unparsed). The authority evidence (`a=`, a
VMC) is not fetched. The DMARC policy of the domain (probes.lookup.dmarc, the one DMARC answer)
must be quarantine or reject, with pct=100 when pct is given: mailbox providers show no logo
otherwise.

Codes:
- BIMI_MISSING [info, absent] no BIMI record (BIMI is optional).
- BIMI_OK [info] a valid record, and its logo passes the checks (or the record declines).
- BIMI_SYNTAX_ERROR [fail] the record is invalid, or there is more than one.
- BIMI_LOGO_UNREACHABLE [fail] the logo could not be fetched (DNS, connection, certificate,
  a status other than 200: redirects are not followed).
- BIMI_LOGO_INVALID [fail] the logo is not SVG Tiny PS (evidence: every problem found).
- BIMI_DMARC_TOO_WEAK [warn] DMARC is absent, p=none, or pct below 100: no logo is shown.
"""

from __future__ import annotations

from collections.abc import Iterator

from probes.codes import Code, Fix, declare
from probes.errors import DnsError
from probes.lookup.dmarc import dmarc_policy
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import normalize_name
from probes.net.https import MAX_BODY, HttpsFailure, fetch, reproduce_line
from probes.parse import bimi
from probes.parse.dmarc import effective_policy
from probes.probe import BaseProbe

SELECTOR = "default"
RECORD = 'default._bimi.<domain>. 3600 IN TXT "v=BIMI1; l=https://<logo-host>/bimi/logo.svg; a="'
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" '
    'viewBox="0 0 64 64">\n'
    "  <title><brand name></title>\n"
    '  <rect width="64" height="64" fill="#1a5fb4"/>\n'
    "</svg>"
)
NGINX = "location = /bimi/logo.svg {\n    default_type image/svg+xml;\n    root /var/www/bimi;\n}"

CODES = declare(
    Code("BIMI_MISSING", "no BIMI record (BIMI is optional)", Severity.INFO, absent=True),
    Code("BIMI_OK", "a valid BIMI record whose logo passes the SVG Tiny PS checks", Severity.INFO),
    Code(
        "BIMI_SYNTAX_ERROR",
        "the BIMI record is invalid, or there is more than one",
        Severity.FAIL,
        fix=Fix(
            "Publish one TXT record at `default._bimi.<domain>` of the form `v=BIMI1; "
            "l=<https URL of the SVG logo>; a=<https URL of the VMC, or empty>`: `v=BIMI1` "
            "first, tags separated by `;`, https URLs only. Check with "
            "`dig +short TXT default._bimi.<domain>`.",
            {"zone": RECORD},
        ),
    ),
    Code(
        "BIMI_LOGO_UNREACHABLE",
        "the BIMI logo (l=) could not be fetched over verified HTTPS",
        Severity.FAIL,
        fix=Fix(
            "Serve the logo at the `l=` URL with status 200 and no redirect, from a host whose "
            "address is published and whose certificate is trusted and names it. Check with "
            "`curl -sv --max-redirs 0 <l= URL>`.",
            {"web": NGINX, "zone": RECORD},
        ),
    ),
    Code(
        "BIMI_LOGO_INVALID",
        "the BIMI logo is not SVG Tiny PS (size, root, title, scripts or external references)",
        Severity.FAIL,
        fix=Fix(
            'Export the logo as SVG Tiny PS: root `<svg version="1.2" baseProfile="tiny-ps">`, '
            "a `<title>` with the brand name, no scripts, animation, raster images or "
            "external references, no DTD, at most 32 KiB, square (the evidence lists the "
            "problems found).",
            {"web": SVG},
        ),
    ),
    Code(
        "BIMI_DMARC_TOO_WEAK",
        "BIMI needs DMARC at p=quarantine or p=reject (pct=100): no logo is shown",
        Severity.WARN,
        fix=Fix(
            "Move the DMARC policy to `p=quarantine` or `p=reject` (and `sp` likewise for "
            "subdomains) without `pct` below 100, once the aggregate reports show the "
            "legitimate mail passes. Check with `dig +short TXT _dmarc.<domain>`.",
            {
                "zone": '_dmarc.<domain>. 3600 IN TXT "v=DMARC1; p=quarantine; '
                'rua=mailto:dmarc@<domain>"'
            },
        ),
        follows=("DMARC_MISSING", "DMARC_POLICY_NONE", "DMARC_PCT_PARTIAL"),
    ),
)


class HttpsBimi(BaseProbe):
    id = "https.bimi"
    description = "BIMI record at default._bimi, its SVG Tiny PS logo over HTTPS, and DMARC"
    codes = CODES

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        domain = normalize_name(target.domain)
        name = f"{SELECTOR}._bimi.{domain}"
        dns = net.dns
        answer = dns.query(name, "TXT").raise_for_failure()
        reproduce = dns.dig(name, "TXT")
        records = [t for t in answer.texts() if bimi.is_bimi_record(t)]
        if not records:
            yield self.finding(
                "BIMI_MISSING",
                Severity.INFO,
                f"no BIMI record at {name}",
                evidence={"name": name, "TXT": f"{answer.rcode}, {len(answer.records)} records"},
                reproduce=reproduce,
            )
            return
        if len(records) > 1:
            yield self.finding(
                "BIMI_SYNTAX_ERROR",
                Severity.FAIL,
                f"{len(records)} BIMI records at {name}: receivers ignore them all",
                evidence={"name": name, "count": str(len(records))},
                reproduce=reproduce,
            )
            return
        try:
            record = bimi.parse_record(records[0])
        except bimi.BimiSyntaxError as exc:
            yield self.finding(
                "BIMI_SYNTAX_ERROR",
                Severity.FAIL,
                f"BIMI record at {name} is invalid: {exc}",
                evidence={"name": name, "record": records[0][:300], "error": str(exc)},
                reproduce=reproduce,
            )
            return
        yield from self._dmarc(domain, net)
        evidence = {"name": name, "record": records[0][:300]}
        if record.authority:
            evidence["a="] = record.authority + " (not fetched)"
        if record.logo is None:
            yield self.finding(
                "BIMI_OK",
                Severity.INFO,
                f"BIMI record at {name} declines to publish a logo (empty l=)",
                evidence=evidence,
                reproduce=reproduce,
            )
            return
        try:
            response = fetch(net, record.logo)
        except HttpsFailure as exc:
            yield self.finding(
                "BIMI_LOGO_UNREACHABLE",
                Severity.FAIL,
                f"the BIMI logo {record.logo} could not be fetched ({exc.stage}): {exc}",
                evidence={**evidence, "stage": exc.stage, "error": str(exc)[:300]},
                reproduce=reproduce_line(record.logo, exc.ip, net.ca_file),
                subject=record.logo,
            )
            return
        logo_reproduce = reproduce_line(record.logo, response.ip, net.ca_file)
        if response.status != 200:
            where = response.header("location")
            detail = f"HTTP {response.status} {response.reason}".strip()
            if response.redirect:
                detail += f", a redirect to {(where or '(no Location)')[:200]} (not followed)"
            yield self.finding(
                "BIMI_LOGO_UNREACHABLE",
                Severity.FAIL,
                f"the BIMI logo {record.logo} could not be fetched: {detail}",
                evidence={**evidence, "address": response.ip, "status": detail},
                reproduce=logo_reproduce,
                subject=record.logo,
            )
            return
        check = (
            bimi.LogoCheck((f"the logo is larger than {MAX_BODY} bytes",))
            if response.oversized
            else bimi.check_svg(response.body)
        )
        evidence.update(
            {
                "logo": record.logo,
                "address": response.ip,
                "bytes": str(len(response.body)),
                "content-type": response.header("content-type") or "(none)",
            }
        )
        if check.problems:
            for i, problem in enumerate(check.problems[:10], start=1):
                evidence[f"problem {i}"] = problem
            yield self.finding(
                "BIMI_LOGO_INVALID",
                Severity.FAIL,
                f"the BIMI logo {record.logo} is not SVG Tiny PS: {check.problems[0]}",
                evidence=evidence,
                reproduce=logo_reproduce,
                subject=record.logo,
            )
            return
        evidence["title"] = (check.title or "")[:100]
        yield self.finding(
            "BIMI_OK",
            Severity.INFO,
            f"BIMI record at {name}; the logo passes the SVG Tiny PS checks",
            evidence=evidence,
            reproduce=logo_reproduce,
        )

    def _dmarc(self, domain: str, net: Net) -> Iterator[Finding]:
        reproduce = net.dns.dig(f"_dmarc.{domain}", "TXT")
        try:
            record, source = dmarc_policy(domain, net.dns)
        except (DnsError, TimeoutError):  # dns.dmarc reports the failure
            return
        if record is None:
            weak = "there is no DMARC policy"
        else:
            policy, tag, note = effective_policy(record, subdomain=source != domain)
            if policy not in ("quarantine", "reject"):
                weak = f"the DMARC policy is {tag}={policy}" + (f" ({note})" if note else "")
            elif record.pct is not None and record.pct < 100:
                weak = f"the DMARC policy applies to pct={record.pct}, not 100"
            else:
                return
        yield self.finding(
            "BIMI_DMARC_TOO_WEAK",
            Severity.WARN,
            f"{domain} publishes BIMI but {weak}: mailbox providers show no logo without "
            "p=quarantine or p=reject at pct=100",
            evidence={"domain": domain, "dmarc": record.text[:300] if record else "(none)"},
            reproduce=reproduce,
        )

"""https.mta_sts: the MTA-STS policy file, fetched and checked against the MX set (RFC 8461).

When `_mta-sts.<domain>` holds one valid `v=STSv1` record (the record itself is dns.mta_sts's
to judge; without one, senders never fetch a policy and this probe is SKIPPED), the policy is
fetched from https://mta-sts.<domain>/.well-known/mta-sts.txt with the bounded, verified HTTPS
client of the network door (probes.net.https: only the addresses the target's DNS gives, SNI
and the certificate verified for the host with --ca-file or the system store, no redirects
followed, 64 KiB cap, the Target's timeouts). The policy is parsed (probes.parse.mta_sts), its
`mx` patterns matched against the MX set (probes.lookup.mx), and under `enforce` or `testing`
every covered MX host's certificate is checked as a sending MTA does (RFC 8461 §4.2): STARTTLS
on port 25 of the host's first address, the chain verified, the certificate naming the host.

Codes (severities per RFC 8461: what makes senders refuse or skip mail is a fail):
- MTA_STS_POLICY_OK [info] the policy was fetched and is valid (evidence: mode, max_age, mx).
- MTA_STS_POLICY_UNREACHABLE [fail] no policy could be fetched: DNS, connection, TLS, a
  certificate that is untrusted or does not name mta-sts.<domain>, a status other than 200 (a
  redirect included: senders MUST NOT follow it, §3.3). Senders then have no policy.
- MTA_STS_POLICY_INVALID [fail] the file is not a valid policy (oversized, not UTF-8, not
  text/plain, a missing or invalid field); senders then have no policy.
- MTA_STS_MX_NOT_COVERED [fail under enforce; warn under testing; info under none] an MX host
  no `mx` pattern matches: under enforce, senders refuse to deliver to it (§4.1).
- MTA_STS_CERT_INVALID [fail under enforce; warn under testing] a covered MX host whose
  certificate is not trusted or does not name it, or that does not offer STARTTLS (§4.2).
- MTA_STS_TESTING_MODE [warn] mode testing: failures are reported (TLS-RPT), not enforced.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from probes.codes import Code, Fix, declare
from probes.errors import ProbeSkipped, ProtocolError
from probes.lookup.mx import ask_mx, resolve_hosts
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import normalize_name
from probes.net.https import HttpsFailure, HttpsResponse, fetch, reproduce_line
from probes.net.mail_sessions import SmtpSession
from probes.net.stream import Connection
from probes.parse import mta_sts
from probes.parse.certificate import CertificateParseError, hostname_matches, parse_certificate
from probes.probe import BaseProbe
from probes.probekit.reproduce import openssl_line

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_SHOWN = 300  # characters of a policy body shown in evidence
POLICY_FILE = (
    "# https://mta-sts.<domain>/.well-known/mta-sts.txt (text/plain)\n"
    "version: STSv1\n"
    "mode: enforce\n"
    "mx: <mx-host>\n"
    "max_age: 604800"
)
ID_BUMP = '_mta-sts.<domain>. 3600 IN TXT "v=STSv1; id=<yyyymmddhhmmss>"'
NGINX = (
    "server {\n"
    "    listen 443 ssl;\n"
    "    server_name mta-sts.<domain>;\n"
    "    ssl_certificate /etc/ssl/mta-sts.<domain>.crt;\n"
    "    ssl_certificate_key /etc/ssl/private/mta-sts.<domain>.key;\n"
    "    location = /.well-known/mta-sts.txt {\n"
    "        default_type text/plain;\n"
    "        root /var/www/mta-sts;\n"
    "    }\n"
    "}"
)

CODES = declare(
    Code("MTA_STS_POLICY_OK", "the MTA-STS policy was fetched and is valid", Severity.INFO),
    Code(
        "MTA_STS_POLICY_UNREACHABLE",
        "the MTA-STS policy could not be fetched over verified HTTPS (senders have no policy)",
        Severity.FAIL,
        fix=Fix(
            "Serve the policy at https://mta-sts.<domain>/.well-known/mta-sts.txt with status "
            "200, from a host whose A/AAAA records are published and whose certificate is "
            "trusted and names mta-sts.<domain>; no redirect (senders do not follow them, RFC "
            "8461 §3.3). Check with `curl -sv --max-redirs 0 "
            "https://mta-sts.<domain>/.well-known/mta-sts.txt`.",
            {
                "zone": "mta-sts.<domain>. 3600 IN A <ipv4>\n" + ID_BUMP,
                "web": NGINX,
                "openssl": "openssl req -new -key mta-sts.<domain>.key "
                "-subj /CN=mta-sts.<domain> -addext subjectAltName=DNS:mta-sts.<domain>",
            },
        ),
    ),
    Code(
        "MTA_STS_POLICY_INVALID",
        "the MTA-STS policy file is not a valid RFC 8461 policy (senders have no policy)",
        Severity.FAIL,
        fix=Fix(
            "Rewrite the policy file as `key: value` lines (RFC 8461 §3.2): `version: STSv1`, "
            "`mode: enforce` (or testing, none), one `mx:` line per MX host or `*.` wildcard, "
            "`max_age` in seconds (at most 31557600), UTF-8, under 64 KiB, served as "
            "text/plain. Then change the `id` of the `_mta-sts` TXT record so that senders "
            "fetch it again.",
            {"zone": ID_BUMP, "web": POLICY_FILE},
        ),
    ),
    Code(
        "MTA_STS_MX_NOT_COVERED",
        "an MX host no mx: pattern of the MTA-STS policy matches (enforce: senders refuse it)",
        Severity.FAIL,
        fix=Fix(
            "Add an `mx:` line for the host (or a `*.` wildcard covering exactly one label) to "
            "the policy file, or remove the host from the MX records; then change the `id` of "
            "the `_mta-sts` TXT record so that senders fetch the new policy.",
            {"zone": ID_BUMP, "web": POLICY_FILE},
        ),
    ),
    Code(
        "MTA_STS_CERT_INVALID",
        "an MX host the MTA-STS policy covers has no STARTTLS or a certificate not valid for it",
        Severity.FAIL,
        fix=Fix(
            "Give the MX host a certificate from a public CA that names the host as the MX "
            "record publishes it (subjectAltName DNS:<mx-host>), with its whole chain, and "
            "offer STARTTLS on port 25 (RFC 8461 §4.2). Check with `openssl s_client "
            "-starttls smtp -connect <mx-host>:25 -servername <mx-host> -verify_hostname "
            "<mx-host>`.",
            {
                "openssl": "openssl req -new -key <mx-host>.key -subj /CN=<mx-host> "
                "-addext subjectAltName=DNS:<mx-host>",
                "postfix": "smtpd_tls_chain_files = /etc/ssl/private/<mx-host>.key, "
                "/etc/ssl/<mx-host>.fullchain.pem",
                "exim": "tls_certificate = /etc/ssl/<mx-host>.fullchain.pem\n"
                "tls_privatekey = /etc/ssl/private/<mx-host>.key",
            },
        ),
    ),
    Code(
        "MTA_STS_TESTING_MODE",
        "the MTA-STS policy is in testing mode: failures are reported, not enforced",
        Severity.WARN,
        fix=Fix(
            "Once the TLS-RPT reports show no failures, set `mode: enforce` in the policy file "
            "and change the `id` of the `_mta-sts` TXT record so that senders fetch it again "
            "(RFC 8461 §5).",
            {"zone": ID_BUMP, "web": POLICY_FILE},
        ),
    ),
)

# Severity of the MX findings by policy mode (none: the policy is being withdrawn).
BY_MODE = {"enforce": Severity.FAIL, "testing": Severity.WARN, "none": Severity.INFO}


class HttpsMtaSts(BaseProbe):
    id = "https.mta_sts"
    description = "MTA-STS policy fetched over verified HTTPS, matched to the MX set (RFC 8461)"
    codes = CODES

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        domain = normalize_name(target.domain)
        record_name = f"_mta-sts.{domain}"
        answer = net.dns.query(record_name, "TXT").raise_for_failure()
        records = [t for t in answer.texts() if mta_sts.is_sts_record(t)]
        if len(records) != 1:
            raise ProbeSkipped(
                f"no single MTA-STS record at {record_name}: senders fetch no policy "
                "(dns.mta_sts reports the record)"
            )
        try:
            record = mta_sts.parse(records[0])
        except mta_sts.MtaStsSyntaxError:
            raise ProbeSkipped(
                f"the MTA-STS record at {record_name} is invalid: senders fetch no policy "
                "(dns.mta_sts reports it)"
            ) from None
        host = f"mta-sts.{domain}"
        url = f"https://{host}{_port()}{POLICY_PATH}"
        subject = host
        try:
            response = fetch(net, url)
        except HttpsFailure as exc:
            yield self.finding(
                "MTA_STS_POLICY_UNREACHABLE",
                Severity.FAIL,
                f"the MTA-STS policy at {url} could not be fetched ({exc.stage}): {exc}",
                evidence={"url": url, "stage": exc.stage, "error": str(exc)[:300]},
                reproduce=reproduce_line(url, exc.ip, net.ca_file),
                subject=subject,
            )
            return
        reproduce = reproduce_line(url, response.ip, net.ca_file)
        problem = _response_problem(response)
        if problem is not None:
            yield self.finding(
                "MTA_STS_POLICY_UNREACHABLE",
                Severity.FAIL,
                f"the MTA-STS policy at {url} could not be fetched: {problem}",
                evidence=_evidence(response, stage="http", error=problem),
                reproduce=reproduce,
                subject=subject,
            )
            return
        try:
            policy = _policy(response)
        except mta_sts.MtaStsPolicyError as exc:
            yield self.finding(
                "MTA_STS_POLICY_INVALID",
                Severity.FAIL,
                f"the MTA-STS policy at {url} is invalid: {exc}",
                evidence=_evidence(response, error=str(exc), body=_shown(response.body)),
                reproduce=reproduce,
                subject=subject,
            )
            return
        mxs = ask_mx(domain, net.dns)
        mxs.answer.raise_for_failure()
        hosts = list(mxs.exchanges) if mxs.records else [domain]
        covered = [h for h in hosts if policy.covers(h)]
        evidence = {
            "url": url,
            "address": response.ip,
            "record id": record.id,
            "mode": policy.mode,
            "max_age": str(policy.max_age),
            "mx patterns": ", ".join(policy.mx) or "(none)",
            "mx hosts": ", ".join(hosts),
            "line ends": policy.line_ends,
        }
        if policy.ignored:
            evidence["ignored keys"] = ", ".join(policy.ignored[:10])
        yield self.finding(
            "MTA_STS_POLICY_OK",
            Severity.INFO,
            f"MTA-STS policy at {url}: mode {policy.mode}, max_age {policy.max_age}, "
            f"{len(covered)} of {len(hosts)} MX hosts covered",
            evidence=evidence,
            reproduce=reproduce,
            subject=subject,
        )
        if policy.mode == "testing":
            yield self.finding(
                "MTA_STS_TESTING_MODE",
                Severity.WARN,
                f"the MTA-STS policy of {domain} is in testing mode: senders report TLS "
                "failures but deliver anyway",
                evidence={"url": url, "mode": policy.mode},
                reproduce=reproduce,
                subject=subject,
            )
        severity = BY_MODE[policy.mode]
        for mx in hosts:
            if mx in covered:
                continue
            yield self.finding(
                "MTA_STS_MX_NOT_COVERED",
                severity,
                f"MX host {mx} is not covered by the MTA-STS policy of {domain} (mode "
                f"{policy.mode})"
                + (
                    ": senders that enforce it will not deliver there"
                    if severity is Severity.FAIL
                    else ""
                ),
                evidence={"mx host": mx, "mx patterns": ", ".join(policy.mx) or "(none)"},
                reproduce=reproduce,
                subject=mx,
            )
        if policy.mode == "none" or not covered:
            return
        resolved = resolve_hosts(mxs, net.dns) if mxs.records else None
        addresses = {h.name: h.addresses for h in resolved.hosts} if resolved else {}
        if not mxs.records:
            a, aaaa = net.dns.addresses(domain)
            addresses[domain] = tuple(str(r) for ans in (a, aaaa) if ans.ok for r in ans.records)
        checks = [(mx, addresses.get(mx, ())[0]) for mx in covered if addresses.get(mx)]
        if not checks:
            return
        with ThreadPoolExecutor(max_workers=min(4, len(checks))) as pool:
            results = list(pool.map(lambda c: _mx_certificate(net, *c), checks))
        for (mx, ip), problem in zip(checks, results, strict=True):
            if problem is None:
                continue
            yield self.finding(
                "MTA_STS_CERT_INVALID",
                severity,
                f"MX host {mx} ({ip}) is covered by the {policy.mode} MTA-STS policy of "
                f"{domain} but {problem}",
                evidence={"mx host": mx, "address": ip, "problem": problem, "mode": policy.mode},
                reproduce=openssl_line(ip, 25, starttls="smtp", servername=mx, ca_file=net.ca_file),
                subject=f"{mx}:25",
            )


def _response_problem(response: HttpsResponse) -> str | None:
    if response.redirect:
        location = response.header("location") or "(no Location)"
        return (
            f"HTTP {response.status} redirect to {location[:200]} (senders do not follow "
            "redirects, RFC 8461 §3.3)"
        )
    if response.status != 200:
        return f"HTTP {response.status} {response.reason}"
    return None


def _policy(response: HttpsResponse) -> mta_sts.MtaStsPolicy:
    if response.oversized:
        raise mta_sts.MtaStsPolicyError(
            f"the policy is larger than {mta_sts.MAX_POLICY_BYTES} bytes"
        )
    content_type = (response.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != "text/plain":
        raise mta_sts.MtaStsPolicyError(
            f"served as {content_type or '(no Content-Type)'!r}, not text/plain (RFC 8461 §3.2)"
        )
    return mta_sts.parse_policy(response.body)


def _evidence(response: HttpsResponse, **extra: str) -> dict[str, str]:
    evidence = {
        "url": response.url,
        "address": response.ip,
        "status": f"{response.status} {response.reason}".strip(),
        "content-type": response.header("content-type") or "(none)",
        "bytes": f"{len(response.body)}{' or more (cut)' if response.oversized else ''}",
    }
    evidence.update(extra)
    return evidence


def _shown(body: bytes) -> str:
    text = body[:MAX_SHOWN].decode("utf-8", errors="backslashreplace")
    return text + ("…" if len(body) > MAX_SHOWN else "")


def _mx_certificate(net: Net, host: str, ip: str) -> str | None:
    """What a sending MTA would find wrong with the MX's TLS (None: nothing, or the MX could
    not be reached at all: the transport probes report that)."""
    try:
        conn = Connection.open(net, ip, 25, label=f"{host}:25", shared=True)
    except (TimeoutError, OSError):
        return None
    try:
        session = SmtpSession(conn)
        try:
            if session.banner().code != 220:
                return None
            _, ehlo = session.ehlo()
        except (TimeoutError, OSError, ProtocolError):
            return None
        if ehlo is None or not ehlo.has("STARTTLS"):
            return "it does not offer STARTTLS"
        try:
            if session.command("STARTTLS").code != 220:
                return "it refuses STARTTLS"
            tls = conn.start_tls(server_name=host, verify=True)
        except ssl.SSLCertVerificationError as exc:
            return f"its certificate is not trusted ({exc.verify_message})"
        except (ssl.SSLError, TimeoutError, OSError, ProtocolError) as exc:
            return f"the TLS handshake failed ({exc})"
        if not tls.leaf_der:
            return "it presented no certificate"
        try:
            info = parse_certificate(tls.leaf_der)
        except CertificateParseError:
            return "its certificate cannot be parsed"
        if not hostname_matches(info, host):
            names = ", ".join(info.dns_names[:5]) or ", ".join(info.common_names[:5])
            return f"its certificate does not name it (it names {names or 'nothing'})"
        session.quit()
        return None
    finally:
        conn.close()


POLICY_PORT = 443  # RFC 8461 §3.3; tests serve the policy on another port


def _port() -> str:
    return "" if POLICY_PORT == 443 else f":{POLICY_PORT}"

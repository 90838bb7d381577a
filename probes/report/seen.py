"""What each area of a run showed, in a few words, from the state findings' evidence (the policy
in force, the key, the TLS an endpoint offers): the text report's posture says it beside a
passing area, so a clean run still tells its reader what is configured. Pure: a RunReport in,
{(kind, area name): words} out; nothing is asked again.

Endpoints come from probes.report.endpoint_matrix (the HTML matrix's rows), the message from
probes.report.message_alignment: one reading of that evidence for every report.
"""

from __future__ import annotations

from probes.model import Finding
from probes.report.endpoint_matrix import EndpointRow, endpoint_rows
from probes.report.message_alignment import message_alignments
from probes.report.posture import DNS_LABELS, Kind
from probes.report.run import RunReport

_AUTH = {"login accepted": "login ok"}


def _dns(probe_id: str, findings: list[Finding]) -> str:
    ev = {f.code: f.evidence for f in findings}
    if probe_id == "dns.dmarc" and "DMARC_POLICY" in ev:
        p = ev["DMARC_POLICY"]
        bits = [p.get("applies", "")]
        if p.get("rua") and p.get("rua") != "none":
            bits.append("reports to " + p["rua"].removeprefix("mailto:"))
        return ", ".join(b for b in bits if b)
    if probe_id == "dns.spf" and "SPF_RECORD" in ev:
        bits = [ev["SPF_RECORD"].get("all", "") or "no all"]
        count = ev.get("SPF_LOOKUP_COUNT", {})
        if count.get("count"):
            bits.append(f"{count['count']}/{count.get('limit', '10')} lookups")
        return ", ".join(bits)
    if probe_id == "dns.dkim":
        keys = [f for f in findings if f.code == "DKIM_KEY_OK"]
        return ", ".join(
            f"{f.evidence.get('selector', f.subject)}: {f.evidence.get('key_type', '?').upper()}"
            + (f" {f.evidence['bits']}" if f.evidence.get("bits") else "")
            for f in keys
        )
    if probe_id == "dns.mx" and "MX_PRESENT" in ev:
        return ev["MX_PRESENT"].get("mx", "").replace(".,", ",").rstrip(".")
    if probe_id == "https.mta_sts" and "MTA_STS_POLICY_OK" in ev:
        policy = ev["MTA_STS_POLICY_OK"]
        return f"{policy.get('mode', '?')}, covers {policy.get('mx hosts', '?')}"
    if probe_id == "https.bimi" and "BIMI_OK" in ev:
        return "logo " + ev["BIMI_OK"].get("logo", "declined (empty l=)")
    if probe_id == "dns.dnssec":
        signed = [f.subject for f in findings if f.code == "DNSSEC_SIGNED" and f.subject]
        return "signed: " + ", ".join(signed) if signed else ""
    if probe_id == "dns.blocklists":
        clean = [f for f in findings if f.code == "DNSBL_CLEAN"]
        lists = sorted({z for f in clean for z in f.evidence.get("lists", "").split(", ") if z})
        if clean:
            return f"{len(clean)} clean on {', '.join(lists)}"
        return ""
    if probe_id == "dns.ptr":
        confirmed = sum(1 for f in findings if f.code == "PTR_CONFIRMED")
        return f"{confirmed} address{'es' if confirmed != 1 else ''} confirmed" if confirmed else ""
    return ""


def _dane(report: RunReport) -> str:
    """DANE is judged in two places: dns.dane sees the TLSA records, smtp.mx matches them to
    the chain its STARTTLS received. Say which of the two happened."""
    found = [f for r in report.results for f in r.findings]
    matched = sorted({f.subject or "" for f in found if f.code == "DANE_TLSA_MATCH"})
    if matched:
        return "TLSA matched on " + ", ".join(matched)
    published = any(f.code == "DANE_TLSA_PRESENT" for f in found)
    if published and not any(r.probe_id == "smtp.mx" for r in report.results):
        return "TLSA published; not matched to a certificate (smtp.mx did not run)"
    return ""


def _endpoint(row: EndpointRow) -> str:
    """E.g. "STARTTLS 1.2/1.3, cert 89 days, login ok" ("AUTH PLAIN LOGIN" when untried)."""
    bits: list[str] = []
    if row.tls in ("STARTTLS", "implicit TLS", "TLS"):
        versions = "/".join(v.removeprefix("TLSv") for v in row.accepted)
        versions = versions or row.negotiated.removeprefix("TLSv")
        word = "STARTTLS" if row.tls == "STARTTLS" else "TLS"
        bits.append(f"{word} {versions}" if versions else row.tls)
    elif row.tls not in ("", "?"):
        bits.append(row.tls)
    if row.cert == "ok" and row.cert_days is not None:
        bits.append(f"cert {row.cert_days} days")
    if row.auth:  # a login was tried: its outcome says more than the mechanisms
        bits.append(_AUTH.get(row.auth, row.auth))
    elif row.auth_mechanisms:
        bits.append(f"AUTH {row.auth_mechanisms}")
    return ", ".join(bits)


def _message(report: RunReport) -> str:
    words: list[str] = []
    for found in message_alignments(report):
        aligned = [i.kind.upper() for i in found.passing_aligned]
        text = f"DMARC {found.dmarc}"
        if aligned:
            text += " (aligned: " + ", ".join(dict.fromkeys(aligned)) + ")"
        words.append(text)
    delivered = next(
        (
            f
            for r in report.results
            for f in r.findings
            if f.code == "MESSAGE_DELIVERED" and r.probe_id.startswith("message.")
        ),
        None,
    )
    if delivered is not None:
        via = delivered.evidence.get("retrieved_via")
        words.insert(0, "delivered" + (f", read back over {via}" if via else ""))
    return "; ".join(dict.fromkeys(w for w in words if w))


def seen(report: RunReport) -> dict[tuple[Kind, str], str]:
    """(area kind, area name) -> what it showed, for the areas something can be said about."""
    out: dict[tuple[Kind, str], str] = {}
    for result in report.results:
        if result.probe_id in DNS_LABELS:
            words = _dns(result.probe_id, list(result.findings))
            if words:
                out[(Kind.DNS, DNS_LABELS[result.probe_id])] = words
    dane = _dane(report)
    if dane:
        out[(Kind.DNS, DNS_LABELS["dns.dane"])] = dane
    for row in endpoint_rows(report):
        words = _endpoint(row)
        if words:
            out[(Kind.ENDPOINT, row.subject)] = words
    message = _message(report)
    if message:
        out[(Kind.MESSAGE, "message")] = message
    return out

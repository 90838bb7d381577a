"""dns.dmarc: the DMARC policy that applies to a domain (RFC 9989) and its report addresses.

Policy discovery and Organizational Domains come from the DNS Tree Walk (RFC 9989 §4.10), not
from the Public Suffix List. The walk is asked all at once: `_dmarc.<domain>` and every name
the walk could need go out together with the three legacy-record questions, so the policy is
known after one round trip. A second round asks, for every report destination in another
domain, the destination's own walk and the `<policy domain>._report._dmarc.<destination>`
authorization (RFC 9990 §4) together; a third is needed only in rare cases (a destination
inside the policy domain's tree that turns out to be another organization, or a psd=y record
whose Organizational Domain the shortened walk skipped).

A failed lookup never reads as "no record". A failed `_dmarc.<domain>` ends the run at once
(ERROR). A failed parent in the walk is judged by evaluating the walk under every answer it
could have given: when that changes nothing the failure is harmless; otherwise the findings
are given for what was answered and the run ends in ERROR naming the failed question. A report
destination whose organization cannot be told apart that way is not judged (ERROR at the end).
A failed single-label name (a TLD's `_dmarc`) is taken to hold nothing or a psd=y record
(probes.parse.dmarc.possible_answers: RFC 9989 requires psd=y of a Public Suffix Operator).

Codes:
- DMARC_MISSING [fail] no DMARC policy at `_dmarc.<domain>` nor from the tree walk.
- DMARC_MULTIPLE_RECORDS [fail] several v=DMARC1 records at `_dmarc.<domain>`: all are
  discarded (the walk then goes on to the parents).
- DMARC_INHERITED [info] the policy comes from a parent found by the tree walk (evidence:
  where, the Organizational Domain, the tag that applies to the domain).
- DMARC_POLICY [info] the policy that applies, whenever a record is found (subject: the
  domain): where, the record, the policy applied and the effective p, sp, np, adkim, aspf, t,
  rua and ruf (defaults spelled out, URIs sorted), so a change of policy is a change of
  evidence.
- DMARC_SYNTAX_ERROR [fail] a tag breaks RFC 9989 §4.8 (one finding per tag, evidence: tag).
- DMARC_POLICY_NONE [warn] the policy that applies to the domain is none (p, or sp for an
  inherited policy; an absent or invalid p counts as none, RFC 9989 §4.7/§4.10.1).
- DMARC_PCT_PARTIAL [warn] pct < 100 (RFC 7489 receivers apply the policy to a sample).
- DMARC_TESTING_MODE [warn] t=y.
- DMARC_OBSOLETE_TAG [info] pct, rf or ri (removed by RFC 9989), one finding per tag.
- DMARC_UNKNOWN_TAG [info] tags RFC 9989 does not define (receivers ignore them).
- DMARC_NO_REPORTING [info] no valid rua URI: nobody sends aggregate reports.
- DMARC_EXTERNAL_REPORT_UNAUTHORIZED [warn] a rua/ruf destination in another Organizational
  Domain publishes no `<policy domain>._report._dmarc.<destination>` v=DMARC1 record
  (subject: the destination domain); receivers drop those reports.
- LEGACY_POLICY_RECORD [info] a DomainKeys policy (`_domainkey.<domain>`, o=), ADSP
  (`_adsp._domainkey.<domain>`, dkim=) or SSP (`_ssp._domainkey.<domain>`) record
  (subject: the record's name).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import Future

from probes.codes import Code, Fix, declare
from probes.lookup.dmarc import DmarcSite, DmarcTree
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import DnsAnswer, DnsClient, check_name, normalize_name
from probes.parse.dmarc import (
    Discovery,
    DmarcRecord,
    domain_name,
    effective_policy,
    is_dmarc_record,
    walk_names,
)
from probes.probe import BaseProbe

# A hostile record could list thousands of report URIs; receivers use the first few.
MAX_REPORT_HOSTS = 10
MAX_LISTED = 10  # findings of one kind (syntax errors) and evidence list items
MAX_TEXT = 300  # characters of a record kept in evidence


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Legacy policy records: (kind, name prefix, test on one TXT string)
def _tags(text: str) -> set[str]:
    return {part.partition("=")[0].strip().lower() for part in text.split(";") if "=" in part}


def _is_domainkeys_policy(text: str) -> bool:
    return "o" in _tags(text)  # RFC 4870 §3.6.2.1: o=~ (some mail signed) / o=- (all)


def _is_adsp(text: str) -> bool:
    return "dkim" in _tags(text)  # RFC 5617 §4.2.1: dkim=unknown|all|discardable


def _is_ssp(text: str) -> bool:
    lowered = text.strip().lower()
    other = lowered.startswith(("v=spf1", "v=dkim1", "v=dmarc1"))
    return "=" in text and not other  # draft-allman-dkim-ssp: a tag list


LEGACY = (
    ("DomainKeys policy", "_domainkey.", _is_domainkeys_policy, "RFC 4870, historic"),
    ("ADSP", "_adsp._domainkey.", _is_adsp, "RFC 5617, historic since 2013"),
    ("SSP", "_ssp._domainkey.", _is_ssp, "an abandoned DKIM draft"),
)


# The record most DMARC fixes end with.
_DMARC_RECORD = (
    '_dmarc.<domain>. 3600 IN TXT "v=DMARC1; p=reject; rua=mailto:<dmarc-reports>@<domain>"'
)


class DnsDmarc(BaseProbe):
    id = "dns.dmarc"
    description = (
        "DMARC policy via the RFC 9989 tree walk: one record, tag syntax, policy strength, "
        "external report authorization, legacy DomainKeys/ADSP/SSP records"
    )
    codes = declare(
        Code(
            "DMARC_MISSING",
            "no DMARC record at the domain or found by the tree walk",
            Severity.FAIL,
            fix=Fix(
                "Publish a TXT record at `_dmarc.<domain>`. Start with `p=none` and a `rua` "
                "address to learn from the aggregate reports which senders pass aligned SPF or "
                "DKIM; once all legitimate mail does, move to `p=quarantine`, then "
                "`p=reject`. Check with `dig +short TXT _dmarc.<domain>`.",
                {
                    "zone": '_dmarc.<domain>. 3600 IN TXT "v=DMARC1; p=none; '
                    'rua=mailto:<dmarc-reports>@<domain>"\n'
                    "; once the reports show every legitimate sender aligned:\n"
                    '; _dmarc.<domain>. 3600 IN TXT "v=DMARC1; p=reject; '
                    'rua=mailto:<dmarc-reports>@<domain>"',
                },
            ),
        ),
        Code(
            "DMARC_MULTIPLE_RECORDS",
            "several v=DMARC1 records at one name (all are discarded)",
            Severity.FAIL,
            fix=Fix(
                "Merge the `v=DMARC1` records at the name the finding gives into one and delete "
                "the others: with two records receivers apply no policy at all. Check with "
                "`dig +short TXT _dmarc.<domain>`: one line starts with v=DMARC1.",
                {"zone": _DMARC_RECORD},
            ),
        ),
        Code(
            "DMARC_SYNTAX_ERROR",
            "a DMARC tag is invalid",
            Severity.FAIL,
            fix=Fix(
                "Correct the tag the finding names: `v=DMARC1` comes first; `p`, `sp` and `np` "
                "are none, quarantine or reject; `adkim` and `aspf` are r or s; `rua` and "
                "`ruf` are comma-separated `mailto:` URIs; tags are separated by `;`. Check "
                "with `dig +short TXT _dmarc.<domain>`.",
                {"zone": _DMARC_RECORD},
            ),
        ),
        Code(
            "DMARC_POLICY_NONE",
            "the policy is p=none (or no p)",
            Severity.WARN,
            fix=Fix(
                "`p=none` only asks for reports: receivers deliver mail that fails DMARC as "
                "usual. When the aggregate reports show that all legitimate mail passes "
                "aligned SPF or DKIM, raise the policy to `p=quarantine`, then `p=reject`. "
                "Check with `dig +short TXT _dmarc.<domain>`.",
                {"zone": _DMARC_RECORD},
            ),
        ),
        Code(
            "DMARC_PCT_PARTIAL",
            "pct below 100 (RFC 7489 receivers honour it)",
            Severity.WARN,
            fix=Fix(
                "Remove the `pct` tag (RFC 9989 dropped it; the default is all mail), so the "
                "policy applies to every failing message. Check with "
                "`dig +short TXT _dmarc.<domain>`.",
                {"zone": _DMARC_RECORD},
            ),
        ),
        Code(
            "DMARC_TESTING_MODE",
            "the policy is in testing mode (t=y)",
            Severity.WARN,
            fix=Fix(
                "Remove `t=y` from the record once the reports look right: in testing mode "
                "receivers apply a weaker policy than the one published. Check with "
                "`dig +short TXT _dmarc.<domain>`.",
                {"zone": _DMARC_RECORD},
            ),
        ),
        Code(
            "DMARC_OBSOLETE_TAG",
            "pct, rf or ri is present (removed by RFC 9989)",
            Severity.INFO,
        ),
        Code("DMARC_UNKNOWN_TAG", "tags RFC 9989 does not define", Severity.INFO),
        Code(
            "DMARC_INHERITED",
            "the policy comes from a parent domain found by the tree walk",
            Severity.INFO,
        ),
        Code(
            "DMARC_POLICY",
            "the DMARC policy that applies: p, sp, np, adkim, aspf, t, rua, ruf",
            Severity.INFO,
        ),
        Code("DMARC_NO_REPORTING", "no rua: nobody receives aggregate reports", Severity.INFO),
        Code(
            "DMARC_EXTERNAL_REPORT_UNAUTHORIZED",
            "a rua/ruf destination in another domain does not authorize the reports",
            Severity.WARN,
            fix=Fix(
                "Reports to an address in another domain are sent only if that domain agrees "
                "(RFC 7489 §7.1): its owner publishes a `v=DMARC1` TXT record at "
                "`<domain>._report._dmarc.<report-domain>`. Ask them to, or send the reports "
                "to an address in your own domain. Check with "
                "`dig +short TXT <domain>._report._dmarc.<report-domain>`.",
                {
                    "zone": "; in the zone of the report destination's domain\n"
                    '<domain>._report._dmarc.<report-domain>. 3600 IN TXT "v=DMARC1"',
                },
            ),
        ),
        Code(
            "LEGACY_POLICY_RECORD",
            "a DomainKeys policy, ADSP or SSP record is present",
            Severity.INFO,
        ),
    )

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        dns = net.dns
        domain = domain_name(target.domain) or normalize_name(target.domain)
        sites = DmarcTree(dns)
        names = walk_names(domain)
        sites.ask(names)
        legacy = [
            (kind, prefix + domain, test, why, dns.submit(prefix + domain, "TXT"))
            for kind, prefix, test, why in LEGACY
        ]
        pending: list[DnsAnswer] = []  # failures that kept a verdict from being given

        own = sites.site(domain)
        if not own.answer.ok:
            yield from self._legacy(dns, legacy, pending)
            own.answer.raise_for_failure()
        if len(own.records) > 1:
            yield self._multiple(dns, own)

        if own.record is not None:
            # Its own record applies (§4.10.1); its Organizational Domain is only needed for
            # report destinations, and is worked out there.
            discovery = Discovery(domain, domain, domain)
        else:
            # The tree walk. When an answer that could not be had might change where the
            # policy comes from, the walk goes on with what was answered and the failure is
            # kept for the end of the run.
            discovery, failed = sites.discover(domain)
            if failed is not None and failed not in pending:
                pending.append(failed)
        if discovery.source is None:
            if len(own.records) <= 1:
                yield self._missing(dns, sites, domain, names, discovery)
            yield from self._legacy(dns, legacy, pending)
            _raise_first(pending)
            return

        source = sites.site(discovery.source)
        record = source.record
        assert record is not None
        if discovery.inherited:
            yield self._inherited(dns, domain, discovery, record)
        yield from self._record_findings(dns, domain, discovery, source.name, record)
        yield from self._external(dns, sites, domain, discovery.source, record, pending)
        yield from self._legacy(dns, legacy, pending)
        _raise_first(pending)

    # --- findings -------------------------------------------------------------------------

    def _multiple(self, dns: DnsClient, own: DmarcSite) -> Finding:
        name = "_dmarc." + own.name
        evidence = {"name": name, "count": str(len(own.records))}
        for i, text in enumerate(own.records[:MAX_LISTED], start=1):
            evidence[f"record {i}"] = shorten(text)
        return self.finding(
            "DMARC_MULTIPLE_RECORDS",
            Severity.FAIL,
            f"{len(own.records)} DMARC records at {name}: receivers discard them all "
            "(RFC 9989 §4.10)",
            evidence=evidence,
            reproduce=dns.dig(name, "TXT"),
        )

    def _missing(
        self,
        dns: DnsClient,
        sites: DmarcTree,
        domain: str,
        names: tuple[str, ...],
        discovery: Discovery,
    ) -> Finding:
        evidence = {
            "queried": ", ".join("_dmarc." + n for n in names),
            "organizational_domain": discovery.organizational_domain,
        }
        ignored = [t for n in names for t in sites.site(n).ignored]
        for i, text in enumerate(ignored[:MAX_LISTED], start=1):
            evidence[f"ignored {i}"] = shorten(text)
        discarded = [n for n in names if len(sites.site(n).records) > 1]
        if discarded:
            evidence["discarded (several records)"] = ", ".join("_dmarc." + n for n in discarded)
        unanswered = [n for n in names if not sites.site(n).answer.ok]
        if unanswered:
            evidence["unanswered"] = ", ".join("_dmarc." + n for n in unanswered)
        return self.finding(
            "DMARC_MISSING",
            Severity.FAIL,
            f"no DMARC policy for {domain}: no v=DMARC1 record at _dmarc.{domain} "
            "and none found by the tree walk",
            evidence=evidence,
            reproduce=dns.dig("_dmarc." + domain, "TXT"),
        )

    def _inherited(
        self, dns: DnsClient, domain: str, discovery: Discovery, record: DmarcRecord
    ) -> Finding:
        source = discovery.source
        assert source is not None
        policy, tag, _ = effective_policy(record, subdomain=True)
        evidence = {
            "where": "_dmarc." + source,
            "record": shorten(record.text),
            "organizational_domain": discovery.organizational_domain,
            "applies": f"{tag}={policy}",
        }
        kind = "its Organizational Domain"
        if discovery.psd_domain is not None:
            evidence["public_suffix_domain"] = discovery.psd_domain
            kind = "its Public Suffix Domain (psd=y)"
        return self.finding(
            "DMARC_INHERITED",
            Severity.INFO,
            f"{domain} has no DMARC record of its own; the policy of {kind} {source} applies",
            evidence=evidence,
            reproduce=dns.dig("_dmarc." + source, "TXT"),
        )

    def _record_findings(
        self,
        dns: DnsClient,
        domain: str,
        discovery: Discovery,
        source: str,
        record: DmarcRecord,
    ) -> Iterator[Finding]:
        name = "_dmarc." + source
        reproduce = dns.dig(name, "TXT")
        base = {"name": name, "record": shorten(record.text)}
        yield self._policy(domain, discovery, base, record, reproduce)

        for problem in record.problems[:MAX_LISTED]:
            yield self.finding(
                "DMARC_SYNTAX_ERROR",
                Severity.FAIL,
                f"DMARC record at {name}: tag {shorten(problem.tag, 40)!r}: {problem.problem}",
                evidence={
                    **base,
                    "tag": shorten(problem.tag, 80),
                    "problem": problem.problem,
                    "value": shorten(problem.value, 120),
                },
                reproduce=reproduce,
            )
        if len(record.problems) > MAX_LISTED:
            yield self.finding(
                "DMARC_SYNTAX_ERROR",
                Severity.FAIL,
                f"DMARC record at {name}: {len(record.problems) - MAX_LISTED} more tag "
                "problems not listed",
                evidence={**base, "tag": ", ".join(p.tag[:20] for p in record.problems[10:20])},
                reproduce=reproduce,
            )

        policy, tag, note = effective_policy(record, subdomain=discovery.inherited)
        if policy == "none":
            evidence = {**base, "tag": tag, "policy": policy}
            if note:
                evidence["note"] = note
            yield self.finding(
                "DMARC_POLICY_NONE",
                Severity.WARN,
                f"the DMARC policy for {domain} is none ({tag}): failing mail is delivered "
                "as if DMARC were not there",
                evidence=evidence,
                reproduce=reproduce,
            )
        if record.pct is not None and record.pct < 100:
            yield self.finding(
                "DMARC_PCT_PARTIAL",
                Severity.WARN,
                f"pct={record.pct}: RFC 7489 receivers apply the policy to {record.pct}% "
                "of failing mail only",
                evidence={**base, "pct": str(record.pct)},
                reproduce=reproduce,
            )
        if record.t == "y":
            yield self.finding(
                "DMARC_TESTING_MODE",
                Severity.WARN,
                "t=y: the domain asks receivers not to apply its policy (testing mode)",
                evidence={**base, "t": "y"},
                reproduce=reproduce,
            )
        for obsolete in record.obsolete_tags:
            yield self.finding(
                "DMARC_OBSOLETE_TAG",
                Severity.INFO,
                f"tag {obsolete} was removed by RFC 9989 (RFC 7489 receivers still honour it)",
                evidence={**base, "tag": obsolete, "value": shorten(record.value(obsolete) or "")},
                reproduce=reproduce,
            )
        if record.unknown_tags:
            listed = ", ".join(shorten(t, 40) for t in record.unknown_tags[:MAX_LISTED])
            yield self.finding(
                "DMARC_UNKNOWN_TAG",
                Severity.INFO,
                f"DMARC record at {name} has tags RFC 9989 does not define (ignored): {listed}",
                evidence={**base, "tags": listed, "count": str(len(record.unknown_tags))},
                reproduce=reproduce,
            )
        if not record.rua:
            why = "rua is invalid" if record.has("rua") else "no rua tag"
            yield self.finding(
                "DMARC_NO_REPORTING",
                Severity.INFO,
                f"{why}: no aggregate reports are sent for {domain}",
                evidence={**base, "rua": shorten(record.value("rua") or "(absent)", 120)},
                reproduce=reproduce,
            )

    def _policy(
        self,
        domain: str,
        discovery: Discovery,
        base: Mapping[str, str],
        record: DmarcRecord,
        reproduce: str,
    ) -> Finding:
        """DMARC_POLICY: the state of the policy, whatever its judgement."""
        policy, tag, note = effective_policy(record, subdomain=discovery.inherited)
        evidence = {**base, **policy_evidence(record), "applies": f"{tag}={policy}"}
        if note:
            evidence["note"] = note
        where = f" (inherited from {discovery.source})" if discovery.inherited else ""
        return self.finding(
            "DMARC_POLICY",
            Severity.INFO,
            f"the DMARC policy for {domain} is {policy} ({tag}){where}",
            evidence=evidence,
            reproduce=reproduce,
            subject=domain,
        )

    def _external(
        self,
        dns: DnsClient,
        sites: DmarcTree,
        domain: str,
        policy_domain: str,
        record: DmarcRecord,
        pending: list[DnsAnswer],
    ) -> Iterator[Finding]:
        """RFC 9990 §4 / RFC 9991: report destinations in another Organizational Domain must
        authorize the policy domain at `<policy domain>._report._dmarc.<destination>`."""
        uris: dict[str, list[str]] = {}
        for tag, entries in (("rua", record.rua), ("ruf", record.ruf)):
            for uri in entries:
                if uri.host is None or uri.host == policy_domain:
                    continue
                if uri.host in uris or len(uris) < MAX_REPORT_HOSTS:
                    uris.setdefault(uri.host, []).append(f"{tag}={uri.text}")
        if not uris:
            return
        # Round two, all at once: both walks, and the authorization wherever the two names are
        # not in one tree (then they almost surely are two organizations).
        auth: dict[str, Future[DnsAnswer]] = {}
        for host in uris:
            sites.ask(walk_names(policy_domain) + walk_names(host))
            name = f"{policy_domain}._report._dmarc.{host}"
            if not _related(host, policy_domain) and check_name(name) is None:
                auth[host] = dns.submit(name, "TXT")
        for host, listed in uris.items():
            same, failed = sites.same_organization(policy_domain, host)
            if failed is not None:
                pending.append(failed)
                continue
            if same:
                continue
            name = f"{policy_domain}._report._dmarc.{host}"
            evidence = {
                "destination": host,
                "uris": shorten(", ".join(listed)),
                "policy_domain": policy_domain,
                "authorization_record": name,
                "organizational_domains": (
                    f"{sites.organizational_domain(policy_domain)[0]} / "
                    f"{sites.organizational_domain(host)[0]}"
                ),
            }
            problem = check_name(name)
            if problem is not None:
                evidence["problem"] = f"the authorization name is not a valid DNS name: {problem}"
                yield self._unauthorized(dns, host, name, evidence)
                continue
            answer = (auth[host] if host in auth else dns.submit(name, "TXT")).result()
            if not answer.ok:
                pending.append(answer)
                continue
            if not any(is_dmarc_record(text) for text in answer.texts()):
                evidence["answer"] = f"{answer.rcode}, {len(answer.records)} TXT records"
                yield self._unauthorized(dns, host, name, evidence)

    def _unauthorized(
        self, dns: DnsClient, host: str, name: str, evidence: Mapping[str, str]
    ) -> Finding:
        return self.finding(
            "DMARC_EXTERNAL_REPORT_UNAUTHORIZED",
            Severity.WARN,
            f"reports go to {host}, another organization, which does not authorize them "
            f"(no v=DMARC1 record at {name}): receivers drop these reports",
            evidence=evidence,
            reproduce=dns.dig(name, "TXT"),
            subject=host,
        )

    def _legacy(self, dns: DnsClient, legacy: list, pending: list[DnsAnswer]) -> Iterator[Finding]:
        for kind, name, test, why, future in legacy:
            answer: DnsAnswer = future.result()
            if not answer.ok:
                pending.append(answer)
                continue
            found = [text for text in answer.texts() if test(text)]
            if found:
                yield self.finding(
                    "LEGACY_POLICY_RECORD",
                    Severity.INFO,
                    f"{kind} record at {name} ({why}); DMARC replaces it and it can go",
                    evidence={"name": name, "kind": kind, "record": shorten(found[0])},
                    reproduce=dns.dig(name, "TXT"),
                    subject=name,
                )
        legacy.clear()  # each legacy record is reported once, whichever path ends the run


# --- helpers ----------------------------------------------------------------------------------


def _tag_state(record: DmarcRecord, tag: str, value: str | None, default: str) -> str:
    """A tag's effective value: as published, or the default it falls back to, or marked
    invalid (the parser keeps None for an invalid value)."""
    if value is not None:
        return value
    if record.has(tag):
        return f"invalid ({shorten(record.value(tag) or '', 40)!r})"
    return default


def policy_evidence(record: DmarcRecord) -> dict[str, str]:
    """The effective tags of a DMARC record (RFC 9989 §4.7 defaults spelled out), as
    deterministic evidence: report URIs sorted, values bounded."""
    p = _tag_state(record, "p", record.p, "none (absent)")
    sp = _tag_state(record, "sp", record.sp, f"{record.p or 'none'} (from p)")
    np_default = (
        f"{record.sp} (from sp)" if record.sp is not None else f"{record.p or 'none'} (from p)"
    )
    evidence = {
        "p": p,
        "sp": sp,
        "np": _tag_state(record, "np", record.np, np_default),
        "adkim": _tag_state(record, "adkim", record.adkim, "r (default)"),
        "aspf": _tag_state(record, "aspf", record.aspf, "r (default)"),
        "t": _tag_state(record, "t", record.t, "n (default)"),
    }
    for tag, uris in (("rua", record.rua), ("ruf", record.ruf)):
        listed = sorted(uri.text for uri in uris[:MAX_REPORT_HOSTS])
        more = f" (+{len(uris) - MAX_REPORT_HOSTS} more)" if len(uris) > MAX_REPORT_HOSTS else ""
        evidence[tag] = shorten(", ".join(listed) + more) if listed else "none"
    if record.pct is not None:
        evidence["pct"] = str(record.pct)
    return evidence


def _related(a: str, b: str) -> bool:
    """One name is the other or inside it."""
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _raise_first(pending: list[DnsAnswer]) -> None:
    if pending:
        pending[0].raise_for_failure()


__all__ = ["DnsDmarc"]

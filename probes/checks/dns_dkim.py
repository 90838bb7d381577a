"""dns.dkim: the DKIM key record of each selector, and local private keys matched against it.

Selectors: `target.selectors`, the selectors of `target.dkim_keys`, and with
`target.discover_selectors` a built-in list of commonly used names (a guessed selector
without a DKIM record is not a finding). Every `<selector>._domainkey.<domain>` TXT question
is asked at once; local key files are read while the answers come in.

Codes (CONTRACT.md): DKIM_KEY_MISSING, DKIM_KEY_SYNTAX_ERROR, DKIM_KEY_REVOKED,
DKIM_KEY_TOO_SHORT, DKIM_KEY_WEAK, DKIM_TESTING_MODE, DKIM_KEY_MISMATCH,
DKIM_PRIVATE_KEY_EXPOSED. Added here:
- DKIM_KEY_MULTIPLE_RECORDS [fail]: several TXT records at one selector (RFC 6376 §3.6.2.2:
  "TXT RRs MUST be unique for a particular selector name"; results are undefined). Each
  record is still judged on its own (evidence `record_index`).
- DKIM_KEY_UNUSABLE [fail]: well-formed but no verifier will accept a signature made with it:
  `h=` without sha256 (RFC 8301 forbids rsa-sha1) or `s=` without `email`/`*`.
- DKIM_KEY_TOO_LONG [warn]: RSA over 4096 bits (RFC 8301 §3.2: verifiers need not handle it).
- DKIM_KEY_OK [info]: a usable key with no warning (evidence: type, bits, fingerprint).
- DKIM_KEY_MATCHES [info]: a local private key matches the published key.
- DKIM_NO_SELECTOR_FOUND [info]: discovery found no key under any common selector.
- DKIM_KEY_AGE [info; warn/fail outside the operator's `dkim_key_age_warn`/`_crit` range]:
  the key's age in days where it can be known: from a date in the selector name
  (probes.parse.selector_date; `age_days` is volatile). No date, or a future one: no finding.

Failures: a selector whose lookup fails (SERVFAIL, timeout) gets no finding; the other
selectors are judged, then the first failure is raised (ERROR: could not fully test). A local
key file that cannot be read or parsed is a configuration problem: the findings are yielded,
then ProbeConfigError names the path and the reason (never key material).
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from probes.codes import Code, Fix, declare
from probes.dkim_key_file import LocalKey, read_local_key
from probes.errors import ProbeConfigError, ProbeSkipped
from probes.model import Finding, Severity, Target, Thresholds
from probes.names import InvalidDomain, normalize_selector
from probes.net import Net
from probes.net.dns import BADNAME, DnsAnswer, check_name, normalize_name
from probes.parse import dkim_key
from probes.parse.dkim_key import DkimKeyRecord, DkimKeySyntaxError
from probes.parse.nagios_range import parse_range
from probes.parse.selector_date import RULE as SELECTOR_DATE_RULE
from probes.parse.selector_date import selector_date
from probes.probe import BaseProbe

# Selector names in common use (mail hosting, ESPs, signing software defaults).
COMMON_SELECTORS = (
    "default",
    "selector1",
    "selector2",
    "google",
    "k1",
    "k2",
    "k3",
    "mail",
    "dkim",
    "dkim1",
    "dkim2",
    "s1",
    "s2",
    "s1024",
    "s2048",
    "smtp",
    "mx",
    "key1",
    "key2",
    "sig1",
    "selector",
    "email",
    "mail1",
    "mail2",
    "mandrill",
    "everlytic",
    "mailjet",
    "mxvault",
    "pm",
    "cm",
    "hs1",
    "hs2",
    "zendesk1",
    "zendesk2",
    "protonmail",
    "protonmail2",
    "protonmail3",
    "fm1",
    "fm2",
    "fm3",
    "zmail",
    "mailo",
    "krs",
    "smtpapi",
    "ed25519",
)

MAX_EVIDENCE_CHARS = 1000  # a 4096-bit RSA record is ~740 characters
# Asked next to the guessed selectors: a DKIM record here means a wildcard under _domainkey,
# and guessed selectors answering with that same record are not real selectors.
WILDCARD_LABEL = "mailprobe-wildcard-check"


@dataclass(frozen=True)
class _Selector:
    name: str
    qname: str
    discovered: bool


# The shapes the fixes below share: the key record, the public half of a private key, and
# a key rotation (new key under a new selector).
_KEY_RECORD = (
    "; a 2048-bit key is longer than 255 characters: split it into quoted strings\n"
    '<selector>._domainkey.<domain>. 3600 IN TXT ( "v=DKIM1; k=rsa; "\n'
    '    "p=<first part of the base64 public key>"\n'
    '    "<rest of the base64 public key>" )'
)
_PUBLIC_KEY = (
    "# the base64 for p= (the public half of the private key)\n"
    "openssl pkey -in <key-file> -pubout -outform DER | openssl base64 -A"
)
_NEW_KEY = Fix(
    "Rotate to a 2048-bit RSA key under a new selector (`<selector>` below; a dated name such "
    "as s20260101 lets mailprobe report the key's age): generate the key, publish its record, "
    "wait for the TTL to pass, switch the signer to the new selector, and keep the old record "
    "published for a few days before revoking it (empty `p=`). Check with "
    "`opendkim-testkey -d <domain> -s <selector> -vvv`, then send a message and read its "
    "DKIM-Signature `s=`.",
    {
        "opendkim": "# writes <selector>.private and <selector>.txt (the TXT record);\n"
        "# opendkim-genkey and opendkim-testkey are in Debian's opendkim-tools\n"
        "opendkim-genkey -b 2048 -s <selector> -d <domain> -D /etc/opendkim/keys/\n"
        "# key.table\n"
        "<selector>._domainkey.<domain> <domain>:<selector>:/etc/opendkim/keys/<selector>.private\n"
        "# signing.table\n"
        "*@<domain> <selector>._domainkey.<domain>\n"
        "# opendkim.conf\n"
        "KeyTable file:/etc/opendkim/key.table\n"
        "SigningTable refile:/etc/opendkim/signing.table",
        "exim": "# the remote_smtp transport\n"
        "dkim_domain = <domain>\n"
        "dkim_selector = <selector>\n"
        "dkim_private_key = /etc/exim4/dkim/<domain>.<selector>.key\n"
        "dkim_canon = relaxed",
        "openssl": "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out <key-file>\n"
        + _PUBLIC_KEY,
        "zone": _KEY_RECORD,
    },
)


class DnsDkim(BaseProbe):
    """The DKIM key record of each selector; local private keys matched against them."""

    id = "dns.dkim"
    description = (
        "DKIM key record per selector: syntax, revoked/testing keys, key type and size; "
        "local private keys matched against the published key"
    )
    codes = declare(
        Code("DKIM_KEY_OK", "a usable DKIM key is published at the selector", Severity.INFO),
        Code(
            "DKIM_KEY_MISSING",
            "no DKIM key record at the selector",
            Severity.FAIL,
            fix=Fix(
                "Publish the public half of the selector's signing key as a TXT record at "
                "`<selector>._domainkey.<domain>`: opendkim-genkey wrote it to "
                "`<selector>.txt`, or build it from the private key with openssl. If no signer "
                "uses this selector any more, stop checking it (drop it from --selector). "
                "Check with `dig +short TXT <selector>._domainkey.<domain>`.",
                {
                    "zone": _KEY_RECORD,
                    "openssl": _PUBLIC_KEY,
                    "opendkim": "opendkim-testkey -d <domain> -s <selector> -vvv",
                },
            ),
        ),
        Code(
            "DKIM_KEY_MULTIPLE_RECORDS",
            "several DKIM key records at one selector (RFC 6376 §3.6.2.2)",
            Severity.FAIL,
            fix=Fix(
                "Keep one TXT record at the selector name, the one with the key your signer "
                "uses, and delete the others: verifiers may pick any of them. To change keys, "
                "publish the new key under a new selector instead. Check with "
                "`dig +short TXT <selector>._domainkey.<domain>`: one record.",
                {"zone": _KEY_RECORD},
            ),
        ),
        Code(
            "DKIM_KEY_SYNTAX_ERROR",
            "the key record's tag list or a tag is invalid",
            Severity.FAIL,
            fix=Fix(
                "Rewrite the record as a tag list `tag=value; tag=value`: `v=DKIM1` (first, "
                "if present), `k=rsa` or `k=ed25519`, and `p=` the base64 public key, with "
                "nothing else inside the quoted strings. A long key is split into several "
                "quoted strings of one TXT record, not into several records. Check with "
                "`dig +short TXT <selector>._domainkey.<domain>`.",
                {"zone": _KEY_RECORD},
            ),
        ),
        Code(
            "DKIM_KEY_UNUSABLE",
            "a well-formed key no verifier accepts (h= without sha256, s= without email)",
            Severity.FAIL,
            fix=Fix(
                "Remove the `h=` tag (or make it `h=sha256`: RFC 8301 forbids rsa-sha1) and "
                "the `s=` tag (or make it `s=email`), then check with "
                "`dig +short TXT <selector>._domainkey.<domain>`.",
                {"zone": _KEY_RECORD},
            ),
        ),
        Code(
            "DKIM_KEY_REVOKED",
            "the key is revoked (empty p=)",
            Severity.WARN,
            fix=Fix(
                "An empty `p=` revokes the selector: signatures made with it fail. If the "
                "selector is retired, make sure no signer still uses it and stop checking it "
                "(drop it from --selector). If it is still in use, switch the signers to a "
                "selector with a published key, or publish the key again.",
                {
                    "exim": "dkim_selector = <selector>",
                    "opendkim": "# signing.table\n*@<domain> <selector>._domainkey.<domain>",
                    "zone": _KEY_RECORD,
                },
            ),
        ),
        Code(
            "DKIM_KEY_TOO_SHORT",
            "an RSA key under 1024 bits (RFC 8301)",
            Severity.FAIL,
            fix=_NEW_KEY,
        ),
        Code("DKIM_KEY_WEAK", "an RSA key of 1024-2047 bits", Severity.WARN, fix=_NEW_KEY),
        Code(
            "DKIM_KEY_TOO_LONG",
            "an RSA key over 4096 bits (verifiers need not handle it)",
            Severity.WARN,
            fix=_NEW_KEY,
        ),
        Code(
            "DKIM_TESTING_MODE",
            "the key is in testing mode (t=y)",
            Severity.WARN,
            fix=Fix(
                "Remove `t=y` from the key record once signing works: in testing mode "
                "verifiers may treat failed signatures as unsigned mail. Check with "
                "`dig +short TXT <selector>._domainkey.<domain>`.",
                {"zone": _KEY_RECORD},
            ),
        ),
        Code(
            "DKIM_KEY_MATCHES",
            "the local private key matches the published public key",
            Severity.INFO,
        ),
        Code(
            "DKIM_KEY_MISMATCH",
            "a local private key does not match the published public key",
            Severity.FAIL,
            fix=Fix(
                "The signer's private key and the published key differ, so every signature "
                "fails. Either publish the public half of the key the signer uses (openssl "
                "line, then the zone record), or point the signer at the private key whose "
                "public half is published. Check with "
                "`opendkim-testkey -d <domain> -s <selector> -k <key-file> -vvv`.",
                {
                    "openssl": _PUBLIC_KEY,
                    "zone": _KEY_RECORD,
                    "exim": "dkim_private_key = /etc/exim4/dkim/<domain>.<selector>.key",
                    "opendkim": "# key.table\n<selector>._domainkey.<domain> "
                    "<domain>:<selector>:/etc/opendkim/keys/<selector>.private",
                },
            ),
        ),
        Code(
            "DKIM_PRIVATE_KEY_EXPOSED",
            "a local private key file is group- or world-readable or writable",
            Severity.WARN,
            fix=Fix(
                "Make the key file readable by the signing service's user only: owned by that "
                "user, mode 0600 (or 0400). Anyone who can read it can sign mail as the "
                "domain: if others could read it, also rotate the key. Check with "
                "`stat -c '%a %U' <key-file>`.",
                {
                    "opendkim": "chown opendkim:opendkim <key-file>\nchmod 0600 <key-file>",
                    "exim": "chown Debian-exim:Debian-exim <key-file>  # the user Exim runs as\n"
                    "chmod 0600 <key-file>",
                },
            ),
        ),
        Code(
            "DKIM_NO_SELECTOR_FOUND",
            "selector discovery was the only source of selectors and found none",
            Severity.INFO,
        ),
        Code(
            "DKIM_KEY_AGE",
            "the key's age from a date in the selector name (warn/fail outside "
            "--dkim-key-age-warn/-crit)",
            Severity.INFO,
            fix=_NEW_KEY,
        ),
    )

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        domain = normalize_name(target.domain)
        selectors, bad = _selectors(target, domain)
        if not selectors and not bad:
            raise ProbeSkipped("no DKIM selector given (--selector or --discover-selectors)")
        discovering = any(s.discovered for s in selectors)
        # Every question at once (with discovery, plus one that tells a wildcard apart).
        futures = [net.dns.submit(s.qname, "TXT") for s in selectors]
        wildcard_future = (
            net.dns.submit(f"{WILDCARD_LABEL}._domainkey.{domain}", "TXT") if discovering else None
        )
        local_keys = {sel: read_local_key(path) for sel, path in _key_paths(target)}
        answers = [f.result() for f in futures]
        wildcard = _dkim_texts(wildcard_future.result()) if wildcard_future else None

        problems: list[Exception] = [ProbeConfigError(msg) for msg in bad]
        found_any = False
        for sel, answer in zip(selectors, answers, strict=True):
            local = local_keys.get(sel.name)
            if local is not None:
                yield from self._local_file(sel, local)
                if local.problem is not None:
                    problems.append(
                        ProbeConfigError(
                            f"DKIM key for selector {sel.name!r}: {local.path}: {local.problem}"
                        )
                    )
                    local = None
            if not answer.ok:
                if answer.rcode == BADNAME:
                    problems.append(
                        ProbeConfigError(f"selector {sel.name!r}: {sel.qname} is not a DNS name")
                    )
                else:
                    try:
                        answer.raise_for_failure()
                    except Exception as exc:  # DnsError / DnsTimeout, raised after the rest
                        problems.append(exc)
                continue
            texts = answer.texts()
            if sel.discovered:
                texts = [t for t in texts if dkim_key.looks_like_dkim(t)]
                if not texts or (wildcard and sorted(texts) == wildcard):
                    continue
            found_any = True
            yield from self._judge(sel, answer, texts, local, net)
            yield from self._age(sel, target.thresholds, net)

        if discovering and not found_any and not any(not s.discovered for s in selectors):
            if wildcard:
                detail = "every name under _domainkey answers (wildcard record)"
            else:
                detail = f"none of {len(selectors)} commonly used selectors has a key record"
            yield self._finding(
                "DKIM_NO_SELECTOR_FOUND",
                Severity.INFO,
                f"No DKIM key found by selector discovery: {detail}; give the selectors "
                "in use with --selector",
                {"selectors_tried": str(len(selectors)), "domain": domain},
                None,
                None,
            )
        if problems:
            raise problems[0]

    # --- one selector -----------------------------------------------------------------------

    def _judge(
        self,
        sel: _Selector,
        answer: DnsAnswer,
        texts: list[str],
        local: LocalKey | None,
        net: Net,
    ) -> Iterator[Finding]:
        dig = net.dns.dig(sel.qname, "TXT")
        base = {"selector": sel.name, "name": sel.qname}
        if answer.cnames:
            base["cname_chain"] = " -> ".join(answer.cnames)
        if sel.discovered:
            base["discovered"] = "yes"

        if not texts:
            yield self._finding(
                "DKIM_KEY_MISSING",
                Severity.FAIL,
                f"No DKIM key record at {sel.qname} ({answer.rcode}, no TXT record)",
                base | {"rcode": answer.rcode},
                dig,
                sel.name,
            )
            return
        if len(texts) > 1:
            yield self._finding(
                "DKIM_KEY_MULTIPLE_RECORDS",
                Severity.FAIL,
                f"{len(texts)} TXT records at {sel.qname}; a selector must have exactly one "
                "(RFC 6376 §3.6.2.2), verifiers pick one at random or fail",
                base | {"records": str(len(texts))},
                dig,
                sel.name,
            )
        published = []
        for index, text in enumerate(texts):
            evidence = base | {"record": _clip(text)}
            if len(texts) > 1:
                evidence["record_index"] = str(index)
            try:
                record = dkim_key.parse(text)
            except DkimKeySyntaxError as exc:
                yield self._finding(
                    "DKIM_KEY_SYNTAX_ERROR",
                    Severity.FAIL,
                    f"DKIM key record at {sel.qname} is invalid: {exc}",
                    evidence | {"tag": exc.tag or "(record)", "error": str(exc)},
                    dig,
                    sel.name,
                )
                continue
            published.append(record)
            yield from self._judge_record(sel, record, evidence, dig, local)
        if local is not None and any(r.public_key is not None for r in published):
            # (every record revoked: DKIM_KEY_REVOKED says it, at fail, naming the local key)
            yield from self._match(sel, local, published, base, dig)

    def _judge_record(
        self,
        sel: _Selector,
        record: DkimKeyRecord,
        evidence: dict[str, str],
        dig: str,
        local: LocalKey | None = None,
    ) -> Iterator[Finding]:
        bad = False
        key = record.public_key
        if record.testing:
            bad = True
            yield self._finding(
                "DKIM_TESTING_MODE",
                Severity.WARN,
                f"{sel.qname} has t=y (testing): verifiers treat its signatures as unsigned mail",
                evidence | _key_state(key) | {"t": record.tags.get("t", "")},
                dig,
                sel.name,
            )
        if key is None:
            message = f"{sel.qname} has an empty p= (key revoked): nothing signed with it verifies"
            severity = Severity.WARN
            if local is not None and local.public_key is not None:
                # one cause: a signer still has a key for a revoked selector (no second entry)
                severity = Severity.FAIL
                message += f", yet the private key {local.path} is configured for it"
                evidence = evidence | {"key_file": local.path}
            yield self._finding("DKIM_KEY_REVOKED", severity, message, evidence, dig, sel.name)
            return
        key_evidence = evidence | _key_state(key)
        unusable = []
        if not record.allows_sha256:
            unusable.append(f"h={record.tags.get('h', '')} excludes sha256 (RFC 8301)")
        if not record.for_email:
            unusable.append(f"s={record.tags.get('s', '')} excludes email")
        if unusable:
            bad = True
            yield self._finding(
                "DKIM_KEY_UNUSABLE",
                Severity.FAIL,
                f"{sel.qname}: no verifier accepts signatures with this key: "
                + "; ".join(unusable),
                key_evidence | {"reason": "; ".join(unusable)},
                dig,
                sel.name,
            )
        if key.key_type == "rsa":
            if key.bits < dkim_key.MIN_RSA_BITS:
                bad = True
                yield self._finding(
                    "DKIM_KEY_TOO_SHORT",
                    Severity.FAIL,
                    f"{sel.qname}: RSA key of {key.bits} bits; verifiers must reject keys "
                    f"under {dkim_key.MIN_RSA_BITS} bits (RFC 8301)",
                    key_evidence,
                    dig,
                    sel.name,
                )
            elif key.bits < dkim_key.GOOD_RSA_BITS:
                bad = True
                yield self._finding(
                    "DKIM_KEY_WEAK",
                    Severity.WARN,
                    f"{sel.qname}: RSA key of {key.bits} bits; use at least "
                    f"{dkim_key.GOOD_RSA_BITS} (RFC 8301)",
                    key_evidence,
                    dig,
                    sel.name,
                )
            elif key.bits > dkim_key.MAX_VERIFIED_RSA_BITS:
                bad = True
                yield self._finding(
                    "DKIM_KEY_TOO_LONG",
                    Severity.WARN,
                    f"{sel.qname}: RSA key of {key.bits} bits; verifiers need only handle up "
                    f"to {dkim_key.MAX_VERIFIED_RSA_BITS} (RFC 8301)",
                    key_evidence,
                    dig,
                    sel.name,
                )
        if not bad:
            yield self._finding(
                "DKIM_KEY_OK",
                Severity.INFO,
                f"{sel.qname}: {key.key_type.upper()} key, {key.bits} bits",
                key_evidence,
                dig,
                sel.name,
            )

    def _match(
        self,
        sel: _Selector,
        local: LocalKey,
        published: list[DkimKeyRecord],
        base: dict[str, str],
        dig: str,
    ) -> Iterator[Finding]:
        assert local.public_key is not None
        mine = local.public_key
        evidence = base | {
            "key_file": local.path,
            "local_key": f"{mine.key_type} {mine.bits} bits",
            "local_fingerprint": mine.fingerprint,
        }
        keys = [r.public_key for r in published if r.public_key is not None]
        if any(mine.same_key(k) for k in keys):
            yield self._finding(
                "DKIM_KEY_MATCHES",
                Severity.INFO,
                f"The private key in {local.path} matches the key published at {sel.qname}",
                evidence,
                dig,
                sel.name,
            )
            return
        if keys:
            published_text = ", ".join(f"{k.key_type} {k.bits} bits {k.fingerprint}" for k in keys)
        else:
            published_text = "revoked (empty p=)"
        yield self._finding(
            "DKIM_KEY_MISMATCH",
            Severity.FAIL,
            f"The private key in {local.path} does not match the key published at "
            f"{sel.qname}: mail signed with it fails DKIM",
            evidence | {"published": published_text},
            dig,
            sel.name,
        )

    def _local_file(self, sel: _Selector, local: LocalKey) -> Iterator[Finding]:
        if local.exposed:
            yield self._finding(
                "DKIM_PRIVATE_KEY_EXPOSED",
                Severity.WARN,
                f"DKIM private key file {local.path} (selector {sel.name}) is accessible to "
                f"other users ({local.exposed_to}); make it mode 0600 or 0400",
                {
                    "selector": sel.name,
                    "path": local.path,
                    "mode": local.mode_text,
                    "access": local.exposed_to,
                },
                f"stat -c '%a %U:%G' {shlex.quote(local.path)}",
                sel.name,
            )

    def _age(self, sel: _Selector, thresholds: Thresholds, net: Net) -> Iterator[Finding]:
        """DKIM_KEY_AGE where the selector's name carries a date (the only age one can know)."""
        found = selector_date(sel.name)
        today = dt.datetime.now(dt.UTC).date()
        if found is None or found[0] > today:
            return
        made, text = found
        age = (today - made).days
        evidence = {
            "selector": sel.name,
            "key_date": made.isoformat(),
            "read_from": text,
            "rule": SELECTOR_DATE_RULE,
            "age_days": str(age),
        }
        severity = Severity.INFO
        for name, over in (("warn", Severity.WARN), ("crit", Severity.FAIL)):
            limit = getattr(thresholds, f"dkim_key_age_{name}")
            if limit:  # the operator's range (probes.validate checked it)
                evidence[f"{name}_range"] = limit
                if parse_range(limit).alerts(age):
                    severity = over
        yield self.finding(
            "DKIM_KEY_AGE",
            severity,
            f"{sel.qname}: the selector name dates the key {made.isoformat()}, {age} day(s) ago",
            evidence=evidence,
            reproduce=net.dns.dig(sel.qname, "TXT"),
            subject=sel.name,
            volatile=("age_days",),
        )

    def _finding(
        self,
        code: str,
        severity: Severity,
        message: str,
        evidence: dict[str, str],
        reproduce: str | None,
        subject: str | None,
    ) -> Finding:
        return self.finding(
            code, severity, message, evidence=evidence, reproduce=reproduce, subject=subject
        )


# --- helpers ---------------------------------------------------------------------------------


def _selectors(target: Target, domain: str) -> tuple[list[_Selector], list[str]]:
    """The selectors to ask (given ones first, in order, then discovered) and bad names."""
    out: list[_Selector] = []
    bad: list[str] = []
    seen: set[str] = set()
    given = [*target.selectors, *(sel for sel, _ in target.dkim_keys)]
    for raw in given:
        try:
            name = normalize_selector(raw)
        except InvalidDomain as exc:
            bad.append(f"selector {raw!r}: not a valid DNS name ({exc})")
            continue
        if name in seen:
            continue
        seen.add(name)
        qname = f"{name}._domainkey.{domain}"
        problem = check_name(qname)
        if problem is not None:
            bad.append(f"selector {raw!r}: not a valid DNS name ({problem})")
            continue
        out.append(_Selector(name, qname, discovered=False))
    if target.discover_selectors:
        for name in COMMON_SELECTORS:
            if name not in seen:
                seen.add(name)
                out.append(_Selector(name, f"{name}._domainkey.{domain}", discovered=True))
    return out, bad


def _key_paths(target: Target) -> list[tuple[str, str]]:
    """(selector, path) of the local keys, one per selector (the first one given wins)."""
    out: dict[str, str] = {}
    for sel, path in target.dkim_keys:
        out.setdefault(normalize_name(sel), path)
    return list(out.items())


def _dkim_texts(answer: DnsAnswer) -> list[str] | None:
    """The DKIM-looking records of a wildcard check, sorted; None when there are none."""
    if not answer.ok:
        return None
    texts = sorted(t for t in answer.texts() if dkim_key.looks_like_dkim(t))
    return texts or None


def _key_state(key: dkim_key.PublicKey | None) -> dict[str, str]:
    """The published key as evidence (type, bits, fingerprint: the key's state, not the key)."""
    if key is None:
        return {}
    return {
        "key_type": key.key_type,
        "bits": str(key.bits),
        "encoding": key.encoding,
        "fingerprint": key.fingerprint,
    }


def _clip(text: str) -> str:
    if len(text) <= MAX_EVIDENCE_CHARS:
        return text
    return text[: MAX_EVIDENCE_CHARS - 1] + f"… ({len(text)} characters)"


__all__ = ["COMMON_SELECTORS", "DnsDkim"]

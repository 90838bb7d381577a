"""The harness's own verdicts on a received message: DKIM, SPF and DMARC, DNS through net.dns.

DKIM (`verify_dkim`): every DKIM-Signature of the message (the first MAX_SIGNATURES) is
verified with dkimpy. The key records are asked through the door first, all at once, and
judged here; dkimpy then gets a normalised copy of a key already known to be usable (its own
DNS code is never used, and its "False for any key problem" answer cannot hide why). Results
(the RFC 8601 words):
- pass: the signature verifies.
- fail: it does not (the body hash or the b= signature), or the RSA key is under 1024 bits
  (RFC 8301 §3.2: never valid, whatever the cryptography says).
- policy: an rsa-sha1 signature that verifies (RFC 8301 §3.1: not to be accepted).
- permerror: the signature cannot be evaluated: malformed or missing tags, From not signed,
  expired or future-dated (dkimpy allows 10 h of clock skew), d=/s= not a DNS name, no key
  record (NXDOMAIN or no DKIM TXT), a key record that does not parse, a revoked key (empty
  p=), a key not for email (s=), a key whose h= excludes the hash, whose k= does not match
  a=, or with t=s and an i= in a subdomain of d=; a header section dkimpy cannot parse.
- temperror: the key lookup failed (SERVFAIL, timeout, ...).
- neutral is never given (the field allows it for symmetry with RFC 8601).
A key with t=y (testing) is evaluated as usual; the verdict says so (`testing`, `reason`).
No DKIM-Signature at all gives an empty list (the caller reports dkim=none).

SPF (`verify_spf`): RFC 7208 check_host() through probes.lookup.spf (pyspf via the door),
for the MAIL FROM domain or, with the null sender, the HELO name.

DMARC (probes.lookup.dmarc's `dmarc_policy` and `org_domain_via_dns`, then
probes.mail.alignment.dmarc_outcome): the RFC 9989 DNS Tree Walk, the same discovery dns.dmarc
uses, every `_dmarc` name of a walk asked at once. A failed lookup that could change the answer
raises DnsError (or DnsTimeout) from these two; `verify_message` turns it into a DMARC result
"temperror".

`verify_message` puts the three together. Its DMARC result is "permerror" when the message
does not have exactly one From header field holding exactly one address with a valid domain
(RFC 9989 §4.4 leaves such messages to local policy; mailprobe cannot evaluate them) and
"temperror" when policy discovery or an Organizational Domain could not be had from DNS.
"""

from __future__ import annotations

import base64
import email.utils
import re
from dataclasses import dataclass

import dkim
import dkim.util
import spf
from cryptography.hazmat.primitives import serialization

from probes.errors import DnsError
from probes.lookup.dmarc import DmarcTree, dmarc_policy, org_domain_via_dns
from probes.lookup.spf import evaluate
from probes.mail.alignment import DmarcOutcome, dmarc_outcome
from probes.net import Net
from probes.net.dns import BADNAME, NOERROR, DnsAnswer, check_name
from probes.parse.dkim_key import DkimKeyRecord, DkimKeySyntaxError, looks_like_dkim
from probes.parse.dkim_key import parse as parse_key
from probes.parse.dmarc import domain_name, walk_names
from probes.parse.message_header import header_fields

MAX_SIGNATURES = 10  # DKIM-Signature fields verified per message; the rest are ignored
MIN_RSA_BITS = 1024  # RFC 8301 §3.2
_REASON_LIMIT = 200

PASS, FAIL, NEUTRAL, POLICY = "pass", "fail", "neutral", "policy"
TEMPERROR, PERMERROR = "temperror", "permerror"


@dataclass(frozen=True)
class DkimVerdict:
    """One DKIM-Signature's result. `domain`/`selector` are d=/s= ("" when unreadable);
    `algorithm` is a= (None when unreadable); `reason` says why for anything but a plain
    pass (and notes t=y); `testing` is the key's t=y; `key_bits` the key size once known."""

    domain: str
    selector: str
    result: str  # pass | fail | neutral | temperror | permerror | policy
    reason: str | None
    algorithm: str | None
    testing: bool = False
    key_bits: int | None = None

    @property
    def passed(self) -> bool:
        return self.result == PASS


@dataclass(frozen=True)
class SpfResult:
    """check_host() for the client IP: `result` (pass, fail, softfail, neutral, none,
    permerror, temperror), `domain` checked, `reason` (the deciding term or pyspf's
    explanation), `identity` "mailfrom" or "helo" (null sender)."""

    result: str
    domain: str
    reason: str | None
    identity: str = "mailfrom"
    mechanism: str | None = None


@dataclass(frozen=True)
class OwnVerdicts:
    """The harness's verdicts on one message. `spf` is None when the client IP is unknown;
    `header_from_domain` is "" when the message has no single From domain (DMARC permerror)."""

    dkim: list[DkimVerdict]
    spf: SpfResult | None
    dmarc: DmarcOutcome
    header_from_domain: str

    @property
    def dkim_result(self) -> str:
        """One word for the message: "none" without signatures, "pass" when any passed,
        else the first signature's result."""
        if not self.dkim:
            return "none"
        if any(v.passed for v in self.dkim):
            return PASS
        return self.dkim[0].result

    def aligned_evidence(self) -> dict[str, str]:
        """Which identifiers align with the header From domain (RFC 9989), as evidence:
        `dkim_aligned` the d= of the passing, aligned signatures ("none"), `spf_aligned`
        "yes" when SPF passed for an aligned domain, else "no"."""
        return {
            "dkim_aligned": " ".join(self.dmarc.dkim_aligned) or "none",
            "spf_aligned": "yes" if self.dmarc.spf_aligned else "no",
        }


# --- DKIM ---------------------------------------------------------------------------------------


@dataclass
class _Signature:
    index: int
    domain: str = ""
    selector: str = ""
    algorithm: str | None = None
    tags: dict[bytes, bytes] | None = None
    key_name: str | None = None
    verdict: DkimVerdict | None = None  # decided before the key lookup

    def done(self, result: str, reason: str | None, **kw) -> DkimVerdict:
        return DkimVerdict(self.domain, self.selector, result, _clip(reason), self.algorithm, **kw)


def verify_dkim(raw: bytes, net: Net) -> list[DkimVerdict]:
    """Verify every DKIM-Signature of `raw` (see the module docstring). Never raises for the
    message's content or for DNS failures."""
    values = [v for n, v in header_fields(raw) if n.lower() == "dkim-signature"]
    if not values:
        return []
    try:
        verifier = dkim.DKIM(raw, minkey=0)
    except (dkim.DKIMException, IndexError, ValueError):
        return [
            DkimVerdict("", "", PERMERROR, "the header section cannot be parsed", None)
            for _ in values[:MAX_SIGNATURES]
        ]
    raw_values = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"]
    sigs = [_read_signature(i, value) for i, value in enumerate(raw_values[:MAX_SIGNATURES])]
    names = sorted({s.key_name for s in sigs if s.verdict is None and s.key_name})
    answers = dict(zip(names, net.dns.query_many((n, "TXT") for n in names), strict=True))
    verdicts = []
    for sig in sigs:
        if sig.verdict is not None:
            verdicts.append(sig.verdict)
            continue
        assert sig.key_name is not None
        verdicts.append(_verify_one(verifier, sig, answers[sig.key_name]))
    return verdicts


def _read_signature(index: int, value: bytes) -> _Signature:
    sig = _Signature(index)
    try:
        tags = dkim.util.parse_tag_value(value)
    except dkim.util.InvalidTagValueList as exc:
        sig.verdict = sig.done(PERMERROR, f"malformed tag list ({type(exc).__name__})")
        return sig
    sig.tags = tags
    sig.domain = _text(tags.get(b"d", b"")).lower()
    sig.selector = _text(tags.get(b"s", b""))
    sig.algorithm = _text(tags[b"a"]).lower() if b"a" in tags else None
    try:
        dkim.validate_signature_fields(tags)
    except dkim.ValidationError as exc:
        sig.verdict = sig.done(PERMERROR, _text_of(exc))
        return sig
    except (IndexError, KeyError, ValueError, TypeError) as exc:
        sig.verdict = sig.done(PERMERROR, f"malformed signature ({type(exc).__name__})")
        return sig
    signed = [h.lower() for h in re.split(rb"\s*:\s*", tags[b"h"].strip())]
    if b"from" not in signed:
        sig.verdict = sig.done(PERMERROR, "h= does not include From (RFC 6376 §5.4)")
        return sig
    d, s = domain_name(sig.domain), domain_name(sig.selector)
    name = f"{s}._domainkey.{d}" if d and s else None
    if name is None or check_name(name) is not None:
        sig.verdict = sig.done(PERMERROR, "d= or s= is not a DNS name")
        return sig
    sig.key_name = name
    return sig


def _verify_one(verifier: dkim.DKIM, sig: _Signature, answer: DnsAnswer) -> DkimVerdict:
    name = sig.key_name
    if not answer.ok and answer.rcode != BADNAME:
        detail = f" ({answer.detail})" if answer.detail else ""
        return sig.done(TEMPERROR, f"key lookup TXT {name}: {answer.rcode}{detail}")
    texts = [t for t in answer.texts() if looks_like_dkim(t)] if answer.ok else []
    if not texts:
        what = "no DKIM key record" if answer.rcode == NOERROR else answer.rcode
        return sig.done(PERMERROR, f"no key at {name} ({what})")
    record: DkimKeyRecord | None = None
    problem = ""
    for text in texts:
        try:
            record = parse_key(text)
            break
        except DkimKeySyntaxError as exc:
            problem = problem or str(exc)
    if record is None:
        return sig.done(PERMERROR, f"the key record at {name} is unusable: {problem}")
    testing = record.testing
    note = "; key in testing mode (t=y)" if testing else ""
    bits = record.public_key.bits if record.public_key is not None else None
    kw = {"testing": testing, "key_bits": bits}
    tags = sig.tags or {}
    algorithm = sig.algorithm or ""
    key_type, _, hash_name = algorithm.partition("-")
    if record.public_key is None:
        return sig.done(PERMERROR, f"the key at {name} is revoked (empty p=){note}", **kw)
    if not record.for_email:
        return sig.done(PERMERROR, f"the key at {name} is not for email (s=){note}", **kw)
    if record.hash_algs is not None and hash_name not in record.hash_algs:
        return sig.done(PERMERROR, f"the key's h= does not allow {hash_name}{note}", **kw)
    if record.key_type != key_type:
        return sig.done(
            PERMERROR, f"the key is k={record.key_type}, the signature a={algorithm}{note}", **kw
        )
    if record.strict and b"i" in tags:
        i_domain = _text(tags[b"i"]).rpartition("@")[2].lower()
        if i_domain != sig.domain:
            return sig.done(PERMERROR, f"key t=s but i= is in a subdomain of d={note}", **kw)

    normalized = b"v=DKIM1; k=" + record.key_type.encode() + b"; p=" + _p_value(record)
    try:
        good = verifier.verify(idx=sig.index, dnsfunc=lambda _name, timeout=5: normalized)
    except dkim.ValidationError:
        # Every tag was checked before and the key has no s=tlsrpt: what is left is the body.
        return sig.done(FAIL, f"body hash mismatch{note}", **kw)
    except dkim.DKIMException as exc:
        return sig.done(PERMERROR, f"{type(exc).__name__}: {_text_of(exc)}{note}", **kw)
    except Exception as exc:  # a dkimpy bug on hostile input must not end the run
        return sig.done(PERMERROR, f"dkimpy could not verify it ({type(exc).__name__}){note}", **kw)

    if record.key_type == "rsa" and bits is not None and bits < MIN_RSA_BITS:
        how = "the signature itself verifies" if good else "and the signature does not verify"
        return sig.done(
            FAIL,
            f"RSA key of {bits} bits: under {MIN_RSA_BITS} is never valid (RFC 8301); {how}{note}",
            **kw,
        )
    if not good:
        return sig.done(FAIL, f"signature (b=) does not verify{note}", **kw)
    if algorithm == "rsa-sha1":
        return sig.done(POLICY, f"rsa-sha1 is not acceptable (RFC 8301){note}", **kw)
    return sig.done(PASS, note[2:] or None, **kw)


def _p_value(record: DkimKeyRecord) -> bytes:
    public = record.public_key
    assert public is not None
    if public.key_type == "ed25519":
        data = public.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        data = public.spki
    return base64.b64encode(data)


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _text_of(exc: BaseException) -> str:
    return str(exc).replace("b'", "'")


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= _REASON_LIMIT:
        return text
    return text[: _REASON_LIMIT - 1] + "…"


# --- SPF ----------------------------------------------------------------------------------------


def verify_spf(ip: str, mail_from: str, helo: str, net: Net) -> SpfResult:
    """check_host() for `ip`, the MAIL FROM address (""/"<>": the null sender, then the HELO
    identity) and `helo`. Raises ValueError when `ip` is not an IP address."""
    sender = mail_from.strip()
    if sender.startswith("<") and sender.endswith(">"):
        sender = sender[1:-1].strip()
    verdict = evaluate(net.dns, ip, sender, helo)
    identity = "mailfrom" if sender else "helo"
    domain = spf.split_email(sender, helo)[1] if sender else helo
    reason = verdict.explanation or None
    if verdict.mechanism:
        reason = f"{verdict.mechanism}: {reason}" if reason else verdict.mechanism
    if verdict.failure is not None:
        reason = f"{verdict.failure.rdtype} {verdict.failure.name}: {verdict.failure.rcode}"
    return SpfResult(
        verdict.result,
        domain.strip().rstrip(".").lower(),
        _clip(reason),
        identity,
        verdict.mechanism,
    )


# --- the message --------------------------------------------------------------------------------


def header_from_domain(raw: bytes) -> tuple[str | None, str | None]:
    """(domain, None) of the message's single From address, or (None, why not)."""
    values = [v for n, v in header_fields(raw) if n.lower() == "from"]
    if len(values) != 1:
        return None, f"the message has {len(values)} From header fields (DMARC needs one)"
    addresses = [a for _, a in email.utils.getaddresses(values) if a]
    if len(addresses) != 1:
        return None, f"the From header field holds {len(addresses)} addresses (DMARC needs one)"
    local, at, domain = addresses[0].rpartition("@")
    name = domain_name(domain) if at and local else None
    if name is None:
        return None, "the From address has no valid domain"
    return name, None


def verify_message(
    raw: bytes, *, client_ip: str | None, mail_from: str, helo: str, net: Net
) -> OwnVerdicts:
    """DKIM, SPF (when `client_ip` is known) and DMARC for a received message. Never raises
    for DNS trouble or the message's content; ValueError when `client_ip` is not an IP."""
    from_domain, problem = header_from_domain(raw)
    if from_domain is not None:  # in flight while DKIM and SPF are worked out
        DmarcTree(net.dns).ask(walk_names(from_domain))
    dkim_verdicts = verify_dkim(raw, net)
    spf_result = verify_spf(client_ip, mail_from, helo, net) if client_ip else None
    if from_domain is None:
        dmarc = DmarcOutcome(PERMERROR, None, None, "r", "r", "", (), False, problem or "")
    else:
        try:
            record, policy_domain = dmarc_policy(from_domain, net.dns)
            dmarc = dmarc_outcome(
                header_from_domain=from_domain,
                dkim_passes=[v.domain for v in dkim_verdicts if v.passed],
                spf_result=spf_result.result if spf_result else "none",
                spf_domain=spf_result.domain if spf_result else "",
                record=record,
                policy_domain=policy_domain,
                org_domain=org_domain_via_dns(net.dns),
            )
        except DnsError as exc:
            dmarc = DmarcOutcome(
                TEMPERROR, None, None, "r", "r", "", (), False, f"DMARC lookup failed: {exc}"
            )
    return OwnVerdicts(dkim_verdicts, spf_result, dmarc, from_domain or "")


__all__ = [
    "MAX_SIGNATURES",
    "DkimVerdict",
    "OwnVerdicts",
    "SpfResult",
    "header_from_domain",
    "verify_dkim",
    "verify_message",
    "verify_spf",
]

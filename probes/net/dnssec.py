"""DNSSEC validation of the door's answers against trust anchors (RFC 4033-4035, RFC 5155).

Every question goes through the run's `DnsClient` (probes.net.dns): the DNSKEY and DS answers
a chain of trust needs are cached and counted like any other, so two probes validating the
same name cost one set of queries. The door asks with DO (RRSIGs and denial proofs in the
reply) and CD (a validating resolver hands over bogus data instead of SERVFAIL), and keeps
the reply's rrsets in `DnsAnswer.signed`.

A `Verdict` per (name, type):
- **secure**: every rrset of the answer (or, for a negative answer, its SOA and NSEC/NSEC3) is
  signed by a zone whose DNSKEY set is validated down from a trust anchor: the anchor's zone's
  DNSKEY by the anchor's DS or DNSKEY, each child's DNSKEY by its DS, each DS by the parent's
  keys.
- **insecure**: no trust anchor covers the name, or a validated denial proves there is no DS
  for a delegation above it (an unsigned zone).
- **bogus**: anything in a signed chain that does not hold: a signature expired or not yet
  valid, a DNSKEY missing, a DS no DNSKEY matches, an RRSIG missing, a signature that does not
  verify. The reason says which.
- **indeterminate**: the question itself failed (SERVFAIL, timeout) or the backend keeps no
  DNSSEC data (StaticBackend).

Limits (documented in docs/dns.md): a negative answer is secure when its SOA and NSEC/NSEC3
rrsets verify; the covering arithmetic of NSEC/NSEC3 is not checked. Wildcard expansion proofs
are not checked either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dns.dnssec
import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset

from probes.net.dns import DNSSEC_TYPES, DnsAnswer, DnsClient, normalize_name
from probes.parse.trust_anchor import TrustAnchors

SECURE = "secure"
INSECURE = "insecure"
BOGUS = "bogus"
INDETERMINATE = "indeterminate"

NO_DNSSEC_DATA = "the DNS backend keeps no DNSSEC data"

_RRSIG = dns.rdatatype.RRSIG
_DENIAL = (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)


@dataclass(frozen=True)
class Verdict:
    """What validation says of one answer (or of one zone's keys)."""

    state: str  # SECURE | INSECURE | BOGUS | INDETERMINATE
    zone: str  # the zone judged: the signer, the unsigned delegation, or the failing zone
    reason: str = ""
    # INDETERMINATE because the resolver REFUSED a question of the chain (it does not serve
    # the anchor's zone, e.g. an authoritative-only server with the IANA root anchor).
    refused: bool = False
    # INDETERMINATE because no trust anchor given covers the name (a --trust-anchor for another
    # zone): not a fault of the zone, which may well be signed.
    unanchored: bool = False

    @property
    def secure(self) -> bool:
        return self.state == SECURE


def parent_of(name: str) -> str:
    if name == ".":
        return "."
    _, _, rest = name.partition(".")
    return rest or "."


def _under(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


def _dname(text: str) -> dns.name.Name:
    return dns.name.root if text == "." else dns.name.from_text(text)


def _text(name: dns.name.Name) -> str:
    return normalize_name(name.to_text())


class Validator:
    """Validates answers of one `DnsClient` against `anchors`. Thread-safe; verdicts and zone
    keys are remembered for the run (the DNS answers themselves live in the door's cache)."""

    def __init__(
        self,
        client: DnsClient,
        anchors: TrustAnchors,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.anchors = anchors
        self.now = now
        self._lock = threading.Lock()
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        self._keys: dict[str, tuple[Verdict, Any]] = {}
        self._busy = threading.local()  # zones whose keys this thread is validating

    # --- answers ----------------------------------------------------------------------------

    def check(self, name: str, rdtype: str) -> Verdict:
        """The verdict on the door's answer to (name, rdtype)."""
        key = (normalize_name(name), rdtype.upper())
        with self._lock:
            known = self._verdicts.get(key)
        if known is not None:
            return known
        try:
            verdict = self._check(*key)
        except (dns.exception.DNSException, ValueError, TypeError, KeyError) as exc:
            verdict = Verdict(BOGUS, key[0], f"unusable DNSSEC data: {type(exc).__name__}: {exc}")
        with self._lock:
            self._verdicts.setdefault(key, verdict)
        return verdict

    def _check(self, name: str, rdtype: str) -> Verdict:
        if rdtype not in DNSSEC_TYPES:
            return Verdict(INDETERMINATE, name, f"{rdtype} is not asked with DNSSEC (DO)")
        answer = self.client.query(name, rdtype)
        if not answer.ok:
            return _failed(name, rdtype, answer)
        if answer.signed is None:
            return Verdict(INDETERMINATE, name, NO_DNSSEC_DATA)
        anchor = self.anchors.closest(name)
        if anchor is None:
            return _unanchored(name, self.anchors)
        section = answer.signed.answer if answer.records else answer.signed.authority
        rrsets = [r for r in section if r.rdtype != _RRSIG]
        sigs = {(r.name, r.covers): r for r in section if r.rdtype == _RRSIG}
        if not sigs or not rrsets:
            return self._unsigned(name, rdtype, anchor)
        signer = ""
        for rrset in rrsets:
            sig = sigs.get((rrset.name, rrset.rdtype))
            what = f"{dns.rdatatype.to_text(rrset.rdtype)} {_text(rrset.name)}"
            if sig is None:
                return Verdict(BOGUS, name, f"no RRSIG over {what} in a signed answer")
            signer = _text(sig[0].signer)
            if not _under(_text(rrset.name), signer):
                return Verdict(BOGUS, signer, f"{what} signed by {signer}, not an ancestor")
            if rdtype == "DS" and signer == name:
                # The DS must come from the parent; the child's own answer means the resolver
                # does not serve the parent zone (an authoritative server for the child only).
                return Verdict(
                    INDETERMINATE,
                    name,
                    f"DS {name} answered by {name} itself: the resolver does not serve its "
                    "parent zone (give --trust-anchor for a zone it serves)",
                    refused=True,
                )
            keys_verdict, keys = self.zone_keys(signer)
            if not keys_verdict.secure:
                return keys_verdict
            problem = self._verify(rrset, sig, signer, keys)
            if problem is not None:
                return Verdict(BOGUS, signer, f"{what}: {problem}")
        if not answer.records and not any(r.rdtype in _DENIAL for r in rrsets):
            return Verdict(BOGUS, signer, f"no NSEC/NSEC3 proof that {rdtype} {name} is absent")
        return Verdict(SECURE, signer, f"signed by {signer}")

    def _unsigned(self, name: str, rdtype: str, anchor: str) -> Verdict:
        """An answer without signatures: secure only if an unsigned delegation is proven above
        it (then insecure); otherwise it is bogus."""
        keys_verdict, _ = self.zone_keys(anchor)
        if not keys_verdict.secure:
            return keys_verdict
        # A DS answer lives in the parent zone: the walk stops above the name.
        last = parent_of(name) if rdtype == "DS" else name
        zone = anchor
        for cand in _between(anchor, last):
            ds = self.client.query(cand, "DS")
            if not ds.ok:
                return _failed(cand, "DS", ds)
            if ds.records:
                cut_verdict, _ = self.zone_keys(cand)
                if not cut_verdict.secure:
                    return cut_verdict
                zone = cand
                continue
            denial = self.check(cand, "DS")
            if not denial.secure:
                return denial
            if _is_delegation(ds, cand):
                return Verdict(
                    INSECURE, cand, f"{cand} is delegated without DS (proven by {denial.zone})"
                )
        return Verdict(BOGUS, zone, f"{rdtype} {name} carries no RRSIG in the signed zone {zone}")

    # --- zone keys --------------------------------------------------------------------------

    def zone_keys(self, zone: str) -> tuple[Verdict, Any]:
        """(verdict, the zone's validated DNSKEY rrset or None)."""
        with self._lock:
            known = self._keys.get(zone)
        if known is not None:
            return known
        busy = self._busy.__dict__.setdefault("zones", set())
        if zone in busy:  # a chain that comes back to a zone it is validating
            return Verdict(BOGUS, zone, f"the chain of trust loops at {zone}"), None
        busy.add(zone)
        try:
            result = self._zone_keys(zone)
        except (dns.exception.DNSException, ValueError, TypeError, KeyError) as exc:
            result = (Verdict(BOGUS, zone, f"unusable DNSKEY/DS data: {exc}"), None)
        finally:
            busy.discard(zone)
        with self._lock:
            self._keys.setdefault(zone, result)
        return result

    def _zone_keys(self, zone: str) -> tuple[Verdict, Any]:
        anchor = self.anchors.closest(zone)
        if anchor is None:
            return _unanchored(zone, self.anchors), None
        # The DNSKEY question goes out now, in the same round as the DS (and the parent's
        # keys): one round trip per zone of the chain, not two.
        self.client.submit(zone, "DNSKEY")
        if zone == anchor:
            ds_rdatas = [rd for r in self.anchors.for_zone(zone) if r.rdtype == 43 for rd in r]
            anchor_keys = [rd for r in self.anchors.for_zone(zone) if r.rdtype != 43 for rd in r]
            where = f"the trust anchor ({self.anchors.source})"
        else:
            ds_verdict = self.check(zone, "DS")
            if ds_verdict.state != SECURE:
                return ds_verdict, None
            ds = self.client.query(zone, "DS")
            if not ds.records:
                return Verdict(INSECURE, zone, f"no DS for {zone} at its parent"), None
            ds_rdatas = [rd for r in _rrsets(ds, dns.rdatatype.DS) for rd in r]
            anchor_keys = []
            where = f"the DS at {parent_of(zone)}"
        dnskey = self.client.query(zone, "DNSKEY")
        if not dnskey.ok:
            return _failed(zone, "DNSKEY", dnskey), None
        if dnskey.signed is None:
            return Verdict(INDETERMINATE, zone, NO_DNSSEC_DATA), None
        keysets = _rrsets(dnskey, dns.rdatatype.DNSKEY)
        if not keysets:
            return Verdict(BOGUS, zone, f"missing DNSKEY: {zone} publishes none ({where})"), None
        keyset = keysets[0]
        origin = _dname(zone)
        trusted = [k for k in keyset if any(_same_key(k, a) for a in anchor_keys)]
        for key in keyset:
            for ds_rd in ds_rdatas:
                if key in trusted or ds_rd.key_tag != dns.dnssec.key_id(key):
                    continue
                try:
                    made = dns.dnssec.make_ds(origin, key, ds_rd.digest_type)
                except (dns.dnssec.UnsupportedAlgorithm, ValueError):
                    continue
                if made == ds_rd:
                    trusted.append(key)
        if not trusted:
            tags = sorted(
                {rd.key_tag for rd in ds_rdatas} | {dns.dnssec.key_id(a) for a in anchor_keys}
            )
            have = sorted(dns.dnssec.key_id(k) for k in keyset)
            return (
                Verdict(
                    BOGUS,
                    zone,
                    f"DS mismatch: no DNSKEY of {zone} (key tags {have}) matches {where} "
                    f"(key tags {tags})",
                ),
                None,
            )
        sigs = [s for s in _rrsets(dnskey, _RRSIG) if s.covers == dns.rdatatype.DNSKEY]
        if not sigs:
            return Verdict(BOGUS, zone, f"the DNSKEY set of {zone} is not signed"), None
        trusted_set = dns.rrset.from_rdata_list(keyset.name, keyset.ttl, trusted)
        problem = self._verify(keyset, sigs[0], zone, trusted_set)
        if problem is not None:
            return Verdict(BOGUS, zone, f"DNSKEY {zone}: {problem}"), None
        return Verdict(SECURE, zone, f"DNSKEY validated by {where}"), keyset

    # --- signatures -------------------------------------------------------------------------

    def _verify(self, rrset: Any, sigs: Any, zone: str, keys: Any) -> str | None:
        """None when one of `sigs` verifies `rrset` with `keys`, else why not."""
        now = self.now()
        origin = _dname(zone)
        try:
            dns.dnssec.validate(rrset, sigs, {origin: keys}, now=now)
            return None
        except dns.dnssec.ValidationFailure:
            pass
        tags = {dns.dnssec.key_id(k) for k in keys}
        reasons = []
        for sig in sigs:
            if sig.expiration < now:
                reasons.append(f"signature expired {_when(sig.expiration)} (key tag {sig.key_tag})")
            elif sig.inception > now:
                reasons.append(f"signature not valid before {_when(sig.inception)}")
            elif sig.key_tag not in tags:
                reasons.append(f"no DNSKEY with key tag {sig.key_tag} in {zone}")
            else:
                reasons.append(f"signature by key tag {sig.key_tag} does not verify")
        return "; ".join(reasons) or "no signature"


def _failed(name: str, rdtype: str, answer: DnsAnswer) -> Verdict:
    """A chain question that failed: indeterminate (refused: the resolver does not serve it)."""
    refused = answer.rcode == "REFUSED"
    reason = f"{rdtype} {name}: {answer.rcode}"
    if refused:
        reason += " (the resolver does not serve this zone: give --trust-anchor for one it does)"
    return Verdict(INDETERMINATE, name, reason, refused=refused)


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _same_key(a: Any, b: Any) -> bool:
    return (a.flags, a.protocol, a.algorithm, a.key) == (b.flags, b.protocol, b.algorithm, b.key)


def _rrsets(answer: DnsAnswer, rdtype: int) -> list[Any]:
    if answer.signed is None:
        return []
    return [r for r in answer.signed.answer if r.rdtype == rdtype]


def _between(anchor: str, name: str) -> list[str]:
    """The names strictly below `anchor` down to `name` (inclusive), top-down."""
    if not _under(name, anchor) or name == anchor:
        return []
    labels = name.split(".")
    depth = 0 if anchor == "." else len(anchor.split("."))
    return [".".join(labels[i:]) for i in range(len(labels) - depth - 1, -1, -1)]


def _is_delegation(answer: DnsAnswer, name: str) -> bool:
    """Whether the (validated) DS denial shows `name` as a zone cut: an NSEC/NSEC3 at the
    name whose type bitmap has NS but not SOA, or an NSEC3 opt-out span covering it."""
    if answer.signed is None:
        return False
    target = _dname(name)
    for rrset in answer.signed.authority:
        if rrset.rdtype == dns.rdatatype.NSEC and rrset.name == target:
            return _bitmap_cut(rrset[0])
        if rrset.rdtype == dns.rdatatype.NSEC3:
            rd = rrset[0]
            hashed = dns.dnssec.nsec3_hash(target, rd.salt, rd.iterations, rd.algorithm)
            if rrset.name.labels[0].decode().upper() == hashed.upper():
                return _bitmap_cut(rd)
            if rd.flags & 1:  # opt-out: an unsigned delegation may hide in the span
                return True
    return False


def _bitmap_cut(rdata: Any) -> bool:
    types: set[int] = set()
    for window, bitmap in rdata.windows:
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    types.add(window * 256 + i * 8 + bit)
    return dns.rdatatype.NS in types and dns.rdatatype.SOA not in types


def _unanchored(name: str, anchors: Any) -> Verdict:
    source = getattr(anchors, "source", "") or "the trust anchor"
    return Verdict(
        INDETERMINATE,
        name,
        f"no trust anchor in {source} covers {name}: its status cannot be told "
        "(give --trust-anchor for its zone or a parent, or leave the default root anchor)",
        unanchored=True,
    )

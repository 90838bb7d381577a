"""DMARC identifier alignment and the DMARC result of one message (RFC 9989), pure.

`aligned(domain, header_from_domain, mode, org_domain)`: strict ("s") alignment needs the two
names to be equal; relaxed ("r") alignment needs the same Organizational Domain, which the
caller supplies as a function (probes.lookup.dmarc.org_domain_via_dns asks the DNS Tree Walk;
a test can pass a lambda).

`dmarc_outcome(...)`: DMARC passes when at least one DKIM signature that verified has a d=
aligned with the header From domain, or SPF passed for a domain aligned with it (RFC 9989
§4.4). Results:
- "pass" / "fail": a policy record applies and the message passes or fails.
- "none": no DMARC policy for the From domain, or a record whose p/sp/np is invalid and that
  has no valid rua (RFC 9989 §4.10.1: no DMARC processing at all). Alignment is still worked
  out (with the default relaxed modes) so that the caller can tell what would have happened.
- "permerror" is never produced here; probes.mail.verify gives it when the message has no
  single From address to evaluate (see verify_message).

Policy that applies: p for the policy domain itself, sp (else p) for a subdomain that
inherits the policy of its Organizational Domain or Public Suffix Domain; an absent or
invalid p counts as none (probes.parse.dmarc.effective_policy). np (the policy for
non-existent subdomains) is out of scope: a test message's From domain is taken to exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from probes.parse.dmarc import DmarcRecord, effective_policy

MODES = ("r", "s")
PASS = "pass"
FAIL = "fail"
NONE = "none"
PERMERROR = "permerror"


@dataclass(frozen=True)
class DmarcOutcome:
    """The DMARC verdict for one message.

    `policy_domain`: where the record came from (None without one); `policy`: p/sp that
    applies ("none", "quarantine", "reject"; None without a record) and `policy_tag` which
    tag it came from; `adkim`/`aspf`: alignment modes used ("r" default); `org_domain`: the
    From domain's Organizational Domain; `dkim_aligned`: d= of the passing signatures that
    align (lower-case, without repeats, in the order given); `spf_aligned`: SPF passed for
    an aligned domain; `reason`: a sentence for evidence.
    """

    result: str  # pass | fail | none | permerror
    policy_domain: str | None
    policy: str | None
    adkim: str
    aspf: str
    org_domain: str
    dkim_aligned: tuple[str, ...]
    spf_aligned: bool
    reason: str
    policy_tag: str | None = None

    @property
    def passed(self) -> bool:
        return self.result == PASS


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def aligned(
    domain: str, header_from_domain: str, mode: str, org_domain: Callable[[str], str]
) -> bool:
    """Is `domain` aligned with `header_from_domain` in `mode` ("s" strict, "r" relaxed)?
    Empty names never align. ValueError for another mode."""
    if mode not in MODES:
        raise ValueError(f"alignment mode {mode!r} is not 'r' or 's'")
    a, b = _norm(domain), _norm(header_from_domain)
    if not a or not b:
        return False
    if a == b:
        return True
    if mode == "s":
        return False
    return _norm(org_domain(a)) == _norm(org_domain(b))


def dmarc_outcome(
    *,
    header_from_domain: str,
    dkim_passes: Sequence[str],
    spf_result: str,
    spf_domain: str,
    record: DmarcRecord | None,
    policy_domain: str | None,
    org_domain: Callable[[str], str],
) -> DmarcOutcome:
    """The DMARC result (see the module docstring). `dkim_passes` are the d= domains of the
    signatures that verified ("pass"); `spf_result` the SPF result for `spf_domain` (the
    MAIL FROM domain, or the HELO name for the null sender); `record` and `policy_domain`
    come from policy discovery (None, None: no policy)."""
    from_domain = _norm(header_from_domain)
    adkim = (record.adkim if record is not None else None) or "r"
    aspf = (record.aspf if record is not None else None) or "r"
    org = _norm(org_domain(from_domain)) if from_domain else ""

    dkim_aligned: list[str] = []
    for d in dkim_passes:
        name = _norm(d)
        if name not in dkim_aligned and aligned(name, from_domain, adkim, org_domain):
            dkim_aligned.append(name)
    spf_aligned = spf_result == PASS and aligned(spf_domain, from_domain, aspf, org_domain)
    passes = bool(dkim_aligned) or spf_aligned
    how = _how(dkim_aligned, spf_aligned, dkim_passes, spf_result, spf_domain, adkim, aspf)

    if record is None:
        return DmarcOutcome(
            NONE,
            None,
            None,
            adkim,
            aspf,
            org,
            tuple(dkim_aligned),
            spf_aligned,
            f"no DMARC policy for {from_domain or '(no domain)'} ({how})",
        )
    source = _norm(policy_domain or from_domain)
    policy, tag, note = effective_policy(record, subdomain=source != from_domain)
    invalid = [t for t in ("p", "sp", "np") if record.has(t) and getattr(record, t) is None]
    if invalid and not record.rua:
        return DmarcOutcome(
            NONE,
            source,
            None,
            adkim,
            aspf,
            org,
            tuple(dkim_aligned),
            spf_aligned,
            f"the DMARC record at _dmarc.{source} is not applied: {note} ({how})",
            policy_tag=tag,
        )
    return DmarcOutcome(
        PASS if passes else FAIL,
        source,
        policy,
        adkim,
        aspf,
        org,
        tuple(dkim_aligned),
        spf_aligned,
        how,
        policy_tag=tag,
    )


def _how(
    dkim_aligned: Sequence[str],
    spf_aligned: bool,
    dkim_passes: Sequence[str],
    spf_result: str,
    spf_domain: str,
    adkim: str,
    aspf: str,
) -> str:
    mode = {"r": "relaxed", "s": "strict"}
    if dkim_aligned or spf_aligned:
        parts = []
        if dkim_aligned:
            parts.append(f"aligned DKIM pass for d={', '.join(dkim_aligned)}")
        if spf_aligned:
            parts.append(f"aligned SPF pass for {_norm(spf_domain)}")
        return " and ".join(parts)
    parts = []
    if dkim_passes:
        listed = ", ".join(sorted({_norm(d) for d in dkim_passes}))
        parts.append(f"DKIM passed for d={listed}, not aligned ({mode[adkim]})")
    else:
        parts.append("no DKIM signature passed")
    if spf_result == PASS:
        parts.append(f"SPF passed for {_norm(spf_domain)}, not aligned ({mode[aspf]})")
    else:
        parts.append(f"SPF {spf_result or 'none'} for {_norm(spf_domain) or '(none)'}")
    return "; ".join(parts)


__all__ = ["MODES", "DmarcOutcome", "aligned", "dmarc_outcome"]

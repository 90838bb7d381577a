"""SPF evaluation (RFC 7208 check_host()) with pyspf, every DNS question through the door.

pyspf asks DNS through `spf.query.dns()`, which calls its module-global `DNSLookup`. Runs are
concurrent, so the module is never patched: `DoorQuery` overrides `dns()` and asks the run's
`DnsClient` (cached, counted, shared with the probes) instead. What stays pyspf's own: the
record selection, syntax, macro expansion (%{i}, %{p}, ...), the processing limits (10
DNS-querying terms, 10 MX names, 10 PTR names, 2 void lookups) and the results.

How door answers map onto pyspf's expectations:
- NOERROR / NXDOMAIN: the records in pyspf's shapes (TXT -> tuple of bytes strings per record,
  A/AAAA -> address text, MX -> (preference, host) with "" for the null MX, PTR -> name).
  An answer with no records counts as a void lookup unless pyspf says to ignore it (exp=).
- CNAME_LOOP: no records (pyspf's own resolver treats a looping alias as no data, and the
  OpenSPF suite expects that: ptr-cname-loop).
- BADNAME (a name no DNS query can be built for): no records and no void lookup, as pyspf does
  for names with empty or over-long labels.
- Any other failure (SERVFAIL, REFUSED, TIMEOUT, NETWORK, BADRESPONSE): `spf.TempError`, so the
  result is "temperror" and the caller can tell "could not evaluate" from a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import spf

from probes.net.dns import BADNAME, CNAME_LOOP, DnsAnswer, DnsClient


class DoorQuery(spf.query):
    """A pyspf query whose DNS questions go through a DnsClient."""

    def __init__(self, door: DnsClient, *args: Any, **kwargs: Any) -> None:
        self.door = door
        self.failures: list[DnsAnswer] = []  # door failures met (the first explains temperror)
        super().__init__(*args, **kwargs)

    def dns(self, name, qtype, cnames=None, ignore_void=False):
        """pyspf's DNS primitive: a list of records of `qtype` at `name` (CNAMEs followed)."""
        name = str(name or "")
        if name.endswith("."):
            name = name[:-1]
        if not name or not all(0 < len(label) < 64 for label in name.split(".")):
            return []  # not a valid DNS name: no data, not a void lookup (as pyspf)
        answer = self.door.query(name.lower(), qtype)
        if answer.rcode == BADNAME:
            return []
        if answer.rcode == CNAME_LOOP:
            records: tuple[Any, ...] = ()
        elif not answer.ok:
            self.failures.append(answer)
            detail = f" ({answer.detail})" if answer.detail else ""
            raise spf.TempError(f"DNS {qtype} {name}: {answer.rcode}{detail}")
        else:
            records = answer.records
        result = _pyspf_shapes(qtype, records)
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


def _pyspf_shapes(qtype: str, records: tuple[Any, ...]) -> list[Any]:
    if qtype in ("TXT", "SPF"):
        return [tuple(parts) for parts in records if parts]
    if qtype == "MX":
        return [(pref, "" if host == "." else host) for pref, host in records]
    return list(records)


@dataclass(frozen=True)
class SpfVerdict:
    """The check_host() result for one client IP."""

    ip: str
    result: str  # pass, fail, softfail, neutral, none, permerror, temperror
    explanation: str
    mechanism: str | None  # the term that decided (None when no term matched)
    lookups: int  # DNS-querying terms pyspf evaluated
    void_lookups: int
    failure: DnsAnswer | None = None  # the door failure behind a temperror

    @property
    def passed(self) -> bool:
        return self.result == "pass"


def evaluate(
    door: DnsClient,
    ip: str,
    sender: str,
    helo: str,
    *,
    default_explanation: str | None = None,
) -> SpfVerdict:
    """check_host(ip, domain of sender, sender) with pyspf through the door.

    `sender` is the MAIL FROM address (empty: the HELO identity, postmaster@helo). Raises
    ValueError when `ip` is not an IP address.
    """
    try:
        query = DoorQuery(door, i=ip, s=sender, h=helo, strict=True)
    except spf.PermError as exc:
        raise ValueError(f"{ip!r} is not an IP address: {exc}") from None
    if default_explanation is not None:
        query.set_default_explanation(default_explanation)
    result, _code, explanation = query.check()
    return SpfVerdict(
        ip=ip,
        result=result,
        explanation=str(explanation),
        mechanism=query.mechanism,
        lookups=query.lookups,
        void_lookups=query.void_lookups,
        failure=query.failures[0] if result == "temperror" and query.failures else None,
    )


__all__ = ["DoorQuery", "SpfVerdict", "evaluate"]

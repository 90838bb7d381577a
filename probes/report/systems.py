"""Which mail software a run talked to, from the servers' own greetings (an SMTP banner names
Exim, Postfix or Sendmail; an IMAP/POP3 greeting Dovecot or Perdition), so that a report shows
first the fix lines for the systems that answered. Pure: a RunReport in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from probes.codes import Fix
from probes.report.posture import is_endpoint
from probes.report.run import RunReport

_SIGNS = (
    ("exim", re.compile(r"\bExim\b", re.I)),
    ("postfix", re.compile(r"\bPostfix\b", re.I)),
    ("sendmail", re.compile(r"\bSendmail\b", re.I)),
    ("dovecot", re.compile(r"\bDovecot\b", re.I)),
    ("perdition", re.compile(r"\bperdition\b", re.I)),
)
# The milters a Postfix or sendmail MTA signs and checks with (the lab's, and the usual ones).
COMPANIONS = {"postfix": ("opendkim", "opendmarc"), "sendmail": ("opendkim",)}
# Lines that apply whatever software runs: the zone, certificates, the shell.
ALWAYS = frozenset({"zone", "openssl", "shell"})
_GREETING_KEYS = ("greeting", "banner")


def systems_seen(report: RunReport) -> dict[str, set[str]]:
    """Endpoint (host:port) -> the systems its greeting names (companions included)."""
    seen: dict[str, set[str]] = {}
    for result in report.results:
        for finding in result.findings:
            if not is_endpoint(finding.subject):
                continue
            for key in _GREETING_KEYS:
                text = finding.evidence.get(key)
                if not text:
                    continue
                for system, sign in _SIGNS:
                    if sign.search(text):
                        found = seen.setdefault(finding.subject or "", set())
                        found.add(system)
                        found.update(COMPANIONS.get(system, ()))
    return seen


def relevant(seen: Mapping[str, set[str]], subjects: Iterable[str]) -> frozenset[str] | None:
    """The systems whose lines matter for a problem on `subjects`: what answered on those
    endpoints, else (a DNS problem, or endpoints that did not say) everything that answered in
    the run, plus ALWAYS; None when nothing said what it runs (show every system)."""
    everything = set().union(*seen.values()) if seen else set()
    if not everything:
        return None
    here = set().union(*(seen.get(s, set()) for s in subjects))
    return frozenset((here or everything) | ALWAYS)


def split_lines(fix: Fix, systems: frozenset[str] | None) -> tuple[dict[str, str], list[str]]:
    """The fix's lines for `systems` (all when None, or when none of them has lines), and the
    names of the systems left out."""
    if systems is None:
        return dict(fix.lines), []
    shown = {k: v for k, v in fix.lines.items() if k in systems}
    if not shown:
        return dict(fix.lines), []
    return shown, [k for k in fix.lines if k not in shown]

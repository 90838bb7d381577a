"""Core data model: what is probed, what a probe found, how a probe run ended.

Frozen dataclasses and enums only; no I/O. The JSON shape of these objects is part of the
user-facing contract (docs/contract.md): extend it, never rename.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Credentials:
    """A login. The password is never in repr or str; probes.credentials reads references."""

    user: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return f"Credentials(user={self.user!r}, password=***)"


class Severity(enum.Enum):
    """How bad a finding is. Ordered: INFO < WARN < FAIL."""

    INFO = "info"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARN: 1, Severity.FAIL: 2}


class Outcome(enum.Enum):
    """How one run of one probe ended. "Could not test" is never "tested and found"."""

    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"


class ErrorReason(enum.Enum):
    """Why a probe run ended in Outcome.ERROR."""

    TIMEOUT = "TIMEOUT"
    CONNECTIVITY = "CONNECTIVITY"
    TLS = "TLS"
    DNS = "DNS"
    PROTOCOL = "PROTOCOL"
    CONFIG = "CONFIG"
    BUG = "BUG"


@dataclass(frozen=True)
class Timeouts:
    """Every timeout a probe uses comes from here (seconds)."""

    connect: float = 10.0
    io: float = 30.0
    dns: float = 5.0
    probe: float = 120.0


@dataclass(frozen=True)
class Thresholds:
    """Limits the operator sets, in the monitoring-plugins range syntax (`21:`, `~:8`, `@0:7`;
    probes.parse.nagios_range): a value outside the range (inside it with a leading `@`) is
    over the limit. The probes pick severities with them and `--format nagios` repeats them
    as its perfdata's warn and crit fields (docs/contract.md#thresholds).
    """

    # Days left on a certificate: CERT_EXPIRING_SOON (warn) outside `cert_days_warn`, at fail
    # severity outside `cert_days_crit` (None: never fail before expiry; CERT_EXPIRED is fail).
    cert_days_warn: str = "21:"
    cert_days_crit: str | None = None
    # DNS-querying terms of an SPF policy within the RFC 7208 limit of 10 (more is always
    # SPF_TOO_MANY_LOOKUPS, fail): SPF_LOOKUP_COUNT at warn or fail severity outside these.
    spf_lookups_warn: str | None = None
    spf_lookups_crit: str | None = None
    # A DKIM key's age in days, where a date in the selector name tells it (s20240101):
    # DKIM_KEY_AGE at warn or fail outside these (e.g. `~:365`; default none: info).
    dkim_key_age_warn: str | None = None
    dkim_key_age_crit: str | None = None


SEND_VIA = ("submission", "submissions", "mx")
RETRIEVE_VIA = ("imaps", "imap", "pop3s", "pop3")
CANONICALIZATIONS = ("relaxed/relaxed", "simple/simple")
SIGNERS = ("mailprobe", "target")


@dataclass(frozen=True)
class MessageOptions:
    """How the message probes send, sign and read back their test message (docs/message.md)."""

    # How the test message leaves: "submission" (587, STARTTLS + AUTH), "submissions" (465,
    # implicit TLS + AUTH) or "mx" (straight to an MX host on 25, from `source_address`).
    send_via: str = "submission"
    # Who signs: "mailprobe" (with the Target's dkim_keys) or "target" (submit unsigned and
    # check that the target's MTA signed it).
    signer: str = "mailprobe"
    canonicalization: str = "relaxed/relaxed"
    # Signed header fields; From is always signed twice (oversigned) unless listed here.
    signed_headers: tuple[str, ...] = ("from", "to", "subject", "date", "message-id")
    oversign_from: bool = True
    signing_domain: str | None = None  # d=; default: the domain of the header From
    # More header fields for the test message (e.g. a forged Authentication-Results, to test
    # that the receiver's own results can be told apart).
    extra_headers: tuple[tuple[str, str], ...] = ()
    submit_host: str | None = None  # where to submit; default: the first submission host
    mail_from: str | None = None  # envelope sender; default: the login user, else postmaster@
    header_from: str | None = None  # From: address; default: mail_from
    rcpt_to: str | None = None  # default: the login user
    source_address: str | None = None  # local address for sending via "mx"
    retrieve_via: str = "imaps"  # imaps | imap (STARTTLS) | pop3s | pop3 (STLS)
    receiver_id: str | None = None  # authserv-id to trust; default: the first MX host name
    deadline_s: float = 30.0  # give up waiting for the message (MESSAGE_NOT_DELIVERED)
    keep: bool = False  # leave the test message in the mailbox
    # Receiver mode: listen here ("IP:PORT") for what the target's outbound MTA sends.
    receiver_listen: str | None = None
    receiver_domain: str | None = None  # the domain whose MX points at the receiver


@dataclass(frozen=True)
class Target:
    """What to probe: a mail domain and, optionally, its servers and how to reach them."""

    domain: str
    mx_hosts: tuple[str, ...] = ()
    submission_hosts: tuple[str, ...] = ()
    mailbox_hosts: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()
    sending_ips: tuple[str, ...] = ()
    resolver: str | None = None  # "IP" or "IP:PORT"; None = the system's resolver
    ca_file: str | None = None
    # DNSSEC trust anchor file (DS/DNSKEY records); None = the IANA root anchor (package data).
    trust_anchor: str | None = None
    credentials_ref: str | None = None  # "env:NAME" or "file:PATH"; never the secret itself
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Local DKIM private keys to match against the published ones: (selector, path) pairs.
    # Only the paths are kept; the key material is read by the probe and never reported.
    dkim_keys: tuple[tuple[str, str], ...] = ()
    discover_selectors: bool = False  # also try a list of commonly used DKIM selectors
    message: MessageOptions = field(default_factory=MessageOptions)
    thresholds: Thresholds = field(default_factory=Thresholds)
    # Blocklists (dns.blocklists, RFC 5782): IP lists and domain lists, as zone names. None
    # for both: the well-known public lists (probes.parse.dnsbl defaults); naming any list of
    # either kind replaces all the defaults.
    dnsbls: tuple[str, ...] | None = None
    domain_blocklists: tuple[str, ...] | None = None
    # A login held in memory (a lab's throwaway user), used instead of `credentials_ref`;
    # never shown: not in repr, not in to_json, and Credentials hides its password.
    login: Credentials | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "mx_hosts": list(self.mx_hosts),
            "submission_hosts": list(self.submission_hosts),
            "mailbox_hosts": list(self.mailbox_hosts),
            "selectors": list(self.selectors),
            "sending_ips": list(self.sending_ips),
            "resolver": self.resolver,
            "ca_file": self.ca_file,
            "dkim_keys": {sel: path for sel, path in self.dkim_keys},
            "discover_selectors": self.discover_selectors,
            **({"trust_anchor": self.trust_anchor} if self.trust_anchor else {}),
            # only when the operator set them (the schema's keys stay as they were otherwise)
            **({"thresholds": dict(vars(self.thresholds))} if self.has_thresholds else {}),
            **({"dnsbls": list(self.dnsbls)} if self.dnsbls is not None else {}),
            **(
                {"domain_blocklists": list(self.domain_blocklists)}
                if self.domain_blocklists is not None
                else {}
            ),
        }

    @property
    def has_thresholds(self) -> bool:
        return self.thresholds != Thresholds()


@dataclass(frozen=True)
class Finding:
    """One thing a probe found. `code` is stable; tests and dashboards key on it."""

    probe_id: str
    code: str
    severity: Severity
    message: str
    evidence: Mapping[str, str] = field(default_factory=dict)
    reproduce: str | None = None
    subject: str | None = None
    # Evidence keys whose values change from run to run without any change of configuration
    # (durations, days left, timestamps, message ids): shown, never counted as drift.
    volatile: frozenset[str] = frozenset()

    @property
    def identity(self) -> tuple[str, str, str | None]:
        """What makes two runs' findings "the same finding": (probe, code, subject)."""
        return (self.probe_id, self.code, self.subject)

    @property
    def stable_evidence(self) -> dict[str, str]:
        """The evidence that describes the configuration seen (volatile keys left out)."""
        return {k: v for k, v in self.evidence.items() if k not in self.volatile}

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled between a --domains worker and the parent, which holds every report of
        # the night: rebuilt by _shared_finding, equal texts share one string.
        return (
            _shared_finding,
            (
                self.probe_id,
                self.code,
                self.severity,
                self.message,
                tuple(self.evidence.items()),
                self.reproduce,
                self.subject,
                self.volatile,
            ),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": {str(k): str(v) for k, v in self.evidence.items()},
            "reproduce": self.reproduce,
            "subject": self.subject,
        }
        if self.volatile:
            out["volatile"] = sorted(self.volatile)
        return out


def _shared(text: Any) -> Any:
    return sys.intern(text) if type(text) is str else text


def _shared_finding(
    probe_id: str,
    code: str,
    severity: Severity,
    message: str,
    evidence: tuple[tuple[str, str], ...],
    reproduce: str | None,
    subject: str | None,
    volatile: frozenset[str],
) -> Finding:
    """A Finding rebuilt from a pickle with its texts interned: a 10,000-domain audit's
    parent holds ~200,000 findings, many with the same message and evidence (a provider's
    records, a blocklist's verdict), built through __init__ (no per-object __dict__)."""
    return Finding(
        _shared(probe_id),
        _shared(code),
        severity,
        _shared(message),
        {_shared(k): _shared(v) for k, v in evidence},
        _shared(reproduce),
        _shared(subject),
        _VOLATILE.setdefault(volatile, volatile),  # a handful of distinct sets, one object each
    )


_VOLATILE: dict[frozenset[str], frozenset[str]] = {}


@dataclass(frozen=True)
class ProbeResult:
    """One run of one probe against one target."""

    probe_id: str
    outcome: Outcome
    findings: tuple[Finding, ...] = ()
    error: ErrorReason | None = None
    error_detail: str | None = None
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "probe": self.probe_id,
            "outcome": self.outcome.value,
            "error": self.error.value if self.error else None,
            "error_detail": self.error_detail,
            "duration_s": round(self.duration_s, 6),
            "findings": [f.to_json() for f in self.findings],
        }

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.probe_id, self.outcome, self.findings, self.error, self.error_detail)
        return (ProbeResult, (*fields, self.duration_s))

    @property
    def worst(self) -> Severity | None:
        """The highest severity among the findings, or None when there are none."""
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

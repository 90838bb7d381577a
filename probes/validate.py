"""The one validation of a Target and of its message options.

Every front end calls it and turns the `(field, problem)` pairs into its own error:

- the command line (DOMAIN, `--domains`, `--lab` alike): `mailprobe: error: --option: problem`,
  exit 2 before any probing or lab start (probes.cli);
- scenario files: `FILE:LINE: field `target.x`: problem` (probes.scenario);
- the message probes: ProbeConfigError `message.x: problem`, outcome ERROR/CONFIG
  (`check_message`).

Fields are named as the Target's attributes: `domain`, `mx_hosts[0]`, `resolver`,
`credentials_ref`, `timeouts.io`, `message.send_via`, ... Names are converted once, here, by
probes.names (IDNA 2008 / UTS 46): `checked_target` gives back the Target with every domain
and host name in A-label form.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from pathlib import Path

from probes.errors import ProbeConfigError
from probes.model import (
    CANONICALIZATIONS,
    RETRIEVE_VIA,
    SEND_VIA,
    SIGNERS,
    MessageOptions,
    Target,
)
from probes.names import InvalidDomain, normalize_domain, normalize_host, normalize_selector
from probes.parse.address import BadAddress, mailbox

Problem = tuple[str, str]

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII but ':'


def checked_target(target: Target, *, files: bool = False) -> tuple[Target, list[Problem]]:
    """The Target with its names normalized, and every problem found (empty: usable).

    `files`: also check that the CA file and the DKIM key files exist (the command line does;
    scenario files are checked when loaded, before their files may exist).
    """
    problems: list[Problem] = []
    changes: dict[str, object] = {}
    try:
        changes["domain"] = normalize_domain(target.domain)
    except InvalidDomain as exc:
        problems.append(("domain", str(exc)))
    for name in ("mx_hosts", "submission_hosts", "mailbox_hosts"):
        hosts = []
        for i, host in enumerate(getattr(target, name)):
            try:
                hosts.append(normalize_host(host))
            except InvalidDomain as exc:
                problems.append((f"{name}[{i}]", str(exc)))
        changes[name] = tuple(hosts)
    selectors = []
    for i, selector in enumerate(target.selectors):
        try:
            selectors.append(normalize_selector(selector))
        except InvalidDomain as exc:
            problems.append((f"selectors[{i}]", str(exc)))
    changes["selectors"] = tuple(selectors)
    keys = []
    for i, (selector, path) in enumerate(target.dkim_keys):
        try:
            keys.append((normalize_selector(selector), path))
        except InvalidDomain as exc:
            problems.append((f"dkim_keys[{i}]", str(exc)))
    changes["dkim_keys"] = tuple(keys)
    for name in ("dnsbls", "domain_blocklists"):
        zones = getattr(target, name)
        if zones is None:
            continue
        normalized = []
        for i, zone in enumerate(zones):
            try:
                normalized.append(checked_zone(zone))
            except InvalidDomain as exc:
                problems.append((f"{name}[{i}]", str(exc)))
        changes[name] = tuple(dict.fromkeys(normalized))
    for i, ip in enumerate(target.sending_ips):
        if not _is_ip(ip):
            problems.append((f"sending_ips[{i}]", f"{ip!r} is not an IP address"))
    if target.resolver is not None:
        from probes.net import parse_resolver

        try:
            parse_resolver(target.resolver)
        except ProbeConfigError as exc:
            problems.append(("resolver", str(exc)))
    if target.credentials_ref is not None:
        from probes.credentials import check_ref

        try:
            check_ref(target.credentials_ref)
        except ProbeConfigError:
            problems.append(
                (  # the value is not repeated: it may be a password pasted by mistake
                    "credentials_ref",
                    "expected env:NAME or file:PATH (a reference; never the secret itself)",
                )
            )
        if target.login is not None:
            problems.append(("credentials_ref", "given with an in-memory login: one or the other"))
    for name in ("connect", "io", "dns", "probe"):
        seconds = getattr(target.timeouts, name)
        if not seconds > 0:
            problems.append((f"timeouts.{name}", "must be above 0 seconds"))
        elif not math.isfinite(seconds):
            problems.append((f"timeouts.{name}", "must be a finite number of seconds"))
    if files:
        if target.ca_file is not None and not Path(target.ca_file).is_file():
            problems.append(("ca_file", f"{target.ca_file}: no such file"))
        if target.trust_anchor is not None:
            from probes.parse.trust_anchor import TrustAnchorError, load_trust_anchor

            try:
                load_trust_anchor(target.trust_anchor)
            except TrustAnchorError as exc:
                problems.append(("trust_anchor", str(exc)))
        for i, (selector, path) in enumerate(target.dkim_keys):
            if not Path(path).is_file():
                problems.append((f"dkim_keys[{i}]", f"{selector}={path}: no such file"))
    problems += [(f"thresholds.{f}", problem) for f, problem in threshold_problems(target)]
    message, message_problems = checked_message(target.message)
    problems += [(f"message.{field}", problem) for field, problem in message_problems]
    changes["message"] = message
    if problems:
        return target, problems
    return dataclasses.replace(target, **changes), []  # type: ignore[arg-type]


# A blocklist zone leaves room for the longest query name under it: an IPv6 address's 32
# nibbles (64 characters) and a dot, within DNS's 253.
MAX_ZONE = 253 - 65


def checked_zone(text: str) -> str:
    """A blocklist zone (`--dnsbl`, `--domain-blocklist`) as a normalized domain name;
    InvalidDomain naming the problem (probes.names, and room for a query name)."""
    if not isinstance(text, str):
        raise InvalidDomain(f"{text!r} is not a zone name")
    zone = normalize_domain(text)
    if len(zone) > MAX_ZONE:
        raise InvalidDomain(
            f"{text!r} is {len(zone)} characters long: a blocklist zone of more than "
            f"{MAX_ZONE} leaves no room for an IPv6 query name"
        )
    return zone


def threshold_problems(target: Target) -> list[Problem]:
    """Each threshold must be a range in the monitoring-plugins syntax. A bare number for the
    certificate days is refused: `21` means "alert above 21" (outside 0:21), the opposite of
    what a days-left limit wants (`21:`, alert below 21)."""
    from probes.parse.nagios_range import RangeError, parse_range

    problems: list[Problem] = []
    for f in dataclasses.fields(target.thresholds):
        text = getattr(target.thresholds, f.name)
        if text is None:
            continue
        if not isinstance(text, str):
            problems.append((f.name, f"{text!r}: expected a range as text, e.g. '21:'"))
            continue
        try:
            rng = parse_range(text)
        except RangeError as exc:
            problems.append((f.name, str(exc)))
            continue
        if f.name.startswith("cert_days") and rng.bare:
            problems.append(
                (
                    f.name,
                    f"{text!r} would alert when MORE than {text} days are left (a bare number N "
                    f"is the range 0:N); for fewer than {text} days write '{text}:'",
                )
            )
    return problems


def checked_message(opts: MessageOptions) -> tuple[MessageOptions, list[Problem]]:
    """The message options with their names normalized, and every problem found."""
    problems: list[Problem] = []
    for name, choices in (
        ("send_via", SEND_VIA),
        ("retrieve_via", RETRIEVE_VIA),
        ("canonicalization", CANONICALIZATIONS),
        ("signer", SIGNERS),
    ):
        value = getattr(opts, name)
        if value not in choices:
            problems.append((name, f"{value!r}; one of {', '.join(choices)}"))
    if not opts.deadline_s > 0:
        problems.append(("deadline_s", "must be above 0 seconds"))
    bad = [h for h in opts.signed_headers if not _HEADER_NAME.match(h)]
    if not opts.signed_headers or bad:
        problems.append(("signed_headers", "header field names, comma-separated"))
    elif "from" not in (h.lower() for h in opts.signed_headers):
        problems.append(("signed_headers", "must include from (RFC 6376 §5.4)"))
    if opts.source_address is not None and not _is_ip(opts.source_address):
        problems.append(("source_address", f"{opts.source_address!r} is not an IP address"))
    if opts.receiver_listen is not None:
        from probes.net.receiver import split_listen

        try:
            split_listen(opts.receiver_listen)
        except ProbeConfigError as exc:
            problems.append(("receiver_listen", str(exc)))
    for name in ("mail_from", "header_from", "rcpt_to"):
        value = getattr(opts, name)
        if value is None:
            continue
        if "@" not in value:
            problems.append((name, f"{value!r} is not an address"))
            continue
        try:
            mailbox(value, name)
        except BadAddress as exc:
            problems.append((name, str(exc)))
    changes: dict[str, object] = {}
    for name, convert in (
        ("submit_host", normalize_host),
        ("receiver_domain", normalize_domain),
        ("signing_domain", normalize_domain),
    ):
        value = getattr(opts, name)
        if value is None:
            continue
        try:
            changes[name] = convert(value)
        except InvalidDomain as exc:
            problems.append((name, str(exc)))
    if problems:
        return opts, problems
    return dataclasses.replace(opts, **changes), []  # type: ignore[arg-type]


def check_message(opts: MessageOptions) -> MessageOptions:
    """For the message probes: the options normalized, or ProbeConfigError naming the first
    problem as `message.FIELD: problem`."""
    checked, problems = checked_message(opts)
    if problems:
        field, problem = problems[0]
        raise ProbeConfigError(f"message.{field}: {problem}")
    return checked


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""`{lab.KEY}` placeholders: a scenario's target values that name the lab's addresses.

A scenario that uses a lab (one it starts, or a running one: `lab: {name: NAME}`) does not
know the lab's addresses when it is written: the lab gets its 127.x.y.0/24 block when it
starts. A string value of its `target:` (a host, an IP, an address, `message.*`) may hold
placeholders, filled from the lab's information when the scenario runs:

    {lab.domain}          the lab domain               {lab.resolver}   IP:PORT of its DNS
    {lab.mx}              the mx server's IP            {lab.ca_file}    its CA certificate
    {lab.outbound}        the outbound relay's IP       {lab.user}       the lab user's address
    {lab.mailbox}         the IMAP/POP3 server's IP     {lab.receiver}   receiver mode's IP
    {lab.authorized}      the SPF-authorized client IP  {lab.receiver_domain}
    {lab.unauthorized}    a client IP SPF does not authorize
    {lab.ports.ROLE}      a port: smtp, submission, submissions, imap, imaps, pop3, pop3s,
                          dns, outbound_smtp, outbound_submission

The lab password is no placeholder: the lab's login travels in memory (probes.lab.target).
An unknown key, or a placeholder in a scenario without a lab, is refused when the file loads.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.lab.lab import LabInfo

PLACEHOLDER = re.compile(r"\{lab\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\}")
_ADDRESSES = ("mx", "outbound", "mailbox", "authorized", "unauthorized", "receiver")
_PORTS = (
    "smtp",
    "submission",
    "submissions",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "dns",
    "outbound_smtp",
    "outbound_submission",
)
KEYS = (
    "domain",
    "resolver",
    "ca_file",
    "user",
    "receiver_domain",
    *_ADDRESSES,
    *(f"ports.{role}" for role in _PORTS),
)
# What a placeholder stands for while the file is checked, before any lab is known.
SAMPLE = {
    "domain": "lab.invalid",
    "resolver": "127.0.0.1:53",
    "ca_file": "/dev/null",
    "user": "user@lab.invalid",
    "receiver_domain": "receiver.invalid",
    **{key: "127.0.0.1" for key in _ADDRESSES},
    **{f"ports.{role}": "25" for role in _PORTS},
}


def lab_values(info: LabInfo) -> dict[str, str]:
    """What each placeholder stands for in this lab."""
    values = {
        "domain": info.domain,
        "resolver": info.resolver,
        "ca_file": info.ca_file,
        "user": info.user,
        "receiver_domain": info.receiver_domain or "",
        **info.hosts,
        **info.client_ips,
        "receiver": info.receiver,
        **{f"ports.{role}": str(port) for role, port in info.ports.items()},
    }
    return {key: values.get(key, "") for key in KEYS}


def unknown_in(data: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, message) for every placeholder in the raw YAML `data` whose key is not
    one of KEYS."""
    for where, text in _strings(data, path):
        for match in PLACEHOLDER.finditer(text):
            if match.group(1) not in KEYS:
                yield (
                    where,
                    (
                        f"unknown placeholder {match.group(0)}; known: "
                        + ", ".join(f"{{lab.{k}}}" for k in KEYS)
                    ),
                )


def placeholders_in(data: Any, path: str) -> Iterator[str]:
    """The field paths of the raw YAML `data` holding a `{lab.…}` placeholder."""
    for where, text in _strings(data, path):
        if PLACEHOLDER.search(text):
            yield where


def _strings(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from _strings(value, f"{path}[{i}]")


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """`value` (a string, tuple, mapping or dataclass of them, e.g. a TargetSpec) with every
    placeholder replaced by its value; other values as they are."""
    sub: Callable[[re.Match[str]], str] = lambda m: values.get(m.group(1), m.group(0))  # noqa: E731
    if isinstance(value, str):
        return PLACEHOLDER.sub(sub, value) if "{lab." in value else value
    if isinstance(value, tuple):
        return tuple(fill(v, values) for v in value)
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, Mapping):
        return {k: fill(v, values) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: fill(getattr(value, f.name), values)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    return value

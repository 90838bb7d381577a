"""The one door to the network, passed to probes.

Only code under probes.net opens sockets or asks DNS. `Net` carries the configuration every
network operation needs, the run's resolver door, `net.dns` (probes.net.dns.DnsClient:
cached, counted, concurrent), its connection slots, `net.slots` (at most `max_per_host`
connections to one address at a time; probes.net.stream), and its memory of dead endpoints,
`net.endpoints` (an (ip, port) that refused, did not answer or stayed silent fails at once
for the rest of the run; probes.net.endpoints). Every timeout comes from the Target; nothing
here calls socket.setdefaulttimeout.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from probes.errors import ProbeConfigError
from probes.model import Target, Timeouts

if TYPE_CHECKING:
    from probes.net.dns import DnsClient
    from probes.net.dnssec import Validator
    from probes.net.endpoints import EndpointMemory
    from probes.net.stream import HostSlots
    from probes.net.tapes import Recorder

DNS_PORT = 53
DEFAULT_MAX_PER_HOST = 2

_DNS_INIT_LOCK = threading.Lock()
_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>[^:]*))?$")


@dataclass(frozen=True)
class Net:
    """Network configuration shared by all probes of one run."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    resolver: str | None = None  # "IP", "IP:PORT" or "[IPv6]:PORT"; None = system resolver
    ca_file: str | None = None
    trust_anchor: str | None = None  # DNSSEC anchor file; None = the packaged IANA root anchor
    source_address: str | None = None  # local address to bind outgoing connections to
    # The run's resolver door; built from `resolver` on first use unless given (several
    # targets of one run may share one, and with it the cache).
    dns_client: DnsClient | None = field(default=None, compare=False, repr=False)
    # At most this many connections to one address at a time, across all probes of the run.
    max_per_host: int = DEFAULT_MAX_PER_HOST
    host_slots: HostSlots | None = field(default=None, compare=False, repr=False)
    # Endpoints that failed in this run (built on first use): one memory per run.
    endpoint_memory: EndpointMemory | None = field(default=None, compare=False, repr=False)
    # DNSSEC validation over `dns` (first use: the door's validator for `trust_anchor`, shared
    # by every target asking through the same door).
    validator: Validator | None = field(default=None, compare=False, repr=False)
    # A fleet run's door to recorded conversations (probes.net.tapes): one per domain's run,
    # over the process's tapes. None: every connection goes to the network.
    recorder: Recorder | None = field(default=None, compare=False, repr=False)

    @classmethod
    def for_target(
        cls,
        target: Target,
        *,
        source_address: str | None = None,
        dns_client: DnsClient | None = None,
        max_per_host: int = DEFAULT_MAX_PER_HOST,
    ) -> Net:
        return cls(
            timeouts=target.timeouts,
            resolver=target.resolver,
            ca_file=target.ca_file,
            trust_anchor=target.trust_anchor,
            source_address=source_address,
            dns_client=dns_client,
            max_per_host=max_per_host,
        )

    @property
    def slots(self) -> HostSlots:
        """The run's connection slots per host (probes.net.stream.HostSlots)."""
        if self.host_slots is None:
            from probes.net.stream import HostSlots

            with _DNS_INIT_LOCK:
                if self.host_slots is None:
                    object.__setattr__(self, "host_slots", HostSlots(self.max_per_host))
        assert self.host_slots is not None
        return self.host_slots

    @property
    def endpoints(self) -> EndpointMemory:
        """The run's memory of failed endpoints (probes.net.endpoints.EndpointMemory)."""
        if self.endpoint_memory is None:
            from probes.net.endpoints import EndpointMemory

            with _DNS_INIT_LOCK:
                if self.endpoint_memory is None:
                    memory = EndpointMemory()
                    # a slot waiter whose endpoint was just found dead gives up at once
                    memory.on_change(lambda: self.slots.wake())
                    object.__setattr__(self, "endpoint_memory", memory)
        assert self.endpoint_memory is not None
        return self.endpoint_memory

    @property
    def dns(self) -> DnsClient:
        """The resolver door (raises ProbeConfigError for a bad resolver setting)."""
        if self.dns_client is None:
            from probes.net.dns import client_for

            with _DNS_INIT_LOCK:
                if self.dns_client is None:
                    client = client_for(self.resolver_addr(), timeout=self.timeouts.dns)
                    object.__setattr__(self, "dns_client", client)
        assert self.dns_client is not None
        return self.dns_client

    @property
    def dnssec(self) -> Validator:
        """DNSSEC validation of the door's answers against `trust_anchor` (probes.net.dnssec).

        Raises ProbeConfigError naming the file and line for an unusable trust anchor."""
        if self.validator is None:
            from probes.parse.trust_anchor import TrustAnchorError

            try:
                made = self.dns.validator(self.trust_anchor)  # one per door and anchor
            except TrustAnchorError as exc:
                raise ProbeConfigError(f"--trust-anchor: {exc}") from None
            with _DNS_INIT_LOCK:
                if self.validator is None:
                    object.__setattr__(self, "validator", made)
        assert self.validator is not None
        return self.validator

    def resolver_addr(self) -> tuple[str, int] | None:
        """The configured resolver as (ip, port), or None for the system resolver.

        Raises ProbeConfigError naming the value when it is not an IP address with an
        optional port (IPv6 with a port must be bracketed: "[::1]:5353").
        """
        if self.resolver is None:
            return None
        return parse_resolver(self.resolver)


def parse_resolver(value: str) -> tuple[str, int]:
    """Parse "IP", "IP:PORT", "IPv6" or "[IPv6]:PORT" into (ip, port)."""
    text = value.strip()
    port_text: str | None = None
    if m := _BRACKETED.match(text):
        host, port_text = m["host"], m["port"]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ProbeConfigError(
            f"resolver {value!r}: {host!r} is not an IP address (expected IP or IP:PORT)"
        ) from None
    if port_text is None:
        return str(ip), DNS_PORT
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ProbeConfigError(f"resolver {value!r}: port {port_text!r} is not in 1-65535")
    return str(ip), int(port_text)

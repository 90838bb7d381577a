"""The lab spec: what an embedded lab looks like, as data (dataclasses, loadable from YAML).

A deliberately misconfigured lab is a matter of a spec, not of new code: DNS records, DKIM
selectors, TLS settings and server toggles all live here. `validate()` refuses a bad spec
before anything starts, naming the field (`LabSpecError.field`).

DNS record values may use placeholders, replaced when the zone is generated:
`{domain}`, `{dns}`, `{mx}`, `{outbound}`, `{mailbox}`, `{authorized}`, `{unauthorized}`,
`{receiver}` (the lab addresses). Anything else in braces (SPF macros such as `%{i}`) is left
alone.

Role `receiver` (host octet 40) is not a lab server: it is the address where mailprobe's own
SMTP receiver listens in receiver mode (probe `message.receiver`, on `ports.smtp`, where the
outbound Exim delivers). It has an A record (`receiver.<domain>`) and a PTR like every role,
and the lab DNS serves `receiver_domain` (default `receiver.test`) with its MX pointing there,
so that mail the outbound Exim relays to `<anyone>@receiver.test` reaches the receiver.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.lab.blocklists import DEFAULT_BLOCKLISTS, BlocklistSpec
from probes.yaml_load import FieldError, YamlDoc, YamlSyntaxError, build, kind, to_plain

ROLES = (
    "dns",
    "mx",
    "outbound",
    "mailbox",
    "authorized",
    "unauthorized",
    "receiver",
    "store",
    "web",
)
SERVER_ROLES = ("dns", "mx", "outbound", "mailbox", "store")
# Lab flavours: the MTA of the mx and outbound roles, and what answers IMAP/POP3 on `mailbox`.
MTAS = ("exim", "postfix", "sendmail")
MAILBOX_FRONTS = ("dovecot", "perdition")
# Host part of each role's address inside the lab's 127.x.y.0/24 block.
DEFAULT_HOST_OCTET = {
    "dns": 53,
    "mx": 25,
    "outbound": 26,
    "mailbox": 143,
    "authorized": 10,
    "unauthorized": 11,
    "receiver": 40,  # mailprobe's own SMTP receiver (receiver mode), not a lab container
    "store": 144,  # the Dovecot mail store behind a Perdition front (mailbox_front: perdition)
    "web": 80,  # HTTPS on 443: mta-sts.<domain> and the BIMI logo (probes.lab.web)
}
# Which role serves which port name.
PORT_ROLES = {
    "dns": "dns",
    "smtp": "mx",
    "submissions": "mx",
    "submission": "mx",
    "outbound_smtp": "outbound",
    "outbound_submission": "outbound",
    "imap": "mailbox",
    "imaps": "mailbox",
    "pop3": "mailbox",
    "pop3s": "mailbox",
    "lmtp": "mailbox",
}
RSA_SIZES = (512, 768, 1024, 1536, 2048, 3072, 4096)
KEY_TYPES = ("rsa", "ed25519")
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
CERT_KINDS = ("valid", "expired", "expiring-soon", "self-signed", "wrong-host")
DNSSEC_BOGUS_KINDS = ("expired-signature", "wrong-ds", "missing-dnskey")
TLSA_KINDS = ("match", "other-key", "none")
PLACEHOLDERS = ("domain", *ROLES)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL_PART = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")


class LabSpecError(ValueError):
    """A lab spec value is invalid. `field` is the dotted path (e.g. `selectors[0].bits`),
    `reason` what is wrong with it; from a file, `source` and the field's `line`."""

    def __init__(
        self, field: str, message: str, source: str | None = None, line: int | None = None
    ):
        self.field = field
        self.reason = message
        self.source = source
        self.line = line
        where = f"{source}:{line}: " if source and line else f"{source}: " if source else ""
        super().__init__(f"{where}lab spec field `{field}`: {message}")


@dataclass(frozen=True)
class SelectorSpec:
    """One DKIM selector: a key the lab generates and (normally) publishes."""

    name: str = "mail"
    key_type: str = "rsa"  # rsa | ed25519
    bits: int = 2048  # RSA only
    publish: bool = True  # publish <name>._domainkey.<domain>
    testing: bool = False  # add t=y
    revoked: bool = False  # publish an empty p=
    record: str | None = None  # publish this TXT value instead of the generated one


@dataclass(frozen=True)
class TlsSpec:
    min_version: str = "TLSv1.2"
    certificate: str = "valid"  # valid | expired | expiring-soon | self-signed | wrong-host
    starttls: bool = True  # advertise STARTTLS on SMTP 25/587 (Exim; Dovecot always offers it)
    key_readable: bool = True  # False: Exim advertises STARTTLS but cannot load its key


@dataclass(frozen=True)
class DnssecSpec:
    """DNSSEC of the lab domain (probes/lab/dnssec_zone.py). The lab's TLD zone (`test.`) is
    always signed by Knot and is the lab's trust anchor; the domain is delegated from it."""

    signed: bool = True  # Knot signs the domain's zone and the TLD zone publishes its DS
    # A broken chain: expired-signature | wrong-ds | missing-dnskey (None: a correct chain).
    bogus: str | None = None
    # Also sign every extra zone under the TLD (signed here, served by Knot as given) and
    # publish their DS: many signed domains at once (bench/dns_audit.py --signed).
    sign_extra_zones: bool = False


@dataclass(frozen=True)
class DaneSpec:
    """TLSA records at _25._tcp.mx.<domain>, computed at lab start from the lab's certificates:
    match (3 1 1 of the MX key and 2 0 1 of the lab CA), other-key (3 1 1 of a key the MX does
    not have), none."""

    tlsa: str = "none"


@dataclass(frozen=True)
class EximSpec:
    """Toggles for the lab's SMTP servers. Named `exim:` in specs for history; every MTA
    flavour honours them or refuses the spec naming the field it cannot express."""

    open_relay: bool = False
    vrfy: bool = False
    expn: bool = False
    auth_before_tls: bool = False  # advertise AUTH before STARTTLS (on every Exim port)


@dataclass(frozen=True)
class DovecotSpec:
    plaintext_auth: bool = False  # allow LOGIN/USER before TLS (no LOGINDISABLED)


MTA_STS_MODES = ("enforce", "testing", "none")
BIMI_LOGOS = ("valid", "script", "billion-laughs", "missing")


@dataclass(frozen=True)
class MtaStsSpec:
    """The lab's MTA-STS (RFC 8461): the `_mta-sts` record and the policy the `web` role serves
    at https://mta-sts.<domain>/.well-known/mta-sts.txt. Each broken case is a field."""

    publish: bool = True  # the _mta-sts TXT record, mta-sts.<domain> and the policy file
    mode: str = "enforce"  # enforce | testing | none
    mx: tuple[str, ...] | None = None  # the policy's mx: lines; None = the lab's MX hosts
    max_age: int = 604800
    record_id: str = "20260101000000"
    policy: str | None = None  # serve this text as the policy instead (placeholders filled)
    oversized: bool = False  # pad the policy past the 64 KiB senders accept
    redirect: bool = False  # answer the policy URL with a 301 to https://web.<domain>/...
    reachable: bool = True  # False: mta-sts.<domain> is an address where nothing listens
    # The web role's certificate (the policy host and the logo host), kinds as tls.certificate
    certificate: str = "valid"


@dataclass(frozen=True)
class BimiSpec:
    """The lab's BIMI: the `default._bimi` record and the logo the `web` role serves."""

    publish: bool = True  # the default._bimi TXT record (and the logo)
    logo: str = "valid"  # valid | script | billion-laughs | missing (404)
    record: str | None = None  # publish this TXT value instead (placeholders filled)


@dataclass(frozen=True)
class PortsSpec:
    dns: int = 53
    smtp: int = 25
    submissions: int = 465
    submission: int = 587
    outbound_smtp: int = 25
    outbound_submission: int = 587
    imap: int = 143
    imaps: int = 993
    pop3: int = 110
    pop3s: int = 995
    lmtp: int = 24


@dataclass(frozen=True)
class LabSpec:
    domain: str = "example.test"
    mta: str = "exim"  # exim | postfix (+ OpenDKIM, OpenDMARC) | sendmail (+ OpenDKIM)
    mailbox_front: str = "dovecot"  # dovecot | perdition (a proxy in front of a Dovecot store)
    block: str | None = None  # "127.X.Y.0/24"; None = pick a free block at start
    addresses: Mapping[str, str] = field(default_factory=dict)  # role -> IP, overrides block
    ports: PortsSpec = field(default_factory=PortsSpec)
    user: str = "user"  # local part of the lab's test user
    selectors: tuple[SelectorSpec, ...] = (SelectorSpec(),)
    signing_selector: str | None = None  # the outbound Exim signs with it; default: the first
    mx: tuple[str, ...] = ("10 mx.{domain}.",)
    spf: str | None = "v=spf1 a:outbound.{domain} ip4:{authorized} -all"
    dmarc: str | None = "v=DMARC1; p=reject; adkim=r; aspf=r; rua=mailto:dmarc-reports@{domain}"
    ptr: Mapping[str, bool | str] = field(default_factory=dict)  # role -> False | PTR name
    extra_records: tuple[str, ...] = ()  # zone-file lines, relative to the lab domain
    # More zones the lab DNS serves (e.g. a report receiver's domain): name -> zone-file lines
    # relative to that zone. Placeholders work in the lines.
    extra_zones: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Receiver mode: a zone the lab DNS serves whose MX is receiver.<domain> (the `receiver`
    # role's address, where mailprobe's receiver listens). None: no such zone.
    receiver_domain: str | None = "receiver.test"
    # DNS blocklists the lab DNS serves (probes.lab.blocklists): by default a clean IP list
    # and a clean domain list with the RFC 5782 test entries; `check --lab` asks them.
    blocklists: tuple[BlocklistSpec, ...] = DEFAULT_BLOCKLISTS
    tls: TlsSpec = field(default_factory=TlsSpec)
    exim: EximSpec = field(default_factory=EximSpec)
    dovecot: DovecotSpec = field(default_factory=DovecotSpec)
    mta_sts: MtaStsSpec = field(default_factory=MtaStsSpec)
    bimi: BimiSpec = field(default_factory=BimiSpec)
    dnssec: DnssecSpec = field(default_factory=DnssecSpec)
    dane: DaneSpec = field(default_factory=DaneSpec)

    # ----- derived values -------------------------------------------------------------------
    @property
    def signer(self) -> SelectorSpec:
        name = self.signing_selector or self.selectors[0].name
        return next(s for s in self.selectors if s.name == name)

    def with_block(self, block: str) -> LabSpec:
        return dataclasses.replace(self, block=block)

    def address(self, role: str) -> str:
        if role in self.addresses:
            return self.addresses[role]
        if self.block is None:
            raise LabSpecError("block", "no block chosen yet (the lab picks one at start)")
        net = ipaddress.ip_network(self.block)
        return str(net.network_address + DEFAULT_HOST_OCTET[role])

    def placeholders(self) -> dict[str, str]:
        values = {"domain": self.domain}
        values.update({role: self.address(role) for role in ROLES})
        return values

    def ptr_name(self, role: str) -> str | None:
        """The PTR name published for a role's address (None = no PTR)."""
        value = self.ptr.get(role, True)
        if value is False:
            return None
        if value is True:
            return f"{hostname_label(role)}.{self.domain}."
        return value if value.endswith(".") else value + "."

    @property
    def flavour(self) -> str:
        """`mta+mailbox_front`, e.g. `exim+dovecot` (the lab's flavour, for ids and reports)."""
        return f"{self.mta}+{self.mailbox_front}"

    def port_role(self, name: str) -> str:
        """The role that serves a port name. Behind Perdition, LMTP is the store's."""
        if name == "lmtp" and self.mailbox_front == "perdition":
            return "store"
        return PORT_ROLES[name]

    @property
    def lmtp_address(self) -> str:
        """Where the MX delivers the lab domain over LMTP (the Dovecot that holds mail)."""
        return self.address(self.port_role("lmtp"))

    def endpoints(self) -> list[tuple[str, str, int]]:
        """(port name, IP, port) for every listening service."""
        found = [
            (name, self.address(self.port_role(name)), getattr(self.ports, name))
            for name in PORT_ROLES
        ]
        if self.mailbox_front == "perdition":  # the store answers IMAP/POP3 in clear
            found += [
                ("store_imap", self.address("store"), self.ports.imap),
                ("store_pop3", self.address("store"), self.ports.pop3),
            ]
        return found

    # ----- loading --------------------------------------------------------------------------
    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any] | None, source: str | None = None, doc: YamlDoc | None = None
    ) -> LabSpec:
        """The spec of plain data (probes.yaml_load), validated. With `doc` (the YAML document
        it came from), errors carry the field's line. A non-ASCII domain becomes A-labels
        (probes.names, as every name mailprobe takes)."""

        def line(path: str) -> int | None:
            return doc.line(path) if doc is not None else None

        try:
            spec = build(cls, data or {}, "")
        except FieldError as exc:
            path = exc.path or "(root)"
            raise LabSpecError(path, exc.message, source, line(exc.path)) from None
        if not spec.domain.isascii():
            from probes.names import InvalidDomain, to_ascii

            try:
                spec = dataclasses.replace(spec, domain=to_ascii(spec.domain))
            except InvalidDomain as exc:
                raise LabSpecError("domain", str(exc), source, line("domain")) from None
        try:
            spec.validate(source)
        except LabSpecError as exc:
            raise LabSpecError(exc.field, exc.reason, source, line(exc.field)) from None
        return spec

    @classmethod
    def from_yaml(cls, path: str | Path) -> LabSpec:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise LabSpecError("(file)", f"cannot read: {exc.strerror}", str(path)) from None
        try:
            doc = YamlDoc.from_text(text)
        except YamlSyntaxError as exc:
            where = f"line {exc.line}" if exc.line else "?"
            raise LabSpecError(
                "(yaml)", f"invalid YAML at {where}: {exc.problem}", str(path), exc.line
            ) from None
        if doc.data is not None and not isinstance(doc.data, Mapping):
            raise LabSpecError(
                "(root)", f"must be a mapping of fields, not a {kind(doc.data)}", str(path)
            )
        return cls.from_mapping(doc.data, str(path), doc)

    def to_mapping(self) -> dict[str, Any]:
        return to_plain(self)

    # ----- validation -----------------------------------------------------------------------
    def validate(self, source: str | None = None) -> None:
        def fail(fld: str, msg: str) -> typing.NoReturn:
            raise LabSpecError(fld, msg, source)

        if self.mta not in MTAS:
            fail("mta", f"{self.mta!r}; one of {', '.join(MTAS)}")
        if self.mailbox_front not in MAILBOX_FRONTS:
            fail("mailbox_front", f"{self.mailbox_front!r}; one of {', '.join(MAILBOX_FRONTS)}")
        if not is_domain(self.domain):
            fail("domain", f"{self.domain!r} is not a valid domain name (lowercase labels, 2+)")
        if self.block is not None:
            try:
                net = ipaddress.ip_network(self.block, strict=True)
            except ValueError:
                fail("block", f"{self.block!r} is not a network like 127.X.Y.0/24")
            if (
                not isinstance(net, ipaddress.IPv4Network)
                or net.prefixlen != 24
                or not net.subnet_of(_LOOPBACK)
            ):
                fail("block", f"{self.block!r} must be a /24 inside 127.0.0.0/8")
            if net.network_address == ipaddress.ip_address("127.0.0.0"):
                fail("block", "127.0.0.0/24 holds the host's own 127.0.0.1; pick another block")
        for role, ip in self.addresses.items():
            if role not in ROLES:
                fail(f"addresses.{role}", f"unknown role; roles are {', '.join(ROLES)}")
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                fail(f"addresses.{role}", f"{ip!r} is not an IP address")
            if addr.version != 4 or addr not in _LOOPBACK:
                fail(
                    f"addresses.{role}",
                    f"{ip} is outside 127.0.0.0/8 (lab traffic stays on loopback)",
                )
        for name in PORT_ROLES:
            port = getattr(self.ports, name)
            if not 1 <= port <= 65535:
                fail(f"ports.{name}", f"{port} is not a TCP port number")
        if self.block is not None or len(self.addresses) == len(ROLES):
            seen: dict[tuple[str, int], str] = {}
            for name, ip, port in self.endpoints():
                if (ip, port) in seen:
                    fail(f"ports.{name}", f"{ip}:{port} clashes with ports.{seen[ip, port]}")
                seen[ip, port] = name
        if not _LOCAL_PART.match(self.user):
            fail("user", f"{self.user!r} is not a simple local part")
        if not self.selectors:
            fail("selectors", "at least one DKIM selector is needed")
        names: set[str] = set()
        for i, sel in enumerate(self.selectors):
            where = f"selectors[{i}]"
            if not _LABEL.match(sel.name):
                fail(f"{where}.name", f"{sel.name!r} is not a valid DNS label")
            if sel.name in names:
                fail(f"{where}.name", f"selector {sel.name!r} appears twice")
            names.add(sel.name)
            if sel.key_type not in KEY_TYPES:
                fail(f"{where}.key_type", f"{sel.key_type!r}; supported: {', '.join(KEY_TYPES)}")
            if sel.key_type == "rsa" and sel.bits not in RSA_SIZES:
                fail(
                    f"{where}.bits", f"unsupported RSA key size {sel.bits}; supported: {RSA_SIZES}"
                )
            if sel.record is not None:
                _check_placeholders(f"{where}.record", sel.record, fail)
        if self.signing_selector is not None and self.signing_selector not in names:
            fail("signing_selector", f"{self.signing_selector!r} is not one of the selectors")
        for i, rec in enumerate(self.mx):
            parts = rec.split()
            if len(parts) != 2 or not parts[0].isdigit():
                fail(f"mx[{i}]", f"{rec!r} is not 'PREFERENCE HOST'")
            _check_placeholders(f"mx[{i}]", rec, fail)
        for role, value in self.ptr.items():
            if role not in ROLES:
                fail(f"ptr.{role}", f"unknown role; roles are {', '.join(ROLES)}")
            if value is True:
                continue
            if value is not False and not (isinstance(value, str) and is_domain(value.rstrip("."))):
                fail(f"ptr.{role}", f"{value!r}: use true, false or a host name")
        if self.tls.min_version not in TLS_VERSIONS:
            fail("tls.min_version", f"{self.tls.min_version!r}; one of {', '.join(TLS_VERSIONS)}")
        if self.tls.certificate not in CERT_KINDS:
            fail("tls.certificate", f"{self.tls.certificate!r}; one of {', '.join(CERT_KINDS)}")
        for fld, record in (("spf", self.spf), ("dmarc", self.dmarc)):
            if record is not None:
                _check_placeholders(fld, record, fail)
        for i, rec in enumerate(self.extra_records):
            if len(rec.split()) < 3:
                fail(f"extra_records[{i}]", f"{rec!r} is not 'NAME TYPE DATA'")
            _check_placeholders(f"extra_records[{i}]", rec, fail)
        for zone, records in self.extra_zones.items():
            where = f"extra_zones.{zone}"
            name = zone.rstrip(".").lower()
            if not is_domain(name):
                fail(where, f"{zone!r} is not a domain name")
            if name == self.domain or name.endswith("." + self.domain):
                fail(where, f"{zone!r} is inside the lab domain: use extra_records")
            for i, rec in enumerate(records):
                if len(rec.split()) < 3:
                    fail(f"{where}[{i}]", f"{rec!r} is not 'NAME TYPE DATA'")
                _check_placeholders(f"{where}[{i}]", rec, fail)
        if self.receiver_domain is not None:
            name = self.receiver_domain.rstrip(".").lower()
            if not is_domain(name):
                fail("receiver_domain", f"{self.receiver_domain!r} is not a domain name")
            if name == self.domain or name.endswith("." + self.domain):
                fail("receiver_domain", f"{name!r} is inside the lab domain")
            if name in {z.rstrip(".").lower() for z in self.extra_zones}:
                fail("receiver_domain", f"{name!r} is also one of extra_zones")
        if self.mta_sts.mode not in MTA_STS_MODES:
            fail("mta_sts.mode", f"{self.mta_sts.mode!r}; one of {', '.join(MTA_STS_MODES)}")
        if not 0 <= self.mta_sts.max_age <= 31557600:
            fail("mta_sts.max_age", f"{self.mta_sts.max_age} is not in 0..31557600")
        if not re.fullmatch(r"[A-Za-z0-9]{1,32}", self.mta_sts.record_id):
            fail("mta_sts.record_id", f"{self.mta_sts.record_id!r}: 1 to 32 letters or digits")
        for i, pattern in enumerate(self.mta_sts.mx or ()):
            _check_placeholders(f"mta_sts.mx[{i}]", pattern, fail)
        if self.mta_sts.policy is not None:
            _check_placeholders("mta_sts.policy", self.mta_sts.policy, fail)
        if self.mta_sts.certificate not in CERT_KINDS:
            fail(
                "mta_sts.certificate",
                f"{self.mta_sts.certificate!r}; one of {', '.join(CERT_KINDS)}",
            )
        if self.bimi.logo not in BIMI_LOGOS:
            fail("bimi.logo", f"{self.bimi.logo!r}; one of {', '.join(BIMI_LOGOS)}")
        if self.bimi.record is not None:
            _check_placeholders("bimi.record", self.bimi.record, fail)
        self._validate_blocklists(fail)
        if self.dnssec.bogus is not None:
            if self.dnssec.bogus not in DNSSEC_BOGUS_KINDS:
                fail(
                    "dnssec.bogus", f"{self.dnssec.bogus!r}; one of {', '.join(DNSSEC_BOGUS_KINDS)}"
                )
            if not self.dnssec.signed:
                fail("dnssec.bogus", "a bogus chain needs dnssec.signed: true")
        if self.dane.tlsa not in TLSA_KINDS:
            fail("dane.tlsa", f"{self.dane.tlsa!r}; one of {', '.join(TLSA_KINDS)}")
        from probes.lab.flavours import unsupported  # the flavour modules import this one

        for fld, reason in unsupported(self):
            fail(fld, f"not supported by the {self.flavour} lab: {reason}")

    def _validate_blocklists(self, fail: typing.Callable[[str, str], typing.NoReturn]) -> None:
        from probes.lab.blocklists import problems

        others = {z.rstrip(".").lower(): f"extra_zones.{z}" for z in self.extra_zones}
        if self.receiver_domain is not None:
            others[self.receiver_domain.rstrip(".").lower()] = "receiver_domain"
        stand_in = {"domain": self.domain, **dict.fromkeys(ROLES, "127.0.0.200")}
        for i, bl in enumerate(self.blocklists):
            for j, value in enumerate(bl.listed):
                _check_placeholders(f"blocklists[{i}].listed[{j}]", value, fail)
            _check_placeholders(f"blocklists[{i}].reason", bl.reason, fail)
        for fld, problem in problems(
            self.blocklists,
            self.domain,
            others,
            lambda value: fill_placeholders(value, stand_in),
            is_domain,
        ):
            fail(fld, problem)

    @property
    def blocklist_zones(self) -> dict[str, tuple[str, ...]]:
        """The zones of `dns.blocklists` by kind ("ip", "domain"), in the spec's order."""
        return {
            kind: tuple(bl.name for bl in self.blocklists if bl.kind == kind)
            for kind in ("ip", "domain")
        }


_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_PLACEHOLDER = re.compile(r"(?<!%)\{([a-z_]+)\}")


def _check_placeholders(
    fld: str, value: str, fail: typing.Callable[[str, str], typing.NoReturn]
) -> None:
    for name in _PLACEHOLDER.findall(value):
        if name not in PLACEHOLDERS:
            fail(fld, f"unknown placeholder {{{name}}}; known: {', '.join(PLACEHOLDERS)}")


def fill_placeholders(value: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)


def hostname_label(role: str) -> str:
    return {"authorized": "client-a", "unauthorized": "client-b", "dns": "ns"}.get(role, role)


def is_domain(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(_LABEL.match(lb) for lb in labels)

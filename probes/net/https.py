"""A bounded, verified HTTPS GET (part of the network door): the MTA-STS policy, BIMI files.

`fetch(net, url)` asks the run's resolver door (`net.dns`, never the system resolver) for the
host's A and AAAA records and connects only to those addresses, one after the other until one
answers, through `Connection.open` (the run's per-host connection slots and its memory of dead
endpoints). The TLS handshake sends the host name (SNI) and verifies the chain against
`--ca-file` (Target.ca_file) or the system store; the certificate must then name the host
(probes.parse.certificate, the name matching the transport probes use). Then one
`GET` over HTTP/1.1 with `Connection: close`:

- redirects are never followed: a 3xx is a response like any other (the caller's finding);
- the body is capped at MAX_BODY bytes (a bigger one is cut and marked `oversized`; a
  Content-Length over the cap is not read at all); headers at MAX_HEADERS lines;
- every step is bounded by the Target's timeouts (connect, then `io` for the handshake, the
  request, the head and the body each).

Failures are `HttpsFailure` (stage: "url", "dns", "connect", "tls", "certificate", "http"),
with what happened in one line; a timeout is a failure too (stage "connect" or "http"), so
callers turn any of them into a finding.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probes.errors import DnsError, ProtocolError
from probes.net.dns import normalize_name
from probes.net.stream import Connection
from probes.net.tls import TlsSession
from probes.parse.certificate import CertificateParseError, hostname_matches, parse_certificate

if TYPE_CHECKING:
    from probes.net import Net

MAX_BODY = 64 * 1024
MAX_HEADERS = 100
USER_AGENT = "mailprobe"
STAGES = ("url", "dns", "connect", "tls", "certificate", "http")


class HttpsFailure(Exception):
    """The fetch did not get a response. `stage` says where it stopped, `ip` which address
    (None before one was tried)."""

    def __init__(self, stage: str, message: str, *, ip: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.ip = ip


@dataclass(frozen=True)
class HttpsUrl:
    url: str
    host: str  # A-labels, lower case, no trailing dot
    port: int
    path: str  # with the query, as sent


@dataclass(frozen=True)
class HttpsResponse:
    url: str
    host: str
    ip: str  # the address that answered (from the target's DNS)
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value) in order
    body: bytes  # at most MAX_BODY bytes
    oversized: bool  # the body (or its announced length) was larger than the cap
    tls: TlsSession

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    @property
    def redirect(self) -> bool:
        return 300 <= self.status < 400


def parse_url(url: str) -> HttpsUrl:
    """An https:// URL split for `fetch`; HttpsFailure("url") when it is not one."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port or 443
    except ValueError as exc:
        raise HttpsFailure("url", f"{url[:200]!r} is not a valid URL: {exc}") from None
    if parts.scheme.lower() != "https":
        raise HttpsFailure("url", f"{url[:200]!r} is not an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise HttpsFailure("url", f"{url[:200]!r} carries a user name or password")
    host = parts.hostname or ""
    if not host.strip("."):
        raise HttpsFailure("url", f"{url[:200]!r} has no host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise HttpsFailure("url", f"{url[:200]!r} names an IP address, not a host name")
    try:
        host = normalize_name(host)
    except Exception as exc:  # the door's name check: InvalidDomain, DnsError
        raise HttpsFailure("url", f"{url[:200]!r}: host {host[:100]!r}: {exc}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in path):
        raise HttpsFailure("url", f"{url[:200]!r}: the path has spaces or non-ASCII characters")
    return HttpsUrl(url.strip(), host, port, path)


def addresses(net: Net, host: str) -> list[str]:
    """The host's addresses from the target's DNS (A first, then AAAA)."""
    a, aaaa = net.dns.addresses(host)
    found = [str(r) for answer in (a, aaaa) if answer.ok for r in answer.records]
    if found:
        return found
    for answer in (a, aaaa):
        if not answer.ok:
            try:
                answer.raise_for_failure()
            except (DnsError, TimeoutError) as exc:
                raise HttpsFailure("dns", f"{host}: {exc}") from None
    raise HttpsFailure("dns", f"{host} has no A or AAAA record")


def fetch(net: Net, url: str, *, cap: int = MAX_BODY) -> HttpsResponse:
    """GET `url` (https only) from the addresses the target's DNS gives; see the module doc."""
    target = parse_url(url)
    ips = addresses(net, target.host)
    failures: list[HttpsFailure] = []
    for ip in ips:
        try:
            conn = _connect(net, target, ip)
        except HttpsFailure as exc:
            if exc.stage != "connect":
                raise
            failures.append(exc)
            continue
        try:
            return _get(conn, target, ip, cap)
        finally:
            conn.close()
    if len(failures) == 1:
        raise failures[0]
    raise HttpsFailure("connect", "; ".join(str(f) for f in failures[:4]), ip=ips[0])


def reproduce_line(url: str, ip: str | None, ca_file: str | None) -> str:
    """The curl command that asks the same address the same question (no redirects)."""
    try:
        target = parse_url(url)
    except HttpsFailure:
        return f"curl -sv --max-redirs 0 {_quote(url)}"
    parts = ["curl", "-sv", "--max-redirs", "0"]
    if ip is not None:
        shown = f"[{ip}]" if ":" in ip else ip
        parts += ["--resolve", f"{target.host}:{target.port}:{shown}"]
    if ca_file:
        parts += ["--cacert", _quote(ca_file)]
    parts.append(_quote(target.url))
    return " ".join(parts)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _connect(net: Net, target: HttpsUrl, ip: str) -> Connection:
    label = f"{target.host}[{ip}]:{target.port}"
    try:
        conn = Connection.open(
            net,
            ip,
            target.port,
            label=label,
            implicit_tls=True,
            server_name=target.host,
            verify=True,
        )
    except ssl.SSLCertVerificationError as exc:
        raise HttpsFailure(
            "certificate", f"{label}: certificate not trusted: {exc.verify_message}", ip=ip
        ) from None
    except ssl.SSLError as exc:
        raise HttpsFailure("tls", f"{label}: TLS handshake failed: {exc}", ip=ip) from None
    except (TimeoutError, OSError) as exc:
        raise HttpsFailure("connect", f"{label}: {exc}", ip=ip) from None
    session = conn.tls
    problem = _name_problem(target.host, session)
    if problem is not None:
        conn.close()
        raise HttpsFailure("certificate", f"{label}: {problem}", ip=ip)
    return conn


def _name_problem(host: str, session: TlsSession | None) -> str | None:
    if session is None or not session.leaf_der:
        return "the server presented no certificate"
    try:
        info = parse_certificate(session.leaf_der)
    except CertificateParseError as exc:
        return f"the certificate cannot be parsed: {exc}"
    if not hostname_matches(info, host):
        names = ", ".join(info.dns_names[:5]) or ", ".join(info.common_names[:5]) or "no names"
        return f"the certificate does not name {host} (it names {names})"
    return None


def _get(conn: Connection, target: HttpsUrl, ip: str, cap: int) -> HttpsResponse:
    host_header = target.host if target.port == 443 else f"{target.host}:{target.port}"
    request = (
        f"GET {target.path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    )
    try:
        conn.send_bytes(request.encode("ascii"), shown=f"GET {target.path}")
        deadline = time.monotonic() + conn.io_timeout
        status_line = conn.read_line_by(deadline)
        status, reason = _status(status_line)
        headers: list[tuple[str, str]] = []
        while True:
            line = conn.read_line_by(deadline)
            if not line:
                break
            if len(headers) >= MAX_HEADERS:
                raise ProtocolError(f"more than {MAX_HEADERS} header lines")
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise ProtocolError(f"malformed header line {line[:80]!r}")
            headers.append((name.lower(), value.strip()))
        body, oversized = b"", False
        if not 300 <= status < 400 and status not in (204, 304):
            body, oversized = _body(conn, dict(headers), cap)
    except HttpsFailure:
        raise
    except (ProtocolError, ValueError) as exc:
        raise HttpsFailure("http", f"{conn.label}: {exc}", ip=ip) from None
    except (TimeoutError, OSError) as exc:
        raise HttpsFailure("http", f"{conn.label}: {exc}", ip=ip) from None
    assert conn.tls is not None
    return HttpsResponse(
        url=target.url,
        host=target.host,
        ip=ip,
        status=status,
        reason=reason,
        headers=tuple(headers),
        body=body,
        oversized=oversized,
        tls=conn.tls,
    )


def _status(line: str) -> tuple[int, str]:
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return int(code), reason.strip()[:200]


def _body(conn: Connection, headers: dict[str, str], cap: int) -> tuple[bytes, bool]:
    deadline = time.monotonic() + conn.io_timeout
    encoding = headers.get("transfer-encoding", "").lower()
    if encoding:
        if encoding != "chunked":
            raise ProtocolError(f"unsupported Transfer-Encoding {encoding[:40]!r}")
        return _chunked(conn, cap, deadline)
    length_text = headers.get("content-length")
    if length_text is not None:
        if not length_text.isdigit() or len(length_text) > 18:
            raise ProtocolError(f"invalid Content-Length {length_text[:40]!r}")
        length = int(length_text)
        if length > cap:
            return b"", True
        return conn.read_exact(length, cap=cap, deadline=deadline), False
    return conn.read_to_end(cap=cap, deadline=deadline)


def _chunked(conn: Connection, cap: int, deadline: float) -> tuple[bytes, bool]:
    out = bytearray()
    while True:
        size_line = conn.read_line_by(deadline).split(";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise ProtocolError(f"invalid chunk size {size_line[:40]!r}") from None
        if size == 0:
            return bytes(out), False
        if len(out) + size > cap:
            return bytes(out), True
        out += conn.read_exact(size, cap=cap, deadline=deadline)
        conn.read_line_by(deadline)  # the CRLF after the chunk

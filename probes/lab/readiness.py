"""Readiness checks that speak the protocols themselves (no port polling, no log scraping)."""

from __future__ import annotations

import socket
import ssl

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype


def greeting(ip: str, port: int, prefix: bytes, timeout: float = 1.0) -> bool:
    """True when the server at ip:port sends a first line starting with `prefix`."""
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            return _first_line(s).startswith(prefix)
    except OSError:
        return False


def tls_greeting(ip: str, port: int, prefix: bytes, timeout: float = 1.0) -> bool:
    """True when a TLS handshake succeeds (any certificate: a lab may serve a broken one on
    purpose) and the first line then starts with `prefix` (implicit-TLS IMAPS/POP3S)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((ip, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw) as s,
        ):
            return _first_line(s).startswith(prefix)
    except (OSError, ssl.SSLError):
        return False


def _first_line(s: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < 4096:
        chunk = s.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def smtp_ready(ip: str, port: int) -> bool:
    return greeting(ip, port, b"220")


def imap_ready(ip: str, port: int) -> bool:
    return greeting(ip, port, b"* OK")


def pop3_ready(ip: str, port: int) -> bool:
    return greeting(ip, port, b"+OK")


def dns_ready(ip: str, port: int, zone: str) -> bool:
    """True when the server answers the zone's SOA authoritatively over TCP."""
    try:
        query = dns.message.make_query(zone, dns.rdatatype.SOA)
        answer = dns.query.tcp(query, ip, port=port, timeout=1.0)
    except (OSError, EOFError, dns.exception.DNSException):
        return False
    return answer.rcode() == dns.rcode.NOERROR and bool(answer.answer)


def https_ready(ip: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TLS handshake succeeds (any certificate) and a GET gets an HTTP status
    line (the lab's web server)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((ip, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw) as s,
        ):
            s.sendall(b"GET / HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n")
            return _first_line(s).startswith(b"HTTP/1.")
    except (OSError, ssl.SSLError):
        return False

"""Helpers for the Prometheus tests: promtool (Debian's `prometheus` package), a tiny
authoritative DNS server on loopback, and a domain's records."""

from __future__ import annotations

import base64
import shutil
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROMTOOL = shutil.which("promtool")


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on `text` (skips the test when promtool is missing)."""
    if PROMTOOL is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; ./run-tests installs it)")
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )


def assert_promtool_clean(text: str) -> None:
    done = promtool_check(text)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr
    )


def zone(domain: str = "example.test", bits: int = 2048) -> dict[tuple[str, str], list[str]]:
    """SPF, DMARC, an MX and a DKIM key (selector s1, RSA of `bits`) for `domain`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    p = base64.b64encode(der).decode()
    chunks = " ".join(f'"{p[i : i + 200]}"' for i in range(0, len(p), 200))
    return {
        (domain, "MX"): [f"10 mx.{domain}."],
        (f"mx.{domain}", "A"): ["192.0.2.25"],
        (domain, "TXT"): ['"v=spf1 ip4:192.0.2.25 -all"'],
        (f"_dmarc.{domain}", "TXT"): ['"v=DMARC1; p=reject"'],
        (f"s1._domainkey.{domain}", "TXT"): [f'"v=DKIM1; k=rsa; p=" {chunks}'],
    }


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        records: dict[tuple[str, str], list[str]] = self.server.records  # type: ignore[attr-defined]
        self.server.queries += 1  # type: ignore[attr-defined]
        if self.server.refuse:  # type: ignore[attr-defined]
            response.set_rcode(dns.rcode.REFUSED)
            sock.sendto(response.to_wire(), self.client_address)
            return
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rtype = dns.rdatatype.to_text(question.rdtype)
        if (name, rtype) in records:
            rrset = dns.rrset.from_text_list(
                question.name, 300, "IN", rtype, records[(name, rtype)]
            )
            response.answer.append(rrset)
        elif not any(n == name for n, _ in records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(response.to_wire(), self.client_address)


@contextmanager
def dns_server(records: dict[tuple[str, str], list[str]]) -> Iterator[tuple[str, object]]:
    """A UDP DNS server on 127.0.0.1 answering from `records`; yields ("IP:PORT", server)
    (server.queries counts the questions; server.refuse = True: every answer is REFUSED)."""
    server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _Handler)
    server.records = records  # type: ignore[attr-defined]
    server.queries = 0  # type: ignore[attr-defined]
    server.refuse = False  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()

"""A DNS server on 127.0.0.1 for tests that run `mailprobe` in a subprocess (a StaticBackend
does not reach another process): UDP answers from a dict, on a free port."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class TinyDns:
    """Answers over UDP from `records` ((name, type) -> rdata texts); NXDOMAIN for names it
    does not know, an empty answer for other types of names it knows; no answer at all to the
    (name, type) questions in `silent` (a resolver that times out)."""

    def __init__(
        self,
        records: dict[tuple[str, str], list[str]],
        silent: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.records = records
        self.silent = set(silent)
        self.names = {name for name, _ in records} | {name for name, _ in self.silent}
        self.asked: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tiny-dns", daemon=True)

    def __enter__(self) -> TinyDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.asked.append((name, rdtype))
            if (name, rdtype) in self.silent:
                continue
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            if name not in self.names:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            for text in self.records.get((name, rdtype), []):
                reply.answer.append(dns.rrset.from_text(f"{name}.", 300, "IN", rdtype, text))
            self.sock.sendto(reply.to_wire(), peer)

"""TLS client contexts and handshakes for the transport probes (part of the network door).

Every handshake here runs with a deadline: the socket is non-blocking during the handshake and
each wait is bounded by what is left of the deadline, so a server that drips its handshake one
byte at a time still ends in TimeoutError on time.

Contexts never check the host name (the probes judge names themselves, from the certificate)
and allow every protocol version and cipher the local OpenSSL can do (`@SECLEVEL=0`): the
point is to see what the *server* accepts. Verification of the chain is on or off per call.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import time
import warnings
from dataclasses import dataclass

# Offering TLS 1.0/1.1 is the point of the version sweep: Python's deprecation warning for
# pinning them says nothing the report does not (installed once, at import: thread-safe).
warnings.filterwarnings(
    "ignore", message=r"ssl\.TLSVersion\.TLSv1(_1)? is deprecated", category=DeprecationWarning
)

# Names as Python's ssl module reports them (SSLSocket.version()).
VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_TLS_VERSION = {
    "SSLv3": ssl.TLSVersion.SSLv3,
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_HAS = {
    "SSLv3": ssl.HAS_SSLv3,
    "TLSv1": ssl.HAS_TLSv1,
    "TLSv1.1": ssl.HAS_TLSv1_1,
    "TLSv1.2": ssl.HAS_TLSv1_2,
    "TLSv1.3": ssl.HAS_TLSv1_3,
}


def untestable_reason(version: str) -> str | None:
    """Why the local OpenSSL cannot try `version` on its own, or None when it can."""
    if not _HAS[version]:
        return f"the local {ssl.OPENSSL_VERSION} was built without {version}"
    return None


@dataclass(frozen=True)
class TlsSession:
    """What a completed handshake showed."""

    version: str
    cipher: str
    cipher_bits: int
    leaf_der: bytes | None
    verified: bool  # the chain was verified against `ca_source` (False: not checked)
    ca_source: str
    # The chain as the server sent it (DER, leaf first), for DANE (probes.parse.tlsa).
    chain_der: tuple[bytes, ...] = ()


class LocalTlsUnsupported(Exception):
    """The local OpenSSL refused to even offer the requested protocol version."""


def make_context(
    *, verify: bool, ca_file: str | None, version: str | None = None
) -> ssl.SSLContext:
    """A client context: chain verification on or off, never a host-name check."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        else:
            ctx.load_default_certs()
    else:
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    if version is None:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    else:
        ctx.minimum_version = _TLS_VERSION[version]
        ctx.maximum_version = _TLS_VERSION[version]
    return ctx


def handshake(
    sock: socket.socket,
    *,
    server_name: str | None,
    deadline: float,
    verify: bool,
    ca_file: str | None,
    version: str | None = None,
) -> tuple[ssl.SSLSocket, TlsSession]:
    """Wrap `sock` and complete a client handshake before `deadline` (time.monotonic()).

    Raises TimeoutError, ssl.SSLCertVerificationError (verify=True and the chain fails),
    ssl.SSLError / OSError (the handshake failed), LocalTlsUnsupported.
    """
    ctx = make_context(verify=verify, ca_file=ca_file, version=version)
    sni = server_name if server_name and not _is_ip(server_name) else None
    tls = ctx.wrap_socket(sock, server_hostname=sni, do_handshake_on_connect=False)
    tls.setblocking(False)
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                _wait(tls, deadline, read=True)
            except ssl.SSLWantWriteError:
                _wait(tls, deadline, read=False)
            except ssl.SSLError as exc:
                if "NO_PROTOCOLS_AVAILABLE" in str(exc) or "NO_SUITABLE" in str(exc):
                    raise LocalTlsUnsupported(str(exc)) from None
                raise
    except BaseException:
        tls.close()
        raise
    tls.setblocking(True)
    cipher = tls.cipher() or ("?", "?", 0)
    session = TlsSession(
        version=tls.version() or "?",
        cipher=cipher[0],
        cipher_bits=int(cipher[2] or 0),
        leaf_der=tls.getpeercert(binary_form=True),
        verified=verify,
        ca_source=(ca_file or "system store") if verify else "not verified",
        chain_der=peer_chain(tls),
    )
    return tls, session


def peer_chain(tls: ssl.SSLSocket) -> tuple[bytes, ...]:
    """The certificates the peer sent, leaf first, as DER (empty when unavailable).

    Python 3.13 makes this public (`get_unverified_chain`); 3.10-3.12 have it on the
    internal `_sslobj` only."""
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    if getter is None:
        return ()
    try:
        chain = getter() or []
        return tuple(
            c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
            for c in chain
        )
    except (ssl.SSLError, ValueError, AttributeError, TypeError):
        return ()


def _wait(sock: socket.socket, deadline: float, *, read: bool) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("TLS handshake did not complete in time")
    # A selector, not select.select(): that cannot wait on descriptors >= FD_SETSIZE (1024),
    # which a busy run has.
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ if read else selectors.EVENT_WRITE)
        if not selector.select(remaining):
            raise TimeoutError("TLS handshake did not complete in time")


def _is_ip(name: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
    except OSError:
        return False
    return True

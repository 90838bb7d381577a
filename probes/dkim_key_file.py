"""Local DKIM private keys (`--dkim-key SEL=FILE`): read one, keep only its public half.

Formats read: PEM PKCS#1 (`BEGIN RSA PRIVATE KEY`) and PKCS#8 (`BEGIN PRIVATE KEY`, RSA or
Ed25519), DER of either, and the raw base64 Ed25519 key dkimpy signs with (base64 of the
32-byte seed, or of the 64-byte seed+public form libsodium writes). Passphrase-protected keys
cannot be read (the probe has no passphrase) and say so.

The private key object lives only inside `read_local_key`; what comes out is the public key,
the file's mode and, when the file could not be used, a reason. No text produced here ever
contains key material: reasons are written here, never copied from a parser's exception.

A key file is *exposed* when its group or others may read or write it (mode & 0o066), the test
opendkim applies before it agrees to sign ("key data is not secure: ... can be read or written
by other users"): readable leaks the key, writable lets another user swap in their own.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from probes.parse.dkim_key import PublicKey, dkimpy_ed25519

EXPOSED_BITS = 0o066  # group or others may read or write
MAX_KEY_FILE_BYTES = 64 * 1024  # a DKIM key file is a few KB; anything bigger is not one


@dataclass(frozen=True)
class LocalKey:
    """What the probe learns from a local key file. `mode` is the permission bits (None when
    the file could not be stat'ed); `public_key` is None and `problem` says why when the file
    could not be used as a DKIM private key. `problem` never contains key material."""

    path: str
    mode: int | None
    public_key: PublicKey | None = None
    key_format: str | None = None  # "pem", "der" or "dkimpy-ed25519"
    problem: str | None = None

    @property
    def exposed(self) -> bool:
        return self.mode is not None and bool(self.mode & EXPOSED_BITS)

    @property
    def mode_text(self) -> str:
        return "unknown" if self.mode is None else f"{self.mode:04o}"

    @property
    def exposed_to(self) -> str:
        """Who besides the owner may touch the file: e.g. "group read, others read"."""
        if self.mode is None:
            return ""
        parts = []
        for who, r, w in (("group", stat.S_IRGRP, stat.S_IWGRP), ("others", stat.S_IROTH, 0o2)):
            rights = [name for bit, name in ((r, "read"), (w, "write")) if self.mode & bit]
            if rights:
                parts.append(f"{who} {'+'.join(rights)}")
        return ", ".join(parts)


def read_local_key(path: str) -> LocalKey:
    """Stat and read `path`; never raises for a bad file (the problem is in the result)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return LocalKey(path, None, problem=f"cannot read the key file: {_os_reason(exc)}")
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISREG(st.st_mode):
        return LocalKey(path, mode, problem="not a regular file")
    if st.st_size > MAX_KEY_FILE_BYTES:
        return LocalKey(
            path, mode, problem=f"{st.st_size} bytes is too large for a DKIM private key file"
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        return LocalKey(path, mode, problem=f"cannot read the key file: {_os_reason(exc)}")
    public, key_format, problem = public_key_of(data)
    return LocalKey(path, mode, public, key_format, problem)


def public_key_of(data: bytes) -> tuple[PublicKey | None, str | None, str | None]:
    """(public key, format, None) for private key file contents, or (None, None, reason)."""
    stripped = data.strip()
    if not stripped:
        return None, None, "the key file is empty"
    if b"-----BEGIN" in stripped:
        if b"ENCRYPTED" in stripped or b"Proc-Type: 4,ENCRYPTED" in stripped:
            return None, None, "the key is passphrase-protected (mailprobe cannot decrypt it)"
        private = _load(serialization.load_pem_private_key, stripped)
        key_format = "pem"
        if private is None:
            if b"PUBLIC KEY-----" in stripped:
                return None, None, "the file holds a public key, not a private key"
            return None, None, "not a PEM private key mailprobe can read (RSA or Ed25519)"
    else:
        private = dkimpy_ed25519(stripped)
        key_format = "dkimpy-ed25519"
        if private is None:
            private = _load(serialization.load_der_private_key, data)
            key_format = "der"
        if private is None:
            return None, None, "not a private key mailprobe can read (PEM, DER or dkimpy Ed25519)"
    return _public(private, key_format)


def _public(private: object, key_format: str) -> tuple[PublicKey | None, str | None, str | None]:
    if isinstance(private, rsa.RSAPrivateKey):
        pub = private.public_key()
        return PublicKey("rsa", pub.key_size, "spki", pub), key_format, None
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return PublicKey("ed25519", 256, "raw", private.public_key()), key_format, None
    kind = type(private).__name__.removeprefix("_").replace("PrivateKey", "") or "unknown"
    return None, None, f"a {kind} private key; DKIM keys are RSA or Ed25519"


def _load(loader, data: bytes) -> object | None:
    try:
        return loader(data, password=None)
    except TypeError:  # encrypted without a password given
        return None
    except (ValueError, UnsupportedAlgorithm):
        return None


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


__all__ = ["EXPOSED_BITS", "LocalKey", "public_key_of", "read_local_key"]

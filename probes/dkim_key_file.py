"""DKIM private key files: the one reader for `dns.dkim --dkim-key SEL=FILE` and the signer.

`read_key_file(path)` stats and reads the file (at most MAX_KEY_FILE_BYTES) and hands the bytes
to probes.parse.dkim_private_key, which knows the formats: PEM PKCS#1 (`BEGIN RSA PRIVATE KEY`)
and PKCS#8 (`BEGIN PRIVATE KEY`, RSA or Ed25519), DER of either, and the Ed25519 seed dkimpy and
OpenDKIM sign with (32 bytes raw, or base64 of the seed or of the 64-byte seed+public form
libsodium writes). Passphrase-protected keys cannot be read (there is no passphrase) and say so.

- dns.dkim uses `read_local_key(path)`: a `LocalKey`, the public half, the file's mode and, when
  the file could not be used, a reason. The private key object does not come out of it.
- The signer (probes.mail.dkim_sign.load_signing_key) uses `read_key_file`, whose second value
  is the private key itself, so a key dns.dkim accepts is a key the round trip signs with.

No text produced here ever contains key material: reasons are written here, never copied from a
parser's exception.

A key file is *exposed* when its group or others may read or write it (mode & 0o066), the test
opendkim applies before it agrees to sign ("key data is not secure: ... can be read or written
by other users"): readable leaks the key, writable lets another user swap in their own.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from probes.parse.dkim_key import PublicKey
from probes.parse.dkim_private_key import PrivateKey, read_private_key

EXPOSED_BITS = 0o066  # group or others may read or write
MAX_KEY_FILE_BYTES = 64 * 1024  # a DKIM key file is a few KB; anything bigger is not one


@dataclass(frozen=True)
class LocalKey:
    """What is learnt from a local key file. `mode` is the permission bits (None when the file
    could not be stat'ed); `public_key` is None and `problem` says why when the file could not
    be used as a DKIM private key. `problem` never contains key material."""

    path: str
    mode: int | None
    public_key: PublicKey | None = None
    key_format: str | None = None  # "pem", "der", "dkimpy-ed25519" or "raw-ed25519"
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


def read_key_file(path: str) -> tuple[LocalKey, PrivateKey | None]:
    """Stat and read `path`: (what dns.dkim reports, the private key or None). Never raises
    for a bad file (the problem is in the LocalKey)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return LocalKey(path, None, problem=f"cannot read the key file: {_os_reason(exc)}"), None
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISREG(st.st_mode):
        return LocalKey(path, mode, problem="not a regular file"), None
    if st.st_size > MAX_KEY_FILE_BYTES:
        problem = f"{st.st_size} bytes is too large for a DKIM private key file"
        return LocalKey(path, mode, problem=problem), None
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        return LocalKey(path, mode, problem=f"cannot read the key file: {_os_reason(exc)}"), None
    read = read_private_key(data)
    return LocalKey(path, mode, read.public_key, read.key_format, read.problem), read.key


def read_local_key(path: str) -> LocalKey:
    """The public half of the key in `path`, its mode, or why it cannot be used."""
    return read_key_file(path)[0]


def public_key_of(data: bytes) -> tuple[PublicKey | None, str | None, str | None]:
    """(public key, format, None) for private key file contents, or (None, None, reason)."""
    read = read_private_key(data)
    if read.key is None:
        return None, None, read.problem
    return read.public_key, read.key_format, None


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


__all__ = [
    "EXPOSED_BITS",
    "MAX_KEY_FILE_BYTES",
    "LocalKey",
    "public_key_of",
    "read_key_file",
    "read_local_key",
]

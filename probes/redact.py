"""Keeping secrets out of text: error details, transcripts, evidence (pure).

One place for how a password is recognised (`secret_forms`: itself and the base64 forms an
SMTP AUTH exchange carries) and how it is removed (`Redactor`: every occurrence becomes "***",
longest secret first so one containing another is removed whole).
"""

from __future__ import annotations

import base64
from collections.abc import Collection

REDACTED = "***"


class Redactor:
    """Replaces every occurrence of a secret value with "***"."""

    def __init__(self, secrets: Collection[str] = ()) -> None:
        # Longest first, so a secret containing another is removed whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def finds(self, text: str) -> bool:
        """Whether `text` holds any of the secrets."""
        return any(secret in text for secret in self._secrets)


def secret_forms(user: str | None, password: str | None) -> list[str]:
    """The strings that would give `password` away in a transcript: itself, its base64 and
    the AUTH PLAIN initial response (base64 of NUL user NUL password)."""
    if not password:
        return []
    forms = [password, base64.b64encode(password.encode()).decode()]
    if user is not None:
        forms.append(base64.b64encode(f"\0{user}\0{password}".encode()).decode())
    return forms

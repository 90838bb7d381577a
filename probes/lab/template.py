"""Fill the `@@NAME@@` placeholders of a server config template (pure)."""

from __future__ import annotations

from collections.abc import Mapping


def fill(template: str, values: Mapping[str, str], what: str) -> str:
    """`template` with every `@@KEY@@` replaced by `values[KEY]`; AssertionError naming `what`
    when a placeholder is left (a bug in the template or its caller, not in the spec)."""
    text = template
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    assert "@@" not in text, f"unfilled placeholder in {what}"
    return text

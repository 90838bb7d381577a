"""The finding codes explained, from their declarations: docs/codes.md (`markdown`) and one
code in the terminal (`explain_text`, `mailprobe probes --explain CODE`).

docs/codes.md is generated, never edited: `mailprobe probes --codes --format markdown >
docs/codes.md` (REGENERATE), and a unit test keeps it equal to the declarations. One section
per code, `### CODE`, so its anchor is probes.codes.docs_anchor(code).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping

from probes.codes import SYSTEMS, docs_link
from probes.registry import DeclaredCode

REGENERATE = "mailprobe probes --codes --format markdown > docs/codes.md"

_HEAD = f"""\
<!-- Generated from the code declarations by `{REGENERATE}`: do not edit by hand. -->
# Finding codes

Every finding code the installed probes declare: what it means, its default severity, the
probes that declare it and, for every code that can be warn or fail, how to fix it, with the
concrete lines for the systems the fix applies to. Placeholders are in angle brackets
(`<domain>`, `<host>`, `<selector>`). `mailprobe probes --explain CODE` prints one section in
the terminal. The contract for codes and severities: [contract.md](contract.md#finding-codes).
"""


def markdown(catalogue: Mapping[str, DeclaredCode]) -> str:
    """docs/codes.md: an index by probe, then one section per code (sorted)."""
    by_probe: dict[str, list[str]] = {}
    for code, entry in catalogue.items():
        for probe in entry.probes:
            by_probe.setdefault(probe, []).append(code)
    parts = [_HEAD, "## By probe\n"]
    parts += [
        f"- `{probe}`: " + ", ".join(f"[{c}](#{_anchor(c)})" for c in codes)
        for probe, codes in sorted(by_probe.items())
    ]
    parts.append("\n## Codes\n")
    parts += [section(entry) for entry in catalogue.values()]
    return "\n".join(parts).rstrip("\n") + "\n"


def section(entry: DeclaredCode) -> str:
    """One code's section of docs/codes.md."""
    decl = entry.declaration
    lines = [
        f"### {decl.code}\n",
        _escape(decl.meaning) + "\n",
        f"- Default severity: **{decl.severity.value}**",
        "- Declared by: " + ", ".join(f"`{p}`" for p in entry.probes) + "\n",
    ]
    fix = decl.fix
    if fix is None:
        lines.append("Informational: nothing to fix.\n")
        return "\n".join(lines)
    lines.append(f"**Fix.** {_escape(fix.what)}\n")
    for system, text in _ordered(fix.lines):
        lines += [f"{SYSTEMS[system]}:\n", "```", text, "```\n"]
    return "\n".join(lines)


def explain_text(entry: DeclaredCode, width: int = 88) -> str:
    """One code for the terminal: meaning, severity, probes, the fix and its lines."""
    decl = entry.declaration
    out = [
        f"{decl.code} [{decl.severity.value}]",
        *textwrap.wrap(decl.meaning, width, initial_indent="  ", subsequent_indent="  "),
        f"  declared by: {', '.join(entry.probes)}",
        f"  docs: {docs_link(decl.code)}",
    ]
    if decl.fix is None:
        out.append("  informational: nothing to fix")
        return "\n".join(out) + "\n"
    out += [
        "",
        "Fix:",
        *textwrap.wrap(decl.fix.what, width, initial_indent="  ", subsequent_indent="  "),
    ]
    for system, text in _ordered(decl.fix.lines):
        out += ["", f"  {SYSTEMS[system]}:", textwrap.indent(text, "    ")]
    return "\n".join(out) + "\n"


def _ordered(lines: Mapping[str, str]) -> list[tuple[str, str]]:
    """A fix's lines in SYSTEMS order (zone first, shell last), whatever the declaration's."""
    return [(system, lines[system]) for system in SYSTEMS if system in lines]


def _anchor(code: str) -> str:
    return docs_link(code).partition("#")[2]


def _escape(text: str) -> str:
    """`<` and `>` outside code spans as entities, so a <placeholder> is not taken for HTML."""
    pieces = re.split(r"(`[^`]*`)", text)
    return "".join(
        p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in pieces
    )

"""`mailprobe probes [--codes | --explain CODE] [--format {text,json,markdown}]`: the installed
probes, every finding code they declare (code, default severity, meaning, declaring probes; in
markdown, docs/codes.md with each code's fix), or one code explained with its fix.

Exit status: 0; 2 for a broken plug-in (PluginError names the entry point) or an unknown
--explain code (the closest codes named).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `probes` subcommand to the CLI's subparsers."""
    probes = subparsers.add_parser(
        "probes", help="list the installed probes (--codes: the finding codes they declare)"
    )
    probes.add_argument(
        "--codes",
        action="store_true",
        help="list every declared finding code: severity, meaning, the probes declaring it",
    )
    probes.add_argument(
        "--explain",
        metavar="CODE",
        help="explain one finding code: meaning, severity, declaring probes, how to fix it",
    )
    probes.add_argument(
        "--format",
        default="text",
        choices=["text", "json", "markdown"],
        help="output format (--codes --format markdown is docs/codes.md)",
    )
    probes.set_defaults(func=cmd_probes)


def cmd_probes(args: argparse.Namespace) -> int:
    from probes import registry

    probes = registry.load_probes()
    if args.explain is not None:
        explain(registry.code_catalogue(probes), args.explain, args.format, sys.stdout)
    elif args.codes:
        render_codes(registry.code_catalogue(probes), args.format, sys.stdout)
    else:
        render_probes(probes, args.format, sys.stdout)
    return 0


def explain(catalogue: dict, code: str, fmt: str, out: TextIO) -> None:
    """One code's explanation; UsageError (exit 2) naming the closest codes when unknown."""
    from probes import code_docs
    from probes.codes import closest
    from probes.errors import UsageError

    entry = catalogue.get(code.strip().upper())
    if entry is None:
        near = closest(code.strip().upper(), catalogue)
        hint = f"closest: {', '.join(near)}" if near else "`mailprobe probes --codes` lists them"
        raise UsageError(f"--explain {code}: no installed probe declares this code ({hint})")
    if fmt == "json":
        json.dump(entry.to_json(), out, indent=2)
        out.write("\n")
    elif fmt == "markdown":
        out.write(code_docs.section(entry))
    else:
        out.write(code_docs.explain_text(entry))


def render_probes(probes: dict[str, type], fmt: str, out: TextIO) -> None:
    if fmt == "markdown":
        out.write("| probe | description |\n|---|---|\n")
        for pid, cls in sorted(probes.items()):
            out.write(f"| `{pid}` | {cls.description} |\n")  # type: ignore[attr-defined]
        return
    if fmt == "json":
        doc = [
            {"id": pid, "description": cls.description, "codes": list(cls.codes)}  # type: ignore[attr-defined]
            for pid, cls in sorted(probes.items())
        ]
        json.dump({"probes": doc}, out, indent=2)
        out.write("\n")
        return
    if not probes:
        print("no probes installed", file=out)
    for pid, cls in sorted(probes.items()):
        print(f"{pid:24} {cls.description}", file=out)  # type: ignore[attr-defined]


def render_codes(catalogue: dict, fmt: str, out: TextIO) -> None:
    """One line per code: CODE, default severity, meaning, [declaring probes]; in markdown,
    docs/codes.md (probes.code_docs)."""
    if fmt == "markdown":
        from probes import code_docs

        out.write(code_docs.markdown(catalogue))
        return
    if fmt == "json":
        json.dump({"codes": [entry.to_json() for entry in catalogue.values()]}, out, indent=2)
        out.write("\n")
        return
    if not catalogue:
        print("no probes installed", file=out)
        return
    width = max(len(code) for code in catalogue)
    for code, entry in catalogue.items():
        decl = entry.declaration
        print(
            f"{code:{width}}  {decl.severity.value:4}  {decl.meaning}  [{', '.join(entry.probes)}]",
            file=out,
        )

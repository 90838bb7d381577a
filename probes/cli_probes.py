"""`mailprobe probes [--codes] [--format {text,json}]`: the installed probes, or every finding
code they declare (code, default severity, meaning, declaring probes).

Exit status: 0; 2 for a broken plug-in (PluginError names the entry point).
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
    probes.add_argument("--format", default="text", choices=["text", "json"], help="output format")
    probes.set_defaults(func=cmd_probes)


def cmd_probes(args: argparse.Namespace) -> int:
    from probes import registry

    probes = registry.load_probes()
    if args.codes:
        render_codes(registry.code_catalogue(probes), args.format, sys.stdout)
    else:
        render_probes(probes, args.format, sys.stdout)
    return 0


def render_probes(probes: dict[str, type], fmt: str, out: TextIO) -> None:
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
    """One line per code: CODE, default severity, meaning, [declaring probes]."""
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

"""The layers of probes/ point one way: every import inside the package, read with `ast`, must be
allowed by the layer table in docs/architecture.md ("Layers"), which this test reads, so the
doc and the code cannot drift apart.

Rules, besides the table: a module may import its own layer, except that a probe module in
checks/ never imports another module of checks/ (probes are loaded from entry points, and
what they share lives in probekit/ or below); nothing in probes/ imports probes.checks; every
module of probes/ is in exactly one layer of the table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "probes"
DOC = ROOT / "docs" / "architecture.md"
MARK_START, MARK_END = "<!-- layers -->", "<!-- /layers -->"


def read_table() -> tuple[dict[str, str], dict[str, set[str]]]:
    """({module or package/: layer}, {layer: layers it may import}) from the doc."""
    text = DOC.read_text(encoding="utf-8")
    assert MARK_START in text and MARK_END in text, "docs/architecture.md lost its layer table"
    block = text.split(MARK_START, 1)[1].split(MARK_END, 1)[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in block.splitlines()
        if line.strip().startswith("|") and not set(line.strip()) <= set("|-: ")
    ][1:]  # the header row
    owner: dict[str, str] = {}
    raw_rules: dict[str, str] = {}
    for layer, modules, may in rows:
        for name in re.findall(r"`([^`]+)`", modules):
            assert name not in owner, f"{name} is in two layers of the table"
            owner[name] = layer
        raw_rules[layer] = may
    layers = set(raw_rules)
    rules: dict[str, set[str]] = {}
    for layer, may in raw_rules.items():
        words = set(re.findall(r"[a-z_]+", may))
        if may.startswith("all but"):
            rules[layer] = layers - (words - {"all", "but"})
        else:
            rules[layer] = words & layers
        unknown = words - layers - {"all", "but"}
        assert not unknown, f"layer {layer}: {sorted(unknown)} are not layers"
    return owner, rules


def unit_of(module: str) -> str:
    """ "probes.parse.dmarc" -> "parse/"; "probes.model" -> "model"."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1] + "/"
    return parts[1]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported probes module) for every import in the file, wherever it stands
    (inside functions and TYPE_CHECKING blocks too); relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from probes import checks` / `from probes.checks import dns_mx` name modules too
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.append((node.lineno, f"{base}.{alias.name}"))
    return [(line, mod) for line, mod in found if mod.startswith("probes.")]


MODULES = modules()
OWNER, RULES = read_table()


def layer_of(module: str) -> str | None:
    return OWNER.get(unit_of(module))


def test_the_table_names_real_modules_and_layers():
    units = {unit_of(m) for m in MODULES if m != "probes"}
    assert set(OWNER) <= units, f"the table names modules that do not exist: {set(OWNER) - units}"


def test_every_module_is_in_a_layer():
    missing = sorted({unit_of(m) for m in MODULES if m != "probes"} - set(OWNER))
    assert not missing, (
        f"{missing}: not in the layer table of docs/architecture.md; add each to the layer "
        "it belongs to"
    )


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m != "probes"))
def test_imports_follow_the_layers(name):
    own = layer_of(name)
    assert own is not None
    bad = []
    for line, target in imports_of(name, MODULES[name]):
        if target == "probes":
            continue
        other = layer_of(target)
        where = f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        if other is None:
            bad.append(f"{where} (in no layer)")
        elif target.startswith("probes.checks") and not name.startswith("probes.checks"):
            bad.append(f"{where}: probes are loaded from entry points, never imported")
        elif own == "checks" and other == "checks":
            bad.append(f"{where}: a probe never imports another probe module (use probekit/)")
        elif other != own and other not in RULES[own]:
            bad.append(f"{where}: layer {own} may not import layer {other}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_forbidden_import(tmp_path):
    """The rules bite: parse importing net, mail importing checks, a probe importing a probe."""
    assert "net" not in RULES["parse"] and "checks" not in RULES["mail"]
    assert "checks" not in RULES["lookup"] and "checks" not in RULES["net"]
    sample = tmp_path / "x.py"
    sample.write_text(
        "from probes.checks.dns_mx import DnsMx\nimport probes.net.dns\nfrom .spf import a\n",
        encoding="utf-8",
    )
    got = imports_of("probes.lookup.x", sample)
    assert got == [(1, "probes.checks.dns_mx"), (2, "probes.net.dns"), (3, "probes.lookup.spf")]
    assert layer_of("probes.checks.dns_mx") == "checks"
    assert layer_of("probes.parse.dmarc") == "parse"
    assert layer_of("probes.cli_run") == "cli"

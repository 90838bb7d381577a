"""Find installed probes and renderers through entry points, and select probes by glob.

Built-in probes and renderers register exactly as third-party ones do (pyproject.toml):

    [project.entry-points."mailprobe.probes"]
    "dns.spf" = "probes.checks.dns_spf:DnsSpf"      # entry-point name == probe id

Each probe class declares its finding codes (probes.codes); the registry checks the
declarations on load and lists them all (`code_catalogue`, `mailprobe probes --codes`).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any, TypeVar

from probes.codes import Code, codes_problem, declared
from probes.errors import PluginError, UsageError

PROBE_GROUP = "mailprobe.probes"
RENDERER_GROUP = "mailprobe.renderers"
PROBE_ID_RE = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+$")

# Used when the distribution's metadata is not installed (running from a source checkout);
# an installed entry point of the same name wins.
BUILTIN_RENDERERS = {
    "json": "probes.report.json_report:render",
    "text": "probes.report.text_report:render",
}

T = TypeVar("T")


def mailprobe_version() -> str:
    """The installed distribution's version; in a source checkout that is not installed, the
    one pyproject.toml declares (or "unknown"). What `--version` says, what a batch records and
    what a cluster's workers must have."""
    from importlib import metadata

    try:
        return metadata.version("mailprobe")
    except metadata.PackageNotFoundError:
        pass
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        with pyproject.open("rb") as f:
            return str(tomllib.load(f)["project"]["version"]) + "+source"
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _describe(ep: EntryPoint) -> str:
    return f"entry point {ep.name!r} = {ep.value!r} in group {ep.group!r}"


def _load(group: str) -> dict[str, tuple[EntryPoint, Any]]:
    """Load every entry point of `group`; duplicate names are an error naming both."""
    loaded: dict[str, tuple[EntryPoint, Any]] = {}
    for ep in entry_points(group=group):
        if ep.name in loaded:
            first = loaded[ep.name][0]
            if first.value == ep.value:
                continue  # the same object registered twice (e.g. two copies of one dist)
            raise PluginError(f"duplicate {_describe(ep)}: {ep.name!r} is already {first.value!r}")
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(f"cannot load {_describe(ep)}: {type(exc).__name__}: {exc}") from exc
        loaded[ep.name] = (ep, obj)
    return loaded


def probe_class_problem(obj: Any, name: str | None = None) -> str | None:
    """Why `obj` is not a valid probe class (registered as `name`), or None when it is."""
    if not isinstance(obj, type):
        return f"is a {type(obj).__name__}, not a class"
    probe_id = getattr(obj, "id", None)
    if not isinstance(probe_id, str):
        return "has no str attribute 'id'"
    if not PROBE_ID_RE.match(probe_id):
        return f"id {probe_id!r} does not match {PROBE_ID_RE.pattern} (e.g. 'dns.spf')"
    if name is not None and name != probe_id:
        return f"entry-point name {name!r} differs from the probe id {probe_id!r}"
    description = getattr(obj, "description", None)
    if not isinstance(description, str) or "\n" in description.strip():
        return "has no one-line str attribute 'description'"
    if not callable(getattr(obj, "run", None)):
        return "has no 'run' method"
    problem = codes_problem(getattr(obj, "codes", None))
    if problem:
        return problem
    return None


def load_probes() -> dict[str, type]:
    """Installed probe classes by id (empty when none are installed).

    Each must be a valid probe class with a valid code declaration, and a code two probes
    declare must be the same declaration (one meaning per code): else PluginError naming the
    entry point(s)."""
    probes: dict[str, type] = {}
    eps: dict[str, EntryPoint] = {}
    for name, (ep, obj) in _load(PROBE_GROUP).items():
        problem = probe_class_problem(obj, name)
        if problem:
            raise PluginError(f"invalid probe in {_describe(ep)}: {problem}")
        probes[name] = obj
        eps[name] = ep
    first: dict[str, tuple[str, Code]] = {}
    for name in sorted(probes):
        for code, declaration in declared(probes[name]).items():
            if code not in first:
                first[code] = (name, declaration)
            elif first[code][1] != declaration:
                other, theirs = first[code]
                raise PluginError(
                    f"invalid probe in {_describe(eps[name])}: it declares {code} as "
                    f"{declaration.severity.value} {declaration.meaning!r}, but "
                    f"{_describe(eps[other])} declares it as {theirs.severity.value} "
                    f"{theirs.meaning!r} (a code has one meaning: reuse its Code object)"
                )
    return dict(sorted(probes.items()))


@dataclass(frozen=True)
class DeclaredCode:
    """A finding code in the registry: its declaration and the probes that declare it."""

    declaration: Code
    probes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {**self.declaration.to_json(), "probes": list(self.probes)}


def code_catalogue(probes: Mapping[str, Any] | None = None) -> dict[str, DeclaredCode]:
    """Every code the given probes (id -> class or instance; default: the installed ones)
    declare, by code: its declaration and the ids of the probes declaring it."""
    if probes is None:
        probes = load_probes()
    found: dict[str, tuple[Code, list[str]]] = {}
    for probe_id in sorted(probes):
        for code, declaration in declared(probes[probe_id]).items():
            found.setdefault(code, (declaration, []))[1].append(probe_id)
    return {
        code: DeclaredCode(declaration, tuple(ids))
        for code, (declaration, ids) in sorted(found.items())
    }


@functools.cache
def installed_declarations() -> Mapping[str, Code]:
    """Every installed probe's code declarations, code -> Code (fix, absent), read once per
    process for the reports; empty when the probes cannot be loaded (a broken plugin must not
    stop a report being written)."""
    try:
        catalogue = code_catalogue()
    except Exception:
        return MappingProxyType({})
    return MappingProxyType({code: entry.declaration for code, entry in catalogue.items()})


def load_renderers() -> dict[str, Callable[..., Any]]:
    """Renderers by format name: `render(report, stream) -> None`."""
    renderers: dict[str, Callable[..., Any]] = {}
    for name, (ep, obj) in _load(RENDERER_GROUP).items():
        if not callable(obj):
            raise PluginError(f"invalid renderer in {_describe(ep)}: not callable")
        renderers[name] = obj
    for name, value in BUILTIN_RENDERERS.items():
        if name not in renderers:
            renderers[name] = EntryPoint(name=name, value=value, group=RENDERER_GROUP).load()
    return dict(sorted(renderers.items()))


def renderer_names() -> list[str]:
    """The installed formats' names, sorted, without loading a renderer (for --help)."""
    return sorted({ep.name for ep in entry_points(group=RENDERER_GROUP)} | set(BUILTIN_RENDERERS))


class InstalledFormats:
    """`str()` is the installed formats, comma-separated, looked up when printed: put on an
    argparse action as `formats`, `%(formats)s` in its help lists them only when --help asks."""

    def __str__(self) -> str:
        return ", ".join(renderer_names())


def _available_text(ids: Iterable[str]) -> str:
    listed = ", ".join(sorted(ids))
    return f"available: {listed}" if listed else "no probes are installed"


def select_probes(available: Mapping[str, T], globs: Sequence[str]) -> list[T]:
    """The probes whose id matches any shell-style glob (all when `globs` is empty), by id.

    A glob that matches nothing raises UsageError naming it and listing the available ids.
    """
    if not globs:
        return [available[probe_id] for probe_id in sorted(available)]
    chosen: set[str] = set()
    for glob in globs:
        matched = [probe_id for probe_id in available if fnmatch.fnmatchcase(probe_id, glob)]
        if not matched:
            raise UsageError(f"--probe {glob!r} matches no probe; {_available_text(available)}")
        chosen.update(matched)
    return [available[probe_id] for probe_id in sorted(chosen)]

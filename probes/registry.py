"""Find installed probes and renderers through entry points, and select probes by glob.

Built-in probes and renderers register exactly as third-party ones do (pyproject.toml):

    [project.entry-points."mailprobe.probes"]
    "dns.spf" = "probes.checks.dns_spf:DnsSpf"      # entry-point name == probe id
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

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
    return None


def load_probes() -> dict[str, type]:
    """Installed probe classes by id (empty when none are installed)."""
    probes: dict[str, type] = {}
    for name, (ep, obj) in _load(PROBE_GROUP).items():
        problem = probe_class_problem(obj, name)
        if problem:
            raise PluginError(f"invalid probe in {_describe(ep)}: {problem}")
        probes[name] = obj
    return dict(sorted(probes.items()))


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

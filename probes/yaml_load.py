"""YAML -> frozen dataclasses: the one loader of scenario files (probes.scenario) and lab specs
(probes.lab.spec).

A YAML document is composed once (`documents`), then read as plain data with the line of every
field path kept (`YamlDoc`). `build(cls, data, path)` maps a mapping onto a dataclass by its
type hints: unknown keys, wrong types (bool, int, float, str, lists as tuples, fixed-length
tuples, mappings, `X | None`, unions tried in order) and nested dataclasses are refused with a
FieldError naming the dotted field path (`tls.certificate`, `selectors[0].bits`); each front
end turns it into its own error with `YamlDoc.line(path)` (`FILE:LINE: field ...`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml


class FieldError(ValueError):
    """A value does not fit its field. `path` is the dotted field path ('' for the root)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class YamlSyntaxError(ValueError):
    """The text is not YAML. `line` is 1-based (None when unknown)."""

    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(f"invalid YAML: {problem}")
        self.line = line
        self.problem = problem


def documents(text: str) -> list[yaml.Node]:
    """The non-empty documents of `text`, composed (YamlSyntaxError when it is not YAML)."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, None) from None
    return [
        n
        for n in nodes
        if n is not None
        and not (isinstance(n, yaml.ScalarNode) and n.tag == "tag:yaml.org,2002:null")
    ]


class YamlDoc:
    """One YAML document: its plain data plus the line of every field path."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.start = node.start_mark.line + 1 if node is not None else 1
        self.lines: dict[str, int] = {}
        self.data: Any = None
        if node is None:
            return
        loader = yaml.SafeLoader("")
        try:
            self.data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise _syntax_error(exc, self.start) from None
        finally:
            loader.dispose()
        self._index(node, "")

    @classmethod
    def from_text(cls, text: str) -> YamlDoc:
        """The one document of `text` (an empty text: data None). YamlSyntaxError if not YAML."""
        nodes = documents(text)
        if len(nodes) > 1:
            raise YamlSyntaxError(nodes[1].start_mark.line + 1, "more than one document")
        return cls(nodes[0] if nodes else None)

    def _index(self, node: yaml.Node, path: str) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = f"{path}.{key.value}" if path else str(key.value)
                self.lines[sub] = key.start_mark.line + 1
                self._index(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, f"{path}[{i}]")

    def line(self, path: str) -> int:
        """The line of `path`, or of its nearest ancestor given in the file."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.start


def build(cls: type, data: Any, path: str = "", skip: frozenset[str] = frozenset()) -> Any:
    """An instance of dataclass `cls` from mapping `data` (None: all defaults)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise FieldError(path, f"expected a mapping, got {kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    kwargs = {}
    for key, value in data.items():
        fpath = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise FieldError(fpath, f"unknown field; known: {', '.join(fields)}")
        kwargs[key] = convert(hints[key], value, fpath)
    return cls(**kwargs)


def convert(tp: Any, value: Any, path: str) -> Any:
    """`value` as type `tp` (FieldError naming `path` when it does not fit)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, value, path)
            except FieldError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        return build(typing.cast(type, tp), value, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise FieldError(path, f"expected a list, got {kind(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise FieldError(path, f"expected a list of {len(args)} items, got {len(value)}")
        return tuple(
            convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin in (Mapping, dict) or tp is Mapping:
        if not isinstance(value, Mapping):
            raise FieldError(path, f"expected a mapping, got {kind(value)}")
        return {str(k): convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise FieldError(path, f"expected true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(path, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(path, f"expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise FieldError(path, f"expected a string, got {value!r}")
        return value
    raise FieldError(path, f"unsupported type {tp}")  # pragma: no cover


def to_plain(obj: Any) -> Any:
    """A dataclass (or tuple, mapping) as plain YAML-ready data: the inverse of `build`."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def kind(value: Any) -> str:
    """What a YAML value is, for errors: `mapping`, `list`, `null`, `str 'x'`."""
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def _syntax_error(exc: yaml.YAMLError, default_line: int | None) -> YamlSyntaxError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return YamlSyntaxError(mark.line + 1 if mark else default_line, problem)

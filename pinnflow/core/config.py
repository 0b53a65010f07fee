"""Config machinery shared by every solver: dataclass sections, YAML, `section.key=value` overrides, checks.

A solver's config is a dataclass deriving from `ConfigBase`; its nested sections are dataclasses deriving
from `Section`, each defined beside the code that reads it (the network section in `pinnflow.nn`, the
optimiser in `pinnflow.optim`, ...). Every class checks its own fields in `validate()` with `need`, raising
`ConfigError` naming the dotted key, so a bad value is caught when the config is built, before anything is
compiled.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "Section",
    "ConfigBase",
    "need",
    "coerce",
    "load_yaml",
    "is_number",
    "is_positive",
    "is_positive_int",
    "check_positive_ints",
    "check_name",
    "changed_keys",
    "check_types",
]


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and what is allowed."""


def need(cond: bool, key: str, msg: str) -> None:
    """Raise `ConfigError("config <key>: <msg>")` unless `cond`."""
    if not cond:
        raise ConfigError(f"config {key}: {msg}")


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_positive(v: Any) -> bool:
    return is_number(v) and v > 0


def is_positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def check_positive_ints(obj: Any, where: str, names: tuple[str, ...]) -> None:
    """Each of `names` on `obj` must be a positive integer (`where`: the section's dotted prefix)."""
    for k in names:
        v = getattr(obj, k)
        need(is_positive_int(v), f"{where}{k}", f"must be a positive integer, got {v!r}")


def check_name(registry, name: str, key: str) -> None:
    """`name` must be registered in `registry` (a `pinnflow.core.registry.Registry`); the error lists the choices."""
    need(name in registry, key, f"unknown {registry.kind} {name!r}; available: {', '.join(registry.names())}")


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def coerce(v: Any) -> Any:
    """YAML 1.1 reads `1e-3` as a string; turn such number-like strings into floats, recursively."""
    if isinstance(v, dict):
        return {k: coerce(x) for k, x in v.items()}
    if isinstance(v, list):
        return [coerce(x) for x in v]
    if isinstance(v, str) and _NUMBER.match(v.strip()):
        return float(v)
    return v


def load_yaml(path: str | Path) -> Any:
    """A YAML file's content with number-like strings coerced (`coerce`)."""
    return coerce(yaml.safe_load(Path(path).read_text()))


def changed_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts (sorted)."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += changed_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping",
          list: "a list", type(None): "null"}


def _conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """(ok, value converted to `hint`): ints for floats, integral floats such as 1e3 for ints; bools only
    for bools; unions try their members in order; `list[X]` checks every element."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(hint):
            ok, v = _conform(value, member)
            if ok:
                return True, v
        return False, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        (item,) = typing.get_args(hint) or (Any,)
        out = [_conform(v, item) for v in value]
        return all(ok for ok, _ in out), [v for _, v in out]
    if origin is dict or hint is dict:
        return isinstance(value, dict), value
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        return is_number(value), float(value) if is_number(value) else value
    return isinstance(value, hint), value


def _describe(hint: Any) -> str:
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    names = [_NAMES.get(typing.get_origin(a) or a, getattr(a, "__name__", str(a))) for a in args]
    return " or ".join(dict.fromkeys(names))


def check_types(obj: Any, where: str = "") -> None:
    """Check (and convert, e.g. 1e3 → 1000 for an int) every field of a config dataclass against its type
    annotation, recursing into sections; `ConfigError` names the dotted key, the expected type and the value."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        if dataclasses.is_dataclass(value):
            check_types(value, f"{where}{f.name}.")
            continue
        ok, converted = _conform(value, hint)
        need(ok, f"{where}{f.name}", f"must be {_describe(hint)}, got {value!r}")
        if converted is not value and converted != value or type(converted) is not type(value):
            setattr(obj, f.name, converted)


def _section_types(cls) -> dict[str, type]:
    """The fields of a dataclass whose type is itself a config dataclass (nested sections)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if isinstance(hints.get(f.name), type) and dataclasses.is_dataclass(hints[f.name])}


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(names)}")
    data = dict(data)
    for name, sub in _section_types(cls).items():
        if isinstance(data.get(name), dict):
            data[name] = _build(sub, data[name], name)
    return cls(**data)


@dataclasses.dataclass
class Section:
    """A config section; subclasses override `validate(where)` (`where`: the dotted prefix, e.g. "optim.")."""

    def validate(self, where: str = "") -> None:
        del where


@dataclasses.dataclass
class ConfigBase:
    """A solver's whole config: nested `Section`s, validated on construction; YAML and override support."""

    def __post_init__(self):
        for name, sub in _section_types(type(self)).items():
            if isinstance(getattr(self, name), dict):
                setattr(self, name, _build(sub, getattr(self, name), name))
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid field: types first (`check_types`), then each
        section's own checks in field order."""
        check_types(self)
        for name in _section_types(type(self)):
            getattr(self, name).validate(f"{name}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        return _build(cls, dict(data), "config")

    @classmethod
    def from_yaml(cls, path: str | Path):
        return cls.from_dict(cls._read_yaml(path))

    @classmethod
    def from_saved(cls, path: str | Path):
        """The config a run directory saved (`config.yaml`). Top-level keys it lacks because they were added
        after it was written take their `legacy` value (what such runs did), not today's default."""
        data = cls._read_yaml(path)
        for key, value in cls.legacy.items():
            data.setdefault(key, value)
        return cls.from_dict(data)

    @classmethod
    def _read_yaml(cls, path: str | Path) -> dict:
        try:
            data = load_yaml(path) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping at top level")
        return data

    #: top-level key -> the value runs saved before the key existed used (read by `from_saved`)
    legacy: typing.ClassVar[dict[str, typing.Any]] = {}

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    #: top-level keys whose value is a free mapping (new keys may be added by an override)
    free_mappings: typing.ClassVar[tuple[str, ...]] = ()

    def override(self, assignments: list[str]):
        """A new config with `section.key=value` assignments applied (values parsed as YAML)."""
        data = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.lr=1e-3")
            key, raw = item.split("=", 1)
            node, parts = data, key.strip().split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"override {item!r}: {p!r} is not a config section")
                node = node[p]
            if parts[-1] not in node and parts[0] not in self.free_mappings:
                raise ConfigError(f"override {item!r}: unknown key {key!r}; keys here: {', '.join(node)}")
            try:
                node[parts[-1]] = coerce(yaml.safe_load(raw))
            except yaml.YAMLError as err:
                raise ConfigError(f"override {item!r}: the value is not valid YAML: {err}") from None
        return type(self).from_dict(data)

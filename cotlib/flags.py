"""Command-line flags and config files from the config dataclasses: each setting is named, typed and defaulted once.

- :func:`add_flags` adds ``--field-name`` for every field of a dataclass (nested dataclasses flattened), each with
  default None, so the dataclass's own default stays the only one (the help text shows it);
- :func:`read_config` reads a JSON or TOML file of sections, ``{"generation": {...}, "limits": {...}}`` (a nested
  dataclass is a table inside its section: ``[generation.search]``), checking every key and value;
- :func:`build` makes the dataclass: its defaults (or a given base), then the file's values, then the flags given;
- :func:`as_config` turns dataclasses back into such a file, which reproduces them.

Config files hold settings, never secrets: a key named like ``*key``/``*token`` is refused, and
:func:`without_secrets` drops such entries from anything about to be published.
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import MISSING, Field, asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from cotlib.errors import ConfigError

T = TypeVar("T")
SECRET_NAME = re.compile(r"(key|token|secret|password|credentials?)$", re.IGNORECASE)
COMMAND = "command"  # a config file's note: the command line it was made for (skipped when read)


def _fields(cls: type) -> list[tuple[Field, Any]]:
    hints = get_type_hints(cls)  # the modules use `from __future__ import annotations`: hints are strings until now
    return [(f, hints[f.name]) for f in fields(cls)]


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """The type without None, and whether None is allowed: ``int | None`` → ``(int, True)``."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), len(args) < len(get_args(hint))
    return hint, False


def _default(f: Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def add_flags(parser: argparse.ArgumentParser, cls: type, section: str, notes: Mapping[str, str] | None = None) -> None:
    """A ``--field-name`` flag for each field of the dataclass ``cls``, in a help group named after its config-file
    section; ``notes`` adds a few words to a flag's help. Bools get ``--x/--no-x``, tuples take several values,
    dict fields are config-file only."""
    notes = notes or {}
    typed = [(f, _unwrap(hint)[0]) for f, hint in _fields(cls)]
    only_in_file = [f.name for f, kind in typed if get_origin(kind) is dict]
    doc = (cls.__doc__ or "").strip().split("\n")[0]
    group = parser.add_argument_group(f"[{section}] {cls.__name__}", doc + (
        f" Config file only: {', '.join(only_in_file)}." if only_in_file else ""))
    for f, kind in typed:
        if is_dataclass(kind):
            add_flags(parser, kind, f"{section}.{f.name}", notes)
            continue
        if f.name in only_in_file:
            continue
        default = _default(f)
        shown = " ".join(default) if isinstance(default, tuple) else "unset" if default is None else default
        text = " ".join(filter(None, [notes.get(f.name), f"(default: {shown})".replace("%", "%%")]))
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif get_origin(kind) is tuple:
            item = get_args(kind)[0]
            group.add_argument(flag, nargs="+", type=item, default=None, help=text, metavar=_metavar(item))
        else:
            group.add_argument(flag, type=kind, default=None, help=text, metavar=_metavar(kind))


def _metavar(kind: type) -> str:
    return "TEXT" if kind is str else kind.__name__.upper()


def build(cls: type[T], args: argparse.Namespace, values: Mapping[str, Any] | None = None, base: T | None = None) -> T:
    """``cls`` from ``base`` (``cls()`` when None), then a config file's ``values`` (as :func:`read_config` returns
    them), then the flags that were given; a nested dataclass is built the same way from its own table."""
    values = values or {}
    base = cls() if base is None else base
    changes: dict[str, Any] = {}
    for f, hint in _fields(cls):
        kind = _unwrap(hint)[0]
        given = getattr(args, f.name, None)
        if is_dataclass(kind):
            changes[f.name] = build(kind, args, values.get(f.name), getattr(base, f.name))
        elif given is not None:
            changes[f.name] = tuple(given) if get_origin(kind) is tuple else given
        elif f.name in values:
            changes[f.name] = values[f.name]
    return replace(base, **changes)


def read_config(path: str | Path, sections: Mapping[str, type]) -> dict[str, Any]:
    """The sections of a config file (TOML if its name ends in ``.toml``, else JSON), each checked against its
    dataclass: an unknown section or key, a secret, or a value of the wrong type raises :class:`ConfigError`. The
    file's ``command`` note, if any, comes back as it is."""
    path = Path(path)
    kind = "TOML" if path.suffix == ".toml" else "JSON"
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    except ValueError as err:  # JSONDecodeError and TOMLDecodeError
        raise ConfigError(f"{path}: not valid {kind} ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected sections ({', '.join(sections)}), got {type(data).__name__}")
    unknown = sorted(set(data) - set(sections) - {COMMAND})
    if unknown:
        raise ConfigError(f"{path}: unknown section {unknown[0]!r} (known: {', '.join(sections)})")
    if not isinstance(data.get(COMMAND, ""), str):
        raise ConfigError(f"{path}: {COMMAND!r} must be the text of a command line")
    checked = {name: _check(sections[name], data[name], f"{path}: [{name}]") for name in sections if name in data}
    return {COMMAND: data[COMMAND], **checked} if COMMAND in data else checked


def _check(cls: type, table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of settings, got {table!r}")
    hints = {f.name: hint for f, hint in _fields(cls)}
    for key in table:
        if SECRET_NAME.search(key):
            raise ConfigError(f"{where}: {key!r}: config files never hold keys or tokens; set it in the environment "
                              "or in .env instead")
        if key not in hints:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(hints)})")
    return {key: _value(value, hints[key], f"{where} {key}") for key, value in table.items()}


def _value(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the field's type (an int for a float, a list for a tuple), or :class:`ConfigError`."""
    kind, optional = _unwrap(hint)
    origin, args = get_origin(kind), get_args(kind)
    if value is None and optional:
        return None
    if is_dataclass(kind):
        return _check(kind, value, where)
    if origin is tuple and isinstance(value, list | tuple):
        types_ = args[:1] * len(value) if args[-1:] == (Ellipsis,) else args
        if len(types_) == len(value):
            return tuple(_value(v, t, where) for v, t in zip(value, types_))
    elif origin is dict and isinstance(value, dict):
        return {k: _value(v, args[1], f"{where}.{k}") for k, v in value.items()}
    elif origin is None and not isinstance(value, bool) and kind is float and isinstance(value, int | float):
        return float(value)
    elif origin is None and isinstance(kind, type) and isinstance(value, kind):
        if (kind is bool) == isinstance(value, bool):  # True is an int to Python, not to a config file
            return value
    raise ConfigError(f"{where}: expected {hint if origin or optional else kind.__name__}, got {value!r}")


def as_config(**sections: Any) -> dict[str, Any]:
    """Dataclass instances as the sections of a config file (JSON-ready), e.g. ``as_config(limits=RunLimits())``."""
    return json.loads(json.dumps({name: asdict(obj) for name, obj in sections.items()}))


def without_secrets(value: Any) -> Any:
    """``value`` without the entries whose name looks like a secret (``api_key``, ``hf_token``, ...), at any depth."""
    if isinstance(value, dict):
        return {k: without_secrets(v) for k, v in value.items() if not SECRET_NAME.search(str(k))}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value

"""``import.toml``: what matching by name cannot know, said once, in a file kept with the data.

    timezone = "Europe/Paris"        # the zone naive DATETIME text is in (--timezone wins)
    skip = ["audit_log"]             # SQLite tables left out on purpose

    [tables.todo]
    target = "tasks"                 # the PostgreSQL table (default: the same name)
    drop = ["legacy_flag"]           # SQLite columns left out on purpose
    rename = { done = "finished" }   # SQLite column = PostgreSQL column
    convert = { created = "unix-seconds", price = "round" }   # how a column's values are read

Every key is a SQLite name. A number in a DATETIME column is refused unless ``convert`` says
what it counts: guessing between Unix seconds and Julian days would be coercing silently. So is
a number with more decimal places than its numeric(p, s) column keeps, unless ``convert`` says
``"round"`` for it (rounded half away from zero, as PostgreSQL rounds).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from migrail.core.errors import FatalError

# How the values of a column are read, where its target type alone cannot tell: the first
# four for timestamp columns, "round" for numeric(p, s) ones.
READINGS = ("iso", "unix-seconds", "unix-milliseconds", "julian-day", "round")


@dataclass(frozen=True)
class TableMap:
    """One SQLite table's entry: its target, dropped columns, renames and readings."""

    target: str
    drop: frozenset[str] = frozenset()
    rename: Mapping[str, str] = field(default_factory=dict)
    convert: Mapping[str, str] = field(default_factory=dict)

    def target_column(self, column: str) -> str:
        return self.rename.get(column, column)


@dataclass(frozen=True)
class ImportMap:
    """The whole mapping; a table without an entry keeps its name and its columns' names."""

    timezone: ZoneInfo | None = None
    skip: frozenset[str] = frozenset()
    tables: Mapping[str, TableMap] = field(default_factory=dict)
    source: str = "import.toml"

    def table(self, name: str) -> TableMap:
        return self.tables.get(name) or TableMap(target=name)


def load_map(path: Path | None, timezone: str | None) -> ImportMap:
    """The mapping in ``path`` (none: names as they are), ``timezone`` overriding its zone."""
    table: Mapping[str, Any] = {}
    if path is not None:
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise FatalError(f"cannot read the mapping {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise FatalError(f"{path} is not valid TOML: {exc}") from None
    where = str(path or "import.toml")
    _known(table, {"timezone", "skip", "tables"}, where)
    zone_name = timezone or _text(table, "timezone", where)
    tables = table.get("tables", {})
    if not isinstance(tables, Mapping):
        raise FatalError(f"{where}: tables must be a table of SQLite tables ([tables.NAME])")
    return ImportMap(
        timezone=_zone(zone_name) if zone_name else None,
        skip=frozenset(_names(table, "skip", where)),
        tables={name: _table_map(name, entry, where) for name, entry in tables.items()},
        source=where,
    )


def _table_map(name: str, entry: object, where: str) -> TableMap:
    here = f"{where} [tables.{name}]"
    if not isinstance(entry, Mapping):
        raise FatalError(f"{here} must be a table")
    _known(entry, {"target", "drop", "rename", "convert"}, here)
    convert = _pairs(entry, "convert", here)
    for column, reading in convert.items():
        if reading not in READINGS:
            raise FatalError(
                f"{here} convert.{column} = {reading!r} is not a reading migrail knows",
                hint=f"one of: {', '.join(READINGS)}",
            )
    return TableMap(
        target=_text(entry, "target", here) or name,
        drop=frozenset(_names(entry, "drop", here)),
        rename=_pairs(entry, "rename", here),
        convert=convert,
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FatalError(
            f"unknown time zone {name!r}", hint="an IANA name such as UTC or Europe/Paris"
        ) from None


def _known(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise FatalError(
            f"unknown key(s) in {where}: {', '.join(unknown)}",
            hint=f"known keys: {', '.join(sorted(keys))}",
        )


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise FatalError(f"{where} {key} must be a string, not {value!r}")
    return value


def _names(table: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FatalError(f"{where} {key} must be a list of names, not {value!r}")
    return value


def _pairs(table: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = table.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise FatalError(f"{where} {key} must be a table of names to names, not {value!r}")
    return dict(value)

"""The SQLite tables and columns matched by name (or by the mapping) against the target's, and
what does not match, and why: all of it known, and shown, before a row is written.

A problem stops the import (a column with nowhere to go would be lost silently); a note is said
and does not (a target column left to its default, a table skipped on purpose).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migrail.sqlite_import.conversions import Conversion, conversion
from migrail.sqlite_import.verify import Rendering, rendering

if TYPE_CHECKING:
    from collections.abc import Mapping

    from migrail.sqlite_import.catalog import TargetColumn, TargetTable
    from migrail.sqlite_import.mapping import ImportMap, TableMap
    from migrail.sqlite_import.source import SourceTable


@dataclass(frozen=True)
class ColumnPlan:
    """A SQLite column, the target column it loads into, and how."""

    source: str
    target: TargetColumn
    conversion: Conversion
    rendering: Rendering | None
    # What the conversion was made from, for a worker process to make it again.
    reading: str | None = None
    zone: str | None = None


@dataclass(frozen=True)
class TablePlan:
    """A SQLite table and the target table it loads into, column by column."""

    source: SourceTable
    target: TargetTable
    columns: tuple[ColumnPlan, ...]
    notes: tuple[str, ...] = ()

    @property
    def unchecked(self) -> list[str]:
        """Loaded columns the checksum leaves out (their type's rendering is PostgreSQL's)."""
        return [c.target.name for c in self.columns if c.rendering is None]


@dataclass
class Match:
    """Tables to load, parents first; problems that stop the import; notes that do not."""

    tables: list[TablePlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def match(
    sources: list[SourceTable], targets: Mapping[str, TargetTable], mapping: ImportMap
) -> Match:
    """Pair every SQLite table with its target, as the mapping or the names say."""
    found = Match()
    known = {table.name for table in sources}
    for name in sorted((set(mapping.tables) | mapping.skip) - known):
        found.problems.append(f"{mapping.source} names table {name}, which the SQLite file lacks")
    fed: dict[str, str] = {}
    plans = []
    for source in sources:
        if source.name in mapping.skip:
            found.notes.append(f"{source.name}: skipped ({mapping.source} skip)")
            continue
        entry = mapping.table(source.name)
        target = targets.get(entry.target)
        if target is None:
            found.problems.append(
                f"{source.name}: no table {entry.target} in PostgreSQL; name its target "
                f"([tables.{toml_key(source.name)}] target = ...) or skip it (skip = [...])"
            )
            continue
        if target.name in fed:
            found.problems.append(
                f"{source.name}: {fed[target.name]} loads into {target.name} already"
            )
            continue
        fed[target.name] = source.name
        plans.append(_table(source, target, entry, mapping, found.problems))
    if not plans and not found.problems:
        found.problems.append(
            "the SQLite file has no table to import (skipped ones aside); check the path in the URL"
        )
    found.tables = _parents_first(plans, found.notes)
    return found


def _table(
    source: SourceTable,
    target: TargetTable,
    entry: TableMap,
    mapping: ImportMap,
    problems: list[str],
) -> TablePlan:
    where = f"[tables.{toml_key(source.name)}]"
    names = {column.name for column in source.columns}
    for key, given in (("drop", entry.drop), ("rename", entry.rename), ("convert", entry.convert)):
        for unknown in sorted(set(given) - names):
            problems.append(f"{source.name}: {where} {key} names {unknown}, not a SQLite column")
    columns, notes = [], []
    # Target columns something in the file is meant for, loaded or not: one with a problem is
    # reported once, as that problem, never again as missing from the file.
    claimed: dict[str, str] = {}
    for column in source.columns:
        if column.name in entry.drop:
            notes.append(f"{source.name}.{column.name}: dropped ({mapping.source} drop)")
            continue
        wanted = entry.target_column(column.name)
        if wanted in claimed:
            problems.append(
                f"{source.name}.{column.name}: {target.name}.{wanted} is loaded from "
                f"{source.name}.{claimed[wanted]} already; rename or drop one of them ({where})"
            )
            continue
        claimed[wanted] = column.name
        into = target.column(wanted)
        if into is None or into.generated:
            why = "is generated" if into is not None else "does not exist"
            problems.append(
                f"{source.name}.{column.name}: {target.name}.{wanted} {why}; rename it "
                f"({where} rename = {{{toml_key(column.name)} = ...}}) or drop it (drop = [...])"
            )
            continue
        reading = entry.convert.get(column.name)
        problem = _reading_problem(into, reading, mapping, f"{source.name}.{column.name}")
        if problem:
            problems.append(problem)
            continue
        plan = conversion(column, into, reading, mapping.timezone)
        zone = mapping.timezone.key if mapping.timezone else None
        columns.append(ColumnPlan(column.name, into, plan, rendering(into), reading, zone))
    for rest in target.columns:
        if rest.name in claimed or rest.generated:
            continue
        if rest.not_null and not rest.has_default:
            problems.append(
                f"{target.name}.{rest.name} is NOT NULL without a default, and no column of "
                f"{source.name} loads into it ({where} rename = {{... = {json.dumps(rest.name)}}})"
            )
        else:
            notes.append(f"{target.name}.{rest.name}: not in {source.name}, left to its default")
    return TablePlan(source, target, tuple(columns), tuple(notes))


def _reading_problem(
    into: TargetColumn, reading: str | None, mapping: ImportMap, where: str
) -> str | None:
    if reading == "round":
        if into.base != "numeric" or into.scale is None:
            return f"{where}: convert = 'round' is for numeric(p, s) columns, not {into.type}"
        return None
    if reading is not None and into.base not in ("timestamptz", "timestamp"):
        return f"{where}: convert = {reading!r} is for timestamp columns, not {into.type}"
    if reading in (None, "iso") and into.base == "timestamptz" and mapping.timezone is None:
        return (
            f"{where}: naive date-times need the zone they were written in: --timezone ZONE, "
            f'or timezone = "..." in {mapping.source}'
        )
    return None


def toml_key(name: str) -> str:
    """``name`` as a key of import.toml: bare where TOML allows it, quoted otherwise (a table
    named ``Order Items`` is ``[tables."Order Items"]``), so a hint can be pasted as it is."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name, ensure_ascii=False)


def _parents_first(plans: list[TablePlan], notes: list[str]) -> list[TablePlan]:
    """The tables in an order where each comes after the tables its foreign keys reference."""
    waiting = {plan.target.name: plan for plan in plans}
    ordered: list[TablePlan] = []
    while waiting:
        ready = [
            plan
            for name, plan in sorted(waiting.items())
            if not set(plan.target.parents) & set(waiting)
        ]
        if not ready:  # a cycle: no order satisfies it, and the checks at each COPY will say
            notes.append(
                "foreign keys form a cycle between "
                + ", ".join(sorted(waiting))
                + ": loaded by name"
            )
            ready = [waiting[name] for name in sorted(waiting)]
        for plan in ready:
            ordered.append(waiting.pop(plan.target.name))
    return ordered

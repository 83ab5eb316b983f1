"""Autogenerate's differences as short lines people read: ``+ column tasks.priority (INTEGER)``."""

from __future__ import annotations

from typing import Any

_SIGNS = {"add": "+", "remove": "-", "modify": "~"}


def describe(diff: Any) -> str:
    """One line for one difference from ``compare_metadata`` (a tuple, or a list of them)."""
    if isinstance(diff, list):
        return "; ".join(describe(part) for part in diff)
    kind, *rest = diff
    action, _, what = kind.partition("_")
    sign = _SIGNS.get(action, "~")
    if kind in ("add_table", "remove_table"):
        table = rest[0]
        return f"{sign} table {table.name} ({len(table.columns)} columns)"
    if kind in ("add_column", "remove_column"):
        _schema, table, column = rest
        return f"{sign} column {table}.{column.name} ({pg_type(column.type)})"
    if kind in ("add_fk", "remove_fk"):
        key = rest[0]
        columns = ", ".join(key.column_keys)
        return f"{sign} foreign key {key.parent.name}({columns}) -> {key.referred_table.name}"
    if action == "modify":
        _schema, table, column, _info, old, new = rest
        if what == "type":
            return f"~ column {table}.{column}: type {pg_type(old)} -> {pg_type(new)}"
        return f"~ column {table}.{column}: {what} {old!r} -> {new!r}"
    named = next((getattr(item, "name", None) for item in rest if hasattr(item, "name")), None)
    return f"{sign} {what.replace('_', ' ')} {named or ''}".rstrip()


def pg_type(type_: Any) -> str:
    """The type as PostgreSQL names it (``TIMESTAMP WITH TIME ZONE``, not SQLAlchemy's
    ``DATETIME``), which is what the SQL and the database say."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.exc import CompileError

    try:
        return str(type_.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    except (CompileError, AttributeError, NotImplementedError):
        return str(type_)


def describe_all(diffs: list[Any]) -> list[str]:
    return [describe(diff) for diff in diffs]

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


# The naming convention SQLAlchemy's documentation gives: every constraint named from its table
# and columns, as the downgrade's ``drop_constraint`` needs.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
_KINDS = {"UniqueConstraint": "unique constraint", "ForeignKeyConstraint": "foreign key"}


def unnamed_constraints(diffs: list[Any]) -> list[str]:
    """A warning for each constraint the revision adds to an existing table without a name.

    Alembic writes it as ``op.create_unique_constraint(None, ...)``: PostgreSQL names it, and the
    downgrade's ``op.drop_constraint(None, ...)`` cannot run. A naming convention on the models'
    ``MetaData`` names every constraint the same way in the models, the revision and the database.
    """
    found = []
    for diff in _flat(diffs):
        kind, *rest = diff
        constraint = rest[0] if kind in ("add_constraint", "add_fk") and rest else None
        what = _KINDS.get(type(constraint).__name__)
        if what is None or getattr(constraint, "name", None) is not None:
            continue
        table = constraint.table.name  # type: ignore[union-attr]
        columns = ", ".join(column.name for column in constraint.columns)  # type: ignore[union-attr]
        found.append(f"{table} gets a {what} on ({columns}) without a name")
    return found


def _flat(diffs: list[Any]) -> list[tuple[Any, ...]]:
    """``compare_metadata`` gives a list per modified column: one tuple per difference here."""
    return [part for diff in diffs for part in (diff if isinstance(diff, list) else [diff])]

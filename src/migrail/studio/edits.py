"""Edits of one row, each its own transaction, and optimistic: the ``WHERE`` holds the row's key
and every column's old text (as the page read it), so a row changed or deleted since matches
nothing, and the edit is reported as a conflict, never written over what another wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from psycopg import sql

from migrail.studio.database import cursor
from migrail.studio.rows import (
    CTID,
    cast_param,
    column_sql,
    identifier,
    key_columns,
    read_row,
    row_compare,
    table_sql,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.studio.catalog import Column, TableInfo


class RowConflict(Exception):
    """The row was changed or deleted since the page showing it was read."""

    def __init__(self, message: str, current: tuple[str | None, ...] | None) -> None:
        super().__init__(message)
        self.current = current


def _matches(
    table: TableInfo,
    columns: list[Column],
    key: Sequence[str | None],
    old: Mapping[str, str | None],
) -> tuple[sql.Composable, list[str | None]]:
    """The row by its key, and only while every column still holds its old text."""
    names = key_columns(table, columns)
    types = {c.name: c.type for c in columns} | {CTID: "tid"}
    conditions = [row_compare(names, types, sql.SQL("="))]
    params: list[str | None] = list(key)
    for column, value in old.items():
        conditions.append(sql.SQL("{}::text IS NOT DISTINCT FROM %s").format(identifier(column)))
        params.append(value)
    return sql.SQL(" AND ").join(conditions), params


def update_row(
    connection: Connection,
    table: TableInfo,
    columns: list[Column],
    key: Sequence[str | None],
    old: Mapping[str, str | None],
    new: Mapping[str, str | None],
) -> None:
    """Set the columns whose value changed, on the row as it was read; a RowConflict where it
    changed or went since."""
    types = {c.name: c.type for c in columns}
    changed = {name: value for name, value in new.items() if value != old.get(name)}
    if not changed:
        return
    match, params = _matches(table, columns, key, old)
    query = sql.SQL("UPDATE {} SET {} WHERE {}").format(
        table_sql(table),
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(identifier(name), cast_param(name, types)) for name in changed
        ),
        match,
    )
    _change_one(connection, table, columns, key, query, [*changed.values(), *params], "saved")


def delete_row(
    connection: Connection,
    table: TableInfo,
    columns: list[Column],
    key: Sequence[str | None],
    old: Mapping[str, str | None],
) -> None:
    """Delete the row as it was read; a RowConflict where it changed or went since."""
    match, params = _matches(table, columns, key, old)
    query = sql.SQL("DELETE FROM {} WHERE {}").format(table_sql(table), match)
    _change_one(connection, table, columns, key, query, params, "deleted")


def _change_one(
    connection: Connection,
    table: TableInfo,
    columns: list[Column],
    key: Sequence[str | None],
    query: sql.Composed,
    params: Sequence[str | None],
    done: str,
) -> None:
    with cursor(connection) as cur:
        cur.execute(query, params)
        changed = cur.rowcount
    if changed == 1:
        return
    current = read_row(connection, table, columns, key)
    if current is None and key_columns(table, columns) == [CTID]:
        raise RowConflict(
            f"nothing was {done}: the row was changed or deleted since you read it (a table "
            "without a primary key finds a row by its place, which every change moves)",
            None,
        )
    if current is None:
        raise RowConflict(f"nothing was {done}: the row was deleted since you read it", None)
    raise RowConflict(
        f"nothing was {done}: the row was changed since you read it (its values now are "
        "shown); read them, then try again",
        current,
    )


def insert_row(
    connection: Connection,
    table: TableInfo,
    columns: list[Column],
    values: Mapping[str, str | None],
) -> list[str | None]:
    """Insert a row (columns left out take their defaults); its key, to show it."""
    types = {c.name: c.type for c in columns}
    key = key_columns(table, columns)
    returning = sql.SQL(", ").join(sql.SQL("{}::text").format(column_sql(k)) for k in key)
    if values:
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            table_sql(table),
            sql.SQL(", ").join(identifier(name) for name in values),
            sql.SQL(", ").join(cast_param(name, types) for name in values),
        )
    else:
        query = sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table_sql(table))
    if key:
        query = sql.SQL("{} RETURNING {}").format(query, returning)
    with cursor(connection) as cur:
        cur.execute(query, list(values.values()))
        return list(cur.fetchone() or ()) if key else []

"""A table's indexes set aside while it is loaded empty, and built again after it, by one sort
each, in the same transaction: a million rows inserted one by one into a btree cost more than
the btree built once from them, as pg_restore and pgloader build theirs.

Only indexes that come back as they were: a primary key or unique constraint (its index named
as the constraint), or a plain index, that no foreign key references, with no comment, no
tablespace of its own, not the clustered one, not the replica identity. Everything else stays
in place and is kept up to date during the load. A duplicate key found as a unique index is
built fails the build as the insert would have failed: the caller's savepoint undoes the drop,
and the table is loaded again with its indexes, row by row where refused, to name the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from migrail.sqlite_import.target import PgConnection

_ASIDE = """
SELECT ic.relname, c.conname, pg_get_constraintdef(c.oid), pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
WHERE i.indrelid = %s::regclass AND i.indisvalid AND i.indisready AND i.indislive
  AND NOT i.indisclustered AND NOT i.indisreplident AND ic.reltablespace = 0
  AND (SELECT relkind FROM pg_class WHERE oid = i.indrelid) = 'r'
  AND (c.oid IS NULL OR (c.contype IN ('p', 'u') AND c.conname = ic.relname
       AND obj_description(c.oid, 'pg_constraint') IS NULL))
  AND obj_description(i.indexrelid, 'pg_class') IS NULL
  AND NOT EXISTS (SELECT FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
ORDER BY ic.relname"""


@dataclass(frozen=True)
class _Index:
    """An index as it is made again: a constraint's definition, or CREATE INDEX."""

    name: str
    constraint: str | None
    definition: str


def set_aside(connection: PgConnection, table: tuple[str, str]) -> list[_Index]:
    """The indexes of ``table`` that can be dropped and built again, dropped; none if a
    reader holds the table (the drop's lock would wait past lock_timeout)."""
    found = [
        _Index(str(name), None if conname is None else str(conname), str(cdef or idef))
        for name, conname, cdef, idef in connection.execute(
            _ASIDE, (sql.Identifier(*table).as_string(connection),)
        ).fetchall()
    ]
    if not found:
        return []
    try:
        with connection.transaction():
            for index in found:
                connection.execute(_drop(table, index))
    except psycopg.errors.LockNotAvailable:
        return []
    return found


def build_again(connection: PgConnection, table: tuple[str, str], indexes: list[_Index]) -> None:
    """Each index set aside, built from the rows now in the table."""
    for index in indexes:
        definition = sql.SQL(index.definition)  # as the catalog printed it
        if index.constraint is None:
            connection.execute(definition)
            continue
        connection.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(*table), sql.Identifier(index.constraint), definition
            )
        )


@contextmanager
def built_after(connection: PgConnection, table: tuple[str, str]) -> Iterator[None]:
    """Load the body into ``table`` without the indexes that can be built after it."""
    indexes = set_aside(connection, table)
    yield
    build_again(connection, table, indexes)


def _drop(table: tuple[str, str], index: _Index) -> sql.Composed:
    if index.constraint is not None:
        return sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(*table), sql.Identifier(index.constraint)
        )
    return sql.SQL("DROP INDEX {}").format(sql.Identifier(table[0], index.name))

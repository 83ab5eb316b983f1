"""INVALID indexes: what a failed ``CREATE INDEX CONCURRENTLY`` leaves behind.

A concurrent build that fails (duplicates for a unique index, a lock wait, a cancel) leaves its
index in the catalog with ``pg_index.indisvalid = false``: queries do not use it, and a unique one
enforces nothing. ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` of the same name then succeeds
without building anything, so a retried revision looks applied while its index is not there.
Nothing else says so; this reads it from the catalog.

An index of a partitioned table (``relkind 'I'``) is no build: made ``ON ONLY`` the parent, it
is INVALID until an index of every partition is attached to it, PostgreSQL's way to index a
partitioned table without a long lock, often over several revisions. It is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_INVALID = """
    SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT i.indisvalid AND c.relkind <> 'I' {in_progress}
    ORDER BY 1"""
# ``schema.name`` of every INVALID index, as one value of a select list: a caller that sends a
# statement anyway reads it there (``still_invalid`` then leaves out those being built).
INVALID = f"ARRAY({_INVALID.format(in_progress='')})"
# A build running right now in another session is not valid yet either (PostgreSQL 12 and later
# say which): it is not a leftover. Asked only when an INVALID index is there at all.
_NOT_BUILDING = (
    "AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index p"
    " WHERE p.index_relid = i.indexrelid)"
)


def still_invalid_query(major: int) -> str:
    """The query of ``schema.name`` of every INVALID index but those being built now, on a
    server of version ``major``: for a caller that asks the server itself to act on it (a
    function that fails the transaction when the list is not empty)."""
    return _INVALID.format(in_progress=_NOT_BUILDING if major >= 12 else "")


def invalid_indexes(connection: Connection) -> list[str]:
    """``schema.name`` of every INVALID index in the database, but those being built now."""
    from sqlalchemy import text

    return still_invalid(connection, connection.execute(text(f"SELECT {INVALID}")).scalar_one())


def still_invalid(connection: Connection, found: Sequence[str]) -> list[str]:
    """Of the INVALID indexes ``found`` (read through ``INVALID``), those not being built now."""
    from sqlalchemy import text

    names = [str(name) for name in found]
    major = (connection.dialect.server_version_info or (0,))[0]
    if not names or int(major) < 12:
        return names
    left = connection.execute(text(still_invalid_query(int(major))))
    return [str(name) for name in left.scalars()]

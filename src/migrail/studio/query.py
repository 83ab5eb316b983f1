"""Custom SQL from the query box: one statement, under a statement_timeout, at most a few
hundred rows shown.

The statement is prepared (the extended protocol), which takes exactly one statement:
``COMMIT; UPDATE ...`` cannot end the read-only transaction of a protected environment and run
on outside it.

A query runs as the cursor of a ``DECLARE``, and only the rows shown are fetched: read whole,
``SELECT`` of a cross join held gigabytes in the studio until its timeout, for 500 rows shown.
On an unprotected environment the rest of the rows are then computed and dropped in the
database (``MOVE FORWARD ALL``), as psql would compute them: ``SELECT backfill(id) FROM t``
calls the function for every row, and the count is exact. What a cursor cannot hold (a
``WITH`` that writes, ``SELECT ... INTO``) runs as typed there, from a savepoint, and so does
any other statement.

On a protected environment the statement must be a query: PostgreSQL's grammar allows a
cursor only for ``SELECT``, ``VALUES``, ``TABLE`` and ``WITH`` (``EXPLAIN`` and ``SHOW`` run as
they are, and so do ``INSERT``, ``UPDATE``, ``DELETE`` and ``MERGE``, which the read-only
transaction refuses). A read-only transaction
alone lets through what writes outside the tables: ``COPY ... TO PROGRAM`` runs a shell command
on the database's host, ``LOCK TABLE`` queues every write behind it, ``CHECKPOINT``,
``ANALYZE``, ``NOTIFY``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrail.studio.database import WriteRefused, cursor

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import Connection

ROW_LIMIT = 500
TIMEOUT = "10s"
# What a protected environment runs as typed: a plan and a setting, which only read, and the
# writes to tables, which its read-only transaction refuses in PostgreSQL's own words.
_AS_TYPED = re.compile(r"(?i)(explain|show|insert|update|delete|merge)\b")
_CURSOR = "DECLARE studio_query NO SCROLL CURSOR FOR "


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[str | None, ...]]
    status: str  # PostgreSQL's command tag: SELECT 3, UPDATE 1
    truncated: bool  # more rows than the limit: the first are shown


def run_query(
    connection: Connection, statement: str, limit: int = ROW_LIMIT, *, query_only: bool = False
) -> Result:
    """Run ``statement`` in the request's transaction; rows as PostgreSQL's text. The caller
    commits (an unprotected environment) or rolls back. ``query_only``: a protected
    environment's, where anything but a query is refused."""
    import psycopg

    with cursor(connection) as cur:
        as_text(cur)
        if query_only and not _AS_TYPED.match(statement.lstrip()):
            return _read(cur, statement, limit, whole=False)
        if not _AS_TYPED.match(statement.lstrip()):
            cur.execute(b"SAVEPOINT studio_query")
            try:
                return _read(cur, statement, limit, whole=True)
            except (WriteRefused, psycopg.errors.SyntaxError, psycopg.errors.FeatureNotSupported):
                cur.execute(b"ROLLBACK TO SAVEPOINT studio_query")  # not a cursor's: as typed
        # Prepared: the extended protocol, which refuses a second statement.
        cur.execute(statement.encode(), prepare=True)
        rows = cur.fetchmany(limit) if cur.description else []
        return Result(
            [column.name for column in cur.description or ()],
            rows,
            cur.statusmessage or "",
            cur.description is not None and cur.rowcount > limit,
        )


def _read(cur: psycopg.Cursor[Any], statement: str, limit: int, *, whole: bool) -> Result:
    """The query's first rows through a cursor (``whole``: the rest computed too, and counted):
    a statement that is not a query is a syntax error at its first word, said plainly."""
    import psycopg

    try:
        cur.execute((_CURSOR + statement).encode(), prepare=True)
    except psycopg.errors.SyntaxError as exc:
        first = len(_CURSOR) + len(statement) - len(statement.lstrip()) + 1
        if exc.diag.statement_position != str(first):
            raise
        word = re.match(r"\s*(\w*)", statement)[1].upper() or "this statement"  # type: ignore[index]
        raise WriteRefused(
            f"{word} refused: on a protected environment the query box runs only queries "
            "(SELECT, WITH, VALUES, TABLE, EXPLAIN, SHOW)",
            hint="change a protected database through a reviewed revision",
        ) from None
    cur.execute(f"FETCH FORWARD {limit + 1} FROM studio_query".encode())
    rows = cur.fetchall()
    columns = [column.name for column in cur.description or ()]
    if len(rows) > limit and whole:
        cur.execute(b"MOVE FORWARD ALL FROM studio_query")
        total = len(rows) + cur.rowcount
        return Result(columns, rows[:limit], f"SELECT {total}", truncated=True)
    if len(rows) > limit:
        return Result(columns, rows[:limit], "SELECT", truncated=True)
    return Result(columns, rows, f"SELECT {len(rows)}", truncated=False)


def as_text(cur: psycopg.Cursor[Any]) -> None:
    """Every type loaded as PostgreSQL's text, as psql shows it (types psycopg does not know,
    an enum or a domain, already are)."""
    from psycopg.types.string import TextLoader

    for info in cur.adapters.types:
        for oid in (info.oid, info.array_oid):
            if oid:
                cur.adapters.register_loader(oid, TextLoader)

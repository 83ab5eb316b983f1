"""Custom SQL from the query box: one statement, under a statement_timeout, at most a few
hundred rows shown.

The statement is prepared (the extended protocol), which takes exactly one statement:
``COMMIT; UPDATE ...`` cannot end the read-only transaction of a protected environment and run
on outside it. Its rows come back whole, as psql's do; the timeout bounds how many there can
be, and only the first ``ROW_LIMIT`` become the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrail.studio.database import cursor

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import Connection

ROW_LIMIT = 500
TIMEOUT = "10s"


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[str | None, ...]]
    status: str  # PostgreSQL's command tag: SELECT 3, UPDATE 1
    truncated: bool  # more rows than the limit: the first are shown


def run_query(connection: Connection, statement: str, limit: int = ROW_LIMIT) -> Result:
    """Run ``statement`` in the request's transaction; rows as PostgreSQL's text. The caller
    commits (an unprotected environment) or rolls back."""
    with cursor(connection) as cur:
        as_text(cur)
        # Prepared: the extended protocol, which refuses a second statement.
        cur.execute(statement.encode(), prepare=True)
        rows = cur.fetchmany(limit) if cur.description else []
        return Result(
            [column.name for column in cur.description or ()],
            rows,
            cur.statusmessage or "",
            cur.description is not None and cur.rowcount > limit,
        )


def as_text(cur: psycopg.Cursor[Any]) -> None:
    """Every type loaded as PostgreSQL's text, as psql shows it (types psycopg does not know,
    an enum or a domain, already are)."""
    from psycopg.types.string import TextLoader

    for info in cur.adapters.types:
        for oid in (info.oid, info.array_oid):
            if oid:
                cur.adapters.register_loader(oid, TextLoader)

"""The target's side of a run, around the load: its tables locked against writers, checked
for rows, their sequences advanced afterwards, and the one transaction that holds it all."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from migrail.sqlite_import.matching import TablePlan

PgConnection = psycopg.Connection[tuple[object, ...]]


def lock_targets(connection: PgConnection, plans: Sequence[TablePlan]) -> None:
    """Hold off writers until the run ends: rows written meanwhile would break the checksums."""
    names = sql.SQL(", ").join(sql.Identifier(*plan.target.qualified) for plan in plans)
    try:
        connection.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(names))
    except psycopg.errors.LockNotAvailable:
        raise FatalError(
            "import waited longer than lock_timeout for its tables: another session is "
            "writing to them",
            hint="run the import when the application is stopped, or again once it is idle",
        ) from None


def holding_rows(connection: PgConnection, plans: Sequence[TablePlan]) -> list[str]:
    """The target tables that already hold rows."""
    return [
        plan.target.name
        for plan in plans
        if (
            connection.execute(
                sql.SQL("SELECT EXISTS (SELECT FROM {})").format(
                    sql.Identifier(*plan.target.qualified)
                )
            ).fetchone()
            or (False,)
        )[0]
    ]


def advance_sequences(connection: PgConnection, plans: Sequence[TablePlan]) -> list[str]:
    """Move each loaded serial or identity column's sequence past the largest value loaded, so
    the application's next insert does not collide with an imported key."""
    moved = []
    for plan in plans:
        table = sql.Identifier(*plan.target.qualified).as_string(connection)
        for column in plan.columns:
            row = connection.execute(
                "SELECT pg_get_serial_sequence(%s, %s)", (table, column.target.name)
            ).fetchone()
            if row is None or row[0] is None:
                continue
            value = connection.execute(
                sql.SQL(
                    "SELECT setval(%(seq)s, m) FROM (SELECT max({col}) AS m FROM {table}) s"
                    " WHERE m IS NOT NULL AND m >= (SELECT seqmin FROM pg_sequence"
                    " WHERE seqrelid = %(seq)s::regclass) AND (pg_sequence_last_value(%(seq)s)"
                    " IS NULL OR m > pg_sequence_last_value(%(seq)s))"
                ).format(col=sql.Identifier(column.target.name), table=sql.SQL(table)),
                {"seq": row[0]},
            ).fetchone()
            if value is not None:
                moved.append(f"{row[0]} -> {value[0]}")
    return moved


@contextmanager
def one_transaction(connection: PgConnection) -> Iterator[None]:
    """The whole run: committed only by ``commit``; rolled back on any way out before."""
    try:
        yield
    finally:
        idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if not connection.closed and not idle:
            try:
                connection.rollback()
            except psycopg.OperationalError:
                # Interrupted mid-COPY, the connection cannot take a ROLLBACK: closed, it ends
                # the transaction all the same, and the interruption is what gets reported.
                connection.close()

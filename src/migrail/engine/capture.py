"""The SQL of revisions that cannot render offline, taken from a run on a throwaway database.

Data migrations read through ``op.get_bind()`` and cannot render without a database. For them,
the whole history is applied to a throwaway database while SQLAlchemy's cursor events record
every statement, with its parameters bound and its transaction boundaries, revision by revision:
each statement belongs to the revision Alembic was running when it was sent (as its
``on_version_apply`` tells), however many transactions a revision ends and begins.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migrail.engine.steps import MigrationFailed, Step

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.engine.executor import Executor

_BEGIN = "BEGIN;\n\n"
_COMMIT = "COMMIT;\n\n"
# What migrail and Alembic send around the revisions: the session settings (rendered anyway) and
# Alembic's look at its version table.
_BOOKKEEPING = re.compile(r"\s*(SET (lock|statement)_timeout\b|SELECT pg_catalog\.)", re.IGNORECASE)


def capture_online(executor: Executor, wanted: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Apply the history on a throwaway database; the SQL of each ``wanted`` revision that ran.

    Returns the captured SQL by revision, and for wanted revisions that could not run, why.
    """
    from migrail.history.extensions import created_extensions
    from migrail.postgres.database import connect
    from migrail.postgres.ephemeral import ephemeral_database

    captured: dict[str, str] = {}
    ran: dict[str, list[str]] = {}  # what each revision sent, by the revision Alembic ran
    needed = created_extensions(executor.config)
    with (
        ephemeral_database(extensions=needed) as url,
        connect(url) as connection,
        _recording(connection) as log,
    ):

        def applied(step: Step) -> None:
            # Alembic reports the revision applied after its last statement, in its transaction:
            # what was sent since the one before is its own, but for that one's COMMIT.
            _close(ran, log)
            ran[step.revision.revision] = log[:]
            log.clear()

        def finished(step: Step) -> None:
            _close(ran, log)
            name = step.revision.revision
            if name in wanted:
                captured[name] = executor.session_settings + "".join(ran.get(name, ()))

        try:
            executor.upgrade(connection, on_step=finished, in_transaction=applied)
        except MigrationFailed as failed:
            name = failed.revision.revision if failed.revision else "?"
            why = f"the history stopped at {name} on a throwaway database: {failed.error}"
            return captured, {rev: why for rev in wanted - captured.keys()}
    return captured, {}


def _close(ran: dict[str, list[str]], log: list[str]) -> None:
    """The COMMITs at the head of ``log`` end the transaction of the last revision that ran."""
    closing = 0
    while closing < len(log) and log[closing] == _COMMIT:
        closing += 1
    if ran and closing:
        ran[next(reversed(ran))] += log[:closing]
        del log[:closing]


@contextmanager
def _recording(connection: Connection) -> Iterator[list[str]]:
    """Every statement sent on ``connection`` as SQL text, with BEGIN and COMMIT where they were."""
    from sqlalchemy import event

    log: list[str] = []

    def autocommit(conn: Connection) -> bool:
        return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"

    def statement(
        conn: Connection, cursor: Any, sql: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if _BOOKKEEPING.match(sql):
            return
        for text in _bind(cursor, sql, parameters, many):
            log.append(f"{text.strip().rstrip(';')};\n\n")

    def begin(conn: Connection) -> None:
        if not autocommit(conn):
            log.append(_BEGIN)

    def commit(conn: Connection) -> None:
        if not autocommit(conn):
            log.append(_COMMIT)

    event.listen(connection, "before_cursor_execute", statement)
    event.listen(connection, "begin", begin)
    event.listen(connection, "commit", commit)
    try:
        yield log
    finally:
        event.remove(connection, "before_cursor_execute", statement)
        event.remove(connection, "begin", begin)
        event.remove(connection, "commit", commit)


def _bind(cursor: Any, sql: str, parameters: Any, many: bool) -> list[str]:
    """The statement with its parameters in it, as PostgreSQL sees it (once per row for
    ``executemany``). Never raises: a statement it cannot bind is recorded as written."""
    if not parameters:
        return [sql]
    from psycopg import ClientCursor

    try:
        bind = ClientCursor(cursor.connection).mogrify
        return [bind(sql, row) for row in parameters] if many else [bind(sql, parameters)]
    except Exception:
        return [sql]

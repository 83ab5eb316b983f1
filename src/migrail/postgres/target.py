"""An environment's database as the commands reach it: under lock_timeout from the first
statement, refused when the session cannot write, and a lock wait that times out explained by
the table and the process holding it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.postgres.database import connect

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

LOCK_NOT_AVAILABLE = "55P03"
READ_ONLY_TRANSACTION = "25006"


@contextmanager
def connect_target(
    url: URL, command: str, *, lock_timeout: str, statement_timeout: str | None = None
) -> Iterator[Connection]:
    """A connection to an environment's database on which every statement of migrail's waits
    for a lock at most ``lock_timeout`` (revisions set their own): a table held locked by a long
    transaction would otherwise hold ``command`` forever, silently. A wait that times out is a
    FatalError naming the table and its holder; so is a session that refuses writes.
    ``statement_timeout``: for commands that only read (plan, drift), their bound as well.
    """
    from sqlalchemy.exc import DBAPIError

    with connect(url) as connection:
        # Values of the config's duration form only (checked when it is loaded): nothing to quote.
        connection.exec_driver_sql(f"SET lock_timeout = '{lock_timeout}'")
        if statement_timeout is not None:
            connection.exec_driver_sql(f"SET statement_timeout = '{statement_timeout}'")
        connection.commit()
        try:
            yield connection
        except DBAPIError as exc:
            if connection.invalidated:
                raise
            if _sqlstate(exc) == READ_ONLY_TRANSACTION:
                connection.rollback()
                raise _read_only(connection, command) from None
            if not lock_timed_out(exc):
                raise
            connection.rollback()
            raise _locked(connection, command, lock_timeout) from None


def _sqlstate(exc: BaseException) -> str | None:
    error = getattr(exc, "orig", None) or exc
    return getattr(error, "sqlstate", None)


def refuse_read_only(connection: Connection, command: str) -> None:
    """Refuse a session that cannot write (a replica, ``default_transaction_read_only``) before
    anything is attempted: its first write would fail in the middle, blamed on something else."""
    from sqlalchemy import text

    read_only = connection.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
    connection.rollback()
    if read_only:
        raise _read_only(connection, command)


# Where default_transaction_read_only was set (pg_settings.source), and how to undo it there.
_READ_ONLY_FIXES = {
    "client": "remove -c default_transaction_read_only=on from the URL's options",
    "user": "ALTER ROLE {role} RESET default_transaction_read_only (or connect as a role "
    "that may write)",
    "database": "ALTER DATABASE {database} RESET default_transaction_read_only",
    "database user": "ALTER ROLE {role} IN DATABASE {database} RESET default_transaction_read_only",
}


def _read_only(connection: Connection, command: str) -> FatalError:
    """Why the session is read-only (a replica, or default_transaction_read_only, and who set
    it), and what to do about it."""
    from sqlalchemy import text

    replica, source, role, database = connection.execute(
        text(
            "SELECT pg_is_in_recovery(), (SELECT source FROM pg_settings"
            " WHERE name = 'default_transaction_read_only'), quote_ident(current_user),"
            " quote_ident(current_database())"
        )
    ).one()
    connection.rollback()
    refused = f"{command} is refused: the database session is read-only"
    if replica:
        return FatalError(
            f"{refused}: the server is a replica (in recovery), which only its primary changes",
            hint="point the environment's URL at the primary server",
        )
    fix = _READ_ONLY_FIXES.get(
        source, "connect to a server, and as a role, whose sessions may write"
    )
    return FatalError(
        f"{refused}: default_transaction_read_only is on (set by: {source})",
        hint=fix.format(role=role, database=database),
    )


def lock_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL giving up a lock wait at lock_timeout."""
    return _sqlstate(exc) == LOCK_NOT_AVAILABLE


# The table locks a statement of migrail's can wait behind (a read: only ACCESS EXCLUSIVE;
# a write: all four), strongest first, as LOCK TABLE names them.
_BLOCKING_MODES = {
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ShareLock": "SHARE",
}


def _locked(connection: Connection, command: str, lock_timeout: str) -> FatalError:
    """Which table stopped ``command``, and who holds it: a lock that blocks reads or writes,
    held or queued for (reads queue behind a waiting ALTER TABLE)."""
    from sqlalchemy import bindparam, text

    row = connection.execute(
        text(
            "SELECT l.relation::regclass::text, l.pid, l.granted, l.mode, a.usename,"
            " a.application_name, a.state FROM pg_locks l"
            " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'relation' AND l.mode IN :modes"
            " AND l.pid <> pg_backend_pid()"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY l.granted DESC, array_position(:strength, l.mode::text), 1, 2 LIMIT 1"
        ).bindparams(bindparam("modes", expanding=True)),
        {"modes": list(_BLOCKING_MODES), "strength": list(_BLOCKING_MODES)},
    ).first()
    connection.rollback()
    waited = f"{command} waited longer than lock_timeout {lock_timeout}"
    if row is None:
        return FatalError(
            f"{waited} for a table's lock (its holder has let go since)",
            hint=f"run {command} again",
        )
    table, pid, granted, mode, user, application, state = row
    who = ", ".join(
        part
        for part in (
            f"user {user}" if user else "",
            f'application "{application}"' if application else "",
            state or "",
        )
        if part
    )
    what = "holds" if granted else "is waiting for, ahead of it,"
    article = "an" if _BLOCKING_MODES[mode].startswith(("A", "E")) else "a"
    return FatalError(
        f"{waited} for table {table}: process {pid}{f' ({who})' if who else ''} {what} "
        f"{article} {_BLOCKING_MODES[mode]} lock on it",
        hint=f"run {command} again once that transaction ends, or end it: "
        f"SELECT pg_terminate_backend({pid})",
    )

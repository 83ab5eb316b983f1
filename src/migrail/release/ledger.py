"""The target database's own record of what was applied to it: ``migrail.history``.

One row per revision applied (or undone, by ``migrate --to``): its file's checksum, the plan it
came from, who, when, how long, whether it succeeded, and which way it went. The direction came
later: a table made before it has no such column, is given it where this role owns the table,
and otherwise still records upgrades (the column's default says so) but refuses a downgrade.

A success is written in the revision's own transaction, so the record and ``alembic_version``
can never disagree; a failure is written after the rollback. Sharing that transaction, a row
the table refuses would take an innocent revision down with it: so the table, altered by hand
or out of the role's reach, is checked before a run applies anything, and a refusal is named
as the table's, not the revision's.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.history.revisions import display_name
from migrail.postgres.bookkeeping import (
    SCHEMA,
    TABLE_KINDS,
    TableProblem,
    describe,
    ensure_schema,
    ensure_table,
    readable,
    role,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from migrail.engine.steps import MigrationFailed
    from migrail.postgres.bookkeeping import Table


@dataclass(frozen=True)
class Entry:
    revision: str
    checksum: str
    plan_id: str | None
    applied_by: str
    applied_at: datetime
    duration_ms: int
    success: bool
    error: str | None
    direction: str = "upgrade"

    @property
    def stamped(self) -> bool:
        """Recorded as applied without being run: the schema was there already (by ``stamp``,
        or by an approved plan that stamps)."""
        return self.plan_id == STAMPED or self.direction == STAMP


def actor() -> str:
    """Who applies: ``MIGRAIL_ACTOR`` (set by CI to the person behind the run), else the user."""
    return os.environ.get("MIGRAIL_ACTOR", "").strip() or getpass.getuser()


# Each column: its name, its type, and what else migrail declares it with.
COLUMNS = (
    ("id", "bigint", "GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ("revision", "text", "NOT NULL"),
    ("checksum", "text", "NOT NULL"),
    ("plan_id", "text", ""),
    ("applied_by", "text", "NOT NULL"),
    ("applied_at", "timestamptz", "NOT NULL DEFAULT now()"),
    ("duration_ms", "integer", "NOT NULL"),
    ("success", "boolean", "NOT NULL"),
    ("error", "text", ""),
)
# Added later: existing tables may lack it, and an upgrade's row does not need it.
DIRECTION = ("direction", "text", "NOT NULL DEFAULT 'upgrade'")
DOWNGRADE = "downgrade"
STAMP = "stamp"  # a plan's revision recorded as applied, not run
TABLE = "history"
# The plan_id of a revision recorded as applied without being run (``release.stamp``).
STAMPED = "stamped"
NAME = f"{SCHEMA}.{TABLE}"


def ensure_ledger(connection: Connection, *, direction: str = "upgrade") -> None:
    """Create ``migrail.history`` where it is missing; refuse one this role cannot write to, or
    one altered so that migrail's rows no longer fit (before a revision depends on it).

    A table made before rows had a direction is given the column; where this role may not
    alter it, upgrades are recorded as before, and another ``direction`` (a downgrade, a
    stamp: its row must say so) is refused.
    """
    ensure_schema(connection)
    ensure_table(connection, TABLE, [" ".join(column).strip() for column in (*COLUMNS, DIRECTION)])
    table = describe(connection, TABLE)
    assert table is not None  # just created, or found
    _check_shape(table)
    says_direction = direction != "upgrade"
    if DIRECTION[0] not in table.columns and not _add_direction(connection) and says_direction:
        connection.rollback()
        what = "undone" if direction == DOWNGRADE else "stamped"
        raise TableProblem(
            f"{NAME} has no column {DIRECTION[0]}, and this role may not add it: a revision "
            f"{what} could not be recorded as such",
            hint=f"an owner of {NAME} runs: ALTER TABLE {NAME} ADD COLUMN {' '.join(DIRECTION)}",
        )
    if not (table.usable and table.writable and table.readable):
        who = role(connection)
        connection.rollback()
        raise TableProblem(
            f"role {who} cannot record applied revisions in {NAME}",
            hint=f"an owner runs: GRANT USAGE ON SCHEMA {SCHEMA} TO {who}; "
            f"GRANT SELECT, INSERT ON {NAME} TO {who}",
        )
    connection.commit()


def _add_direction(connection: Connection) -> bool:
    """Give a table made before directions were recorded its column; whether it has it now."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with connection.begin_nested():
            connection.execute(text(f"ALTER TABLE {NAME} ADD COLUMN {' '.join(DIRECTION)}"))
    except DBAPIError:
        if connection.invalidated:
            raise
        return False
    return True


def _check_shape(table: Table) -> None:
    if table.kind not in TABLE_KINDS:
        raise TableProblem(
            f"{NAME} is a {table.kind_name}, not the table migrail records applied revisions in",
            hint="move it out of the way (rename or drop it), and migrail makes its table again",
        )
    missing = [column for column in COLUMNS if column[0] not in table.columns]
    if missing:
        names = ", ".join(name for name, _, _ in missing)
        adds = ", ".join(f"ADD COLUMN {name} {kind}" for name, kind, _ in missing)
        raise TableProblem(
            f"{NAME} has no column {names}, which migrail records (it was altered by hand)",
            hint=f"add it back: ALTER TABLE {NAME} {adds}",
        )


def try_records(
    connection: Connection,
    revisions: Sequence[tuple[str, str]],
    plan_id: str | None = None,
    direction: str = "upgrade",
) -> None:
    """Insert the rows a run will record (revision id and checksum), then roll them back.

    A CHECK constraint, a trigger or a rule that refuses one is found before any revision is
    applied, not in the middle of one; deferred constraints are made to answer now too. The
    identity column's sequence moves on, as after any rollback.
    """
    from sqlalchemy import text

    try:
        connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        for revision, checksum in revisions:
            record(connection, revision, checksum, 0.0, plan_id=plan_id, direction=direction)
    finally:
        connection.rollback()


def record(
    connection: Connection,
    revision: str,
    checksum: str,
    seconds: float,
    *,
    plan_id: str | None = None,
    error: str | None = None,
    direction: str = "upgrade",
) -> None:
    """One row; the caller's transaction decides when it commits. A row the table refuses is a
    TableProblem naming it, not a failure of the revision being recorded. An upgrade's row
    leaves the direction to the column's default: a table without that column still takes it."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError, OperationalError

    from migrail.engine.steps import describe_error

    column, value = (", direction", ", :direction") if direction != "upgrade" else ("", "")
    try:
        connection.execute(
            text(
                f"INSERT INTO {NAME} (revision, checksum, plan_id, applied_by, duration_ms,"
                f" success, error{column}) VALUES (:revision, :checksum, :plan_id, :by, :ms,"
                f" :success, :error{value})"
            ),
            {
                "direction": direction,
                "revision": revision,
                "checksum": checksum,
                "plan_id": plan_id,
                "by": actor(),
                "ms": round(seconds * 1000),
                "success": error is None,
                "error": error,
            },
        )
    except OperationalError:
        raise  # the connection, a lock wait, a cancel: nothing about the table itself
    except DBAPIError as exc:
        raise TableProblem(
            f"{NAME} refused the record of revision {revision}: {describe_error(exc)}",
            hint=f"{NAME} was altered by hand: remove what refuses migrail's rows "
            "(a constraint, a trigger, a rule, a changed column)",
        ) from None


def record_failure(
    connection: Connection,
    revision: str,
    checksum: str,
    error: str,
    plan_id: str | None = None,
    direction: str = "upgrade",
) -> TableProblem | None:
    """Record a revision that failed (after its rollback); the problem, where the table refused."""
    try:
        record(connection, revision, checksum, 0, plan_id=plan_id, error=error, direction=direction)
    except TableProblem as problem:
        connection.rollback()
        return problem
    connection.commit()
    return None


def refused(failed: MigrationFailed, database_at: str) -> FatalError | None:
    """Where migrail.history refusing a revision's row is what failed the revision, the error to
    show: the ledger is what to fix. They share the revision's transaction, so the revision was
    rolled back with its row, and the database is at ``database_at``."""
    problem = failed.__cause__
    if not isinstance(problem, TableProblem):
        return None
    name = display_name(failed.revision) if failed.revision else "the revision"
    return FatalError(
        f"{problem.message}; {name} was rolled back with it, and the database is at {database_at}",
        hint=problem.hint,
    )


def read_ledger(connection: Connection, limit: int = 20) -> list[Entry]:
    """The newest entries, newest first (none where nothing was ever recorded); a TableProblem
    where this role cannot read them, or the table lost what they are read from."""
    from sqlalchemy import text

    table = readable(connection, TABLE)
    if table is None:
        connection.rollback()
        return []
    try:
        _check_shape(table)
    finally:
        connection.rollback()
    direction = DIRECTION[0] if DIRECTION[0] in table.columns else "'upgrade'"
    rows = connection.execute(
        text(
            f"SELECT revision, checksum, plan_id, applied_by, applied_at, duration_ms, success,"
            f" error, {direction} FROM {NAME} ORDER BY id DESC LIMIT :limit"
        ),
        {"limit": limit},
    ).all()
    connection.rollback()
    return [Entry(*row) for row in rows]

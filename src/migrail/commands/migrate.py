"""``migrail migrate``: apply pending revisions to an environment's database, one at a time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.core.errors import FatalError
from migrail.core.signals import sigterm_raises
from migrail.core.urls import mask_url
from migrail.engine.executor import Executor
from migrail.engine.interrupts import database_told
from migrail.engine.render import render_range
from migrail.engine.steps import (
    MigrationFailed,
    Step,
    lost_connection_note,
    partly_committed_note,
)
from migrail.history import sums
from migrail.history.revisions import display_name
from migrail.postgres.identity import refuse_mislabeled
from migrail.release import ledger
from migrail.release.moving import DOWNGRADE, UPGRADE, Move, check_reversible, plan_move

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic.script import Script
    from rich.console import Console
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config, Environment
    from migrail.postgres.bookkeeping import TableProblem


def migrate(
    config: Config,
    *,
    env_name: str | None,
    sql: bool,
    console: Console,
    to: str | None = None,
    yes: bool = False,
) -> int:
    """List what is pending, then apply it under an advisory lock (``sql``: print it instead);
    ``to``: go up or down to that revision instead, asking before undoing any (unless ``yes``).

    SIGTERM (a CI job cancelled) stops it as Ctrl-C does: the running revision is cancelled on
    the server and rolled back, its locks released at once, and named with where the database
    is then.
    """
    from migrail.postgres.target import connect_target, refuse_read_only

    environment, url = resolve_environment(config, env_name)
    if environment.protected and not sql:
        raise FatalError(
            f"migrate is refused: {environment.name} is protected, and changes only through an "
            "approved plan",
            hint=f"migrail plan --env {environment.name}; a reviewer runs migrail approve "
            "plan.json; then migrail apply --plan plan.json",
        )
    executor = Executor(config)
    with (
        sigterm_raises(),
        database_told(executor, url, "migrate", _write_down_failure),
        connect_target(url, "migrate", lock_timeout=config.lock_timeout) as connection,
    ):
        if not sql:
            refuse_read_only(connection, "migrate")
        current = executor.current(connection)
        if sql:
            return _print_sql(console, executor, environment, current, to)
        if to is None:
            move = Move(UPGRADE, "heads", executor.pending(current))
        else:
            move = plan_move(executor, current, to)
            check_reversible(move)
        output.info(console, f"Environment {environment.name}: {mask_url(url)}")
        refuse_mislabeled(connection, environment)
        if not _announced(console, move, yes):
            output.info(console, "Nothing was undone")
            return 1
        return _run(console, executor, connection, environment, move, current, to)


def _print_sql(
    console: Console,
    executor: Executor,
    environment: Environment,
    current: tuple[str, ...],
    to: str | None,
) -> int:
    """What ``migrate`` (``--to``) would apply, as SQL on stdout; nothing to apply said on
    stderr, so that stdout stays the SQL, empty. Undoing is not rendered: refused."""
    only = None
    if to is not None:
        move = plan_move(executor, current, to)
        if move.direction != UPGRADE:
            raise FatalError(
                f"migrate --sql --to {to} would undo revisions: --sql prints upgrades only",
                hint="to read a downgrade's SQL: alembic downgrade --sql FROM:TO",
            )
        only = {revision.revision for revision in move.revisions}
    if (only is None and executor.pending(current)) or only:
        output.write_data(render_range(executor, current[0] if current else None, only))
    else:
        where = ", the head" if to is None else f", where --to {to} leads"
        output.success(
            console,
            f"Nothing pending: {environment.name} is at {executor.label(current)}{where}",
        )
    return 0


def _announced(console: Console, move: Move, yes: bool) -> bool:
    """Say what will run; before undoing revisions, warn and ask (unless ``yes``)."""
    if not move.revisions:
        return True
    names = ", ".join(map(display_name, move.revisions))
    if move.direction == UPGRADE:
        output.info(console, f"{len(move.revisions)} pending: {names}")
        return True
    output.info(console, f"{len(move.revisions)} to undo, newest first: {names}")
    output.info(
        console,
        "This loses data: what these revisions added (tables, columns) goes with its rows",
    )
    if yes:
        return True
    if not sys.stdin.isatty():
        raise FatalError(
            "migrate --to would undo revisions and lose data, and there is no terminal to "
            "confirm it",
            hint="rerun with --yes if you mean it",
        )
    return input("Undo them? [y/N] ").strip().lower() in ("y", "yes")


def _run(
    console: Console,
    executor: Executor,
    connection: Connection,
    environment: Environment,
    move: Move,
    current: tuple[str, ...],
    to: str | None,
) -> int:
    """Apply or undo the move's revisions under the migrate lock, each recorded in its
    transaction; a failure leaves the database at the last one that completed."""
    from migrail.postgres.database import advisory_lock

    waiting = lambda: output.info(console, "Waiting for another migrate to finish...")  # noqa: E731
    with advisory_lock(connection, on_wait=waiting):
        if to is not None:
            _check_unmoved(executor, connection, current)
        if move.revisions:  # before anything is written: a ledger that refuses rows stops it here
            ledger.ensure_ledger(connection, direction=move.direction)
            ledger.try_records(
                connection, [_checksummed(rev) for rev in move.revisions], direction=move.direction
            )
        _record_identity(connection, environment)
        if not move.revisions:
            output.success(console, f"Up to date at {executor.label(current)}")
            return 0
        run = executor.downgrade if move.direction == DOWNGRADE else executor.upgrade
        try:
            steps = run(
                connection,
                move.alembic_target,
                on_step=lambda step: _applied(console, step),
                in_transaction=lambda step: _write_down(connection, step, move.direction),
            )
        except MigrationFailed as failed:
            if not connection.invalidated:  # a lost connection is not read again
                connection.rollback()
                at = executor.label(executor.current(connection))
                if refused := ledger.refused(failed, at):
                    raise refused from None
            _report_failure(console, executor, connection, failed)
            return 1
        now = executor.current(connection)
    if not steps:
        output.success(
            console, f"Another migrate applied them; the database is at {executor.label(now)}"
        )
        return 0
    done = "Undid" if move.direction == DOWNGRADE else "Applied"
    output.success(
        console, f"{done} {len(steps)} revision(s); the database is at {executor.label(now)}"
    )
    return 0


def _check_unmoved(executor: Executor, connection: Connection, before: Sequence[str]) -> None:
    """What ``--to`` announced holds only from where the database was: another migrate that
    moved it meanwhile (while this one waited for the lock) makes it plan again."""
    now = executor.current(connection)
    if tuple(now) != tuple(before):
        raise FatalError(
            f"migrate --to stopped before changing anything: another migrate moved the database "
            f"from {executor.label(before)} to {executor.label(now)} meanwhile",
            hint="run it again to see what it would do from there",
        )


def _record_identity(connection: Connection, environment: Environment) -> None:
    """On its first migrate, the database is told which environment it is (under the lock:
    two first migrates at once must not both create it)."""
    from migrail.postgres.identity import read_identity, record_identity

    if read_identity(connection) is None:
        record_identity(connection, environment)


def _checksummed(revision: Script) -> tuple[str, str]:
    """A revision's id and its file's checksum, as migrail.history records them."""
    return revision.revision, sums.digest(Path(revision.path).read_bytes())


def _write_down(connection: Connection, step: Step, direction: str) -> None:
    """The revision in migrail.history, in its own transaction."""
    ledger.record(connection, *_checksummed(step.revision), step.seconds, direction=direction)


def _write_down_failure(connection: Connection, failed: MigrationFailed) -> TableProblem | None:
    """The failed attempt in migrail.history, in its own transaction; the problem, if the
    table refused it."""
    assert failed.revision is not None
    return ledger.record_failure(
        connection, *_checksummed(failed.revision), failed.error, direction=failed.direction
    )


def _applied(console: Console, step: Step) -> None:
    output.success(console, f"{display_name(step.revision)} ({step.seconds * 1000:.0f} ms)")


def _report_failure(
    console: Console, executor: Executor, connection: Connection, failed: MigrationFailed
) -> None:
    output.failure(console, str(failed))
    if failed.statement:
        output.info(console, f"  statement: {failed.statement.strip()}")
    partly = partly_committed_note(failed)
    if partly is not None:
        output.info(console, partly)
    if connection.invalidated:  # lost: nothing more can be read or recorded on it
        output.info(console, lost_connection_note(failed, "run migrate again"))
        return
    connection.rollback()
    if failed.revision is not None:
        problem = _write_down_failure(connection, failed)
        if problem is not None:
            output.info(console, f"  not recorded: {problem.message}")
    output.info(console, f"  the database is at {executor.label(executor.current(connection))}")

"""``migrail migrate``: apply pending revisions to an environment's database, one at a time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.core.errors import FatalError
from migrail.core.signals import sigterm_raises
from migrail.core.urls import mask_url
from migrail.engine.executor import Executor
from migrail.engine.render import render_range
from migrail.engine.steps import MigrationFailed, Step, lost_connection_note
from migrail.history import sums
from migrail.history.revisions import short_name
from migrail.release import ledger

if TYPE_CHECKING:
    from alembic.script import Script
    from rich.console import Console
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config, Environment


def migrate(config: Config, *, env_name: str | None, sql: bool, console: Console) -> int:
    """List what is pending, then apply it under an advisory lock (``sql``: print it instead).

    SIGTERM (a CI job cancelled) stops it as Ctrl-C does: the running revision is cancelled on
    the server and rolled back, its locks released at once.
    """
    from migrail.postgres.database import advisory_lock
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
        connect_target(url, "migrate", lock_timeout=config.lock_timeout) as connection,
    ):
        if not sql:
            refuse_read_only(connection, "migrate")
        current = executor.current(connection)
        pending = executor.pending(current)
        if sql:
            if pending:
                output.write_data(render_range(executor, current[0] if current else None))
            return 0
        output.info(console, f"Environment {environment.name}: {mask_url(url)}")
        _check_identity(connection, environment)
        if pending:
            names = ", ".join(map(short_name, pending))
            output.info(console, f"{len(pending)} pending: {names}")
        waiting = lambda: output.info(console, "Waiting for another migrate to finish...")  # noqa: E731
        with advisory_lock(connection, on_wait=waiting):
            if pending:  # before anything is written: a ledger that refuses rows stops it here
                ledger.ensure_ledger(connection)
                ledger.try_records(connection, [_checksummed(rev) for rev in pending])
            _record_identity(connection, environment)
            if not pending:
                output.success(console, f"Up to date at {executor.label(current)}")
                return 0
            try:
                steps = executor.upgrade(
                    connection,
                    on_step=lambda step: _applied(console, step),
                    in_transaction=lambda step: _write_down(connection, step),
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
    output.success(
        console, f"Applied {len(steps)} revision(s); the database is at {executor.label(now)}"
    )
    return 0


def _check_identity(connection: Connection, environment: Environment) -> None:
    """A database that says it is protected is not migrated as something else."""
    from migrail.postgres.identity import read_identity

    identity = read_identity(connection)
    if identity is not None and identity.protected and not environment.protected:
        raise FatalError(
            f"the database says it is {identity.name}, a protected environment, but was reached "
            f"as {environment.name}",
            hint=f"check {environment.url_env}: it points at {identity.name}'s database",
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


def _write_down(connection: Connection, step: Step) -> None:
    """The revision in migrail.history, in its own transaction."""
    ledger.record(connection, *_checksummed(step.revision), step.seconds)


def _applied(console: Console, step: Step) -> None:
    output.success(console, f"{short_name(step.revision)} ({step.seconds * 1000:.0f} ms)")


def _report_failure(
    console: Console, executor: Executor, connection: Connection, failed: MigrationFailed
) -> None:
    output.failure(console, str(failed))
    if failed.statement:
        output.info(console, f"  statement: {failed.statement.strip()}")
    if connection.invalidated:  # lost: nothing more can be read or recorded on it
        output.info(console, lost_connection_note(failed, "run migrate again"))
        return
    connection.rollback()
    if failed.revision is not None:
        problem = ledger.record_failure(connection, *_checksummed(failed.revision), failed.error)
        if problem is not None:
            output.info(console, f"  not recorded: {problem.message}")
    output.info(console, f"  the database is at {executor.label(executor.current(connection))}")

"""Applying a plan: exactly what was approved, on the database it was made for, or a refusal
that says why; a revision whose lock wait times out is rolled back and tried again later."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.config import resolve_environment
from migrail.core.errors import FatalError
from migrail.core.signals import sigterm_raises
from migrail.engine.executor import Executor
from migrail.engine.interrupts import database_told
from migrail.engine.steps import MigrationFailed, Step
from migrail.history import sums
from migrail.history.revisions import display_name
from migrail.release import ledger
from migrail.release.approve import check_approval
from migrail.release.checkout import check_checkout, plan_files

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migrail.core.config import Config
    from migrail.postgres.bookkeeping import TableProblem
    from migrail.postgres.identity import Identity
    from migrail.release.plan import Plan

_LOCK_NOT_AVAILABLE = "SQLSTATE 55P03"


@dataclass(frozen=True)
class ApplyFailure:
    """The revision that failed (rolled back), and what else there is to tell about it."""

    failed: MigrationFailed
    lost: bool = False  # the connection was lost: nothing more was read or recorded on it
    unrecorded: str | None = None  # why migrail.history did not take the record of the attempt
    gave_up_after: int | None = None  # tries made, when a lock it needs stayed taken each time
    database_at: str = ""  # the revision the database is at afterwards (unknown when lost)


@dataclass(frozen=True)
class Applied:
    """The revisions the plan applied, and the failure that stopped it, if one did."""

    steps: list[Step]
    failure: ApplyFailure | None = None


def apply_plan(
    config: Config,
    made: Plan,
    plan_path: Path,
    *,
    on_wait: Callable[[], None],
    on_step: Callable[[Step], None],
    on_retry: Callable[[float], None],
) -> Applied:
    """Apply the approved plan ``made`` under the migrate lock (``on_wait``: another holds it),
    or raise a FatalError saying why it is refused. ``on_retry`` is told the pause before a
    revision whose lock wait timed out is tried again. SIGTERM stops it as Ctrl-C does (the
    running revision cancelled and rolled back, and named with where the database is then)."""
    from migrail.postgres.database import advisory_lock
    from migrail.postgres.identity import read_identity, record_identity
    from migrail.postgres.target import connect_target, refuse_read_only

    check_approval(config, made, plan_path)
    check_checkout(config.root, made.code, plan_files(plan_path))
    _, url = resolve_environment(config, made.environment)
    executor = Executor(config)
    with (
        sigterm_raises(),
        database_told(executor, url, "apply", _write_down_failure(made)),
        connect_target(url, "apply", lock_timeout=config.lock_timeout) as connection,
    ):
        refuse_read_only(connection, "apply")
        _check_unchanged(config, executor, connection, made)
        if not made.revisions:
            return Applied([])
        with advisory_lock(connection, on_wait=on_wait):
            if list(executor.current(connection)) != made.from_revision:  # while we waited
                raise FatalError(
                    "apply is refused: another apply changed the database while this one waited: "
                    f"it is at {executor.label(executor.current(connection))} now",
                    hint="plan again",
                )
            identity = read_identity(connection)
            _check_target(config, made, url, identity)
            ledger.ensure_ledger(connection, direction=made.direction)  # before anything is written
            planned = [(revision.revision, revision.checksum) for revision in made.revisions]
            ledger.try_records(connection, planned, made.plan_id, made.direction)
            if identity is None:  # its first release says what it is
                record_identity(connection, config.environment(made.environment))
            if made.direction == ledger.STAMP:
                return _stamp(executor, connection, made, on_step)
            return _apply_with_retries(config, executor, connection, made, on_step, on_retry)


def _stamp(
    executor: Executor, connection: Connection, made: Plan, on_step: Callable[[Step], None]
) -> Applied:
    """The approved stamp: the head recorded as applied, nothing run (plan checked the schema)."""
    from migrail.release.stamp import record_stamp

    [planned] = made.revisions
    record_stamp(
        executor, connection, planned.revision, plan_id=made.plan_id, direction=made.direction
    )
    step = Step(executor.script.get_revision(planned.revision), 0.0)
    on_step(step)
    return Applied([step])


def _check_unchanged(
    config: Config, executor: Executor, connection: Connection, made: Plan
) -> None:
    """The database, the revision files and their SQL are what was planned and approved."""
    from migrail.release.moving import replan
    from migrail.release.planning import render_move

    current = list(executor.current(connection))
    if current != made.from_revision:
        raise FatalError(
            "apply is refused: the database moved on since the plan: it is at "
            f"{executor.label(current)}, and the plan starts at "
            f"{executor.label(made.from_revision)}",
            hint="plan again",
        )
    _check_applied_revisions(executor, connection)
    _check_planned_files(config, executor, made)
    move = replan(executor, tuple(current), made.direction, made.to_revision)
    pieces = render_move(executor, tuple(current), move)
    for piece in pieces:
        if piece.exited is not None:  # an exit from the revision's code: its failure
            piece.require_sql()
    rendered = [(piece.revision.revision, piece.sql) for piece in pieces]
    planned = [(revision.revision, revision.sql) for revision in made.revisions]
    if rendered != planned:
        changed = [
            name
            for (name, sql), mine in zip(planned, rendered, strict=False)
            if (name, sql) != mine
        ]
        raise FatalError(
            "apply is refused: the SQL rendered from this checkout is not the SQL that was "
            f"approved ({', '.join(changed) or 'the list of revisions differs'})",
            hint="plan again, and have the new plan approved",
        )


def _check_target(config: Config, made: Plan, url: URL, identity: Identity | None) -> None:
    """The database is the one the plan was made on, and says it is that environment."""
    if identity is not None and identity.name != made.environment:
        raise FatalError(
            f"apply is refused: the plan is for {made.environment}, and the database says "
            f"it is {identity.name}",
            hint=f"check {config.environment(made.environment).url_env}: it points at "
            f"{identity.name}'s database",
        )
    if (url.database or "") != made.database.get("name"):
        raise FatalError(
            f"apply is refused: the plan was made on database {made.database.get('name')}, "
            f"and this is {url.database}",
            hint="plan again, against the database you mean to change",
        )


def _apply_with_retries(
    config: Config,
    executor: Executor,
    connection: Connection,
    made: Plan,
    on_step: Callable[[Step], None],
    on_retry: Callable[[float], None],
) -> Applied:
    """Apply; when a lock wait times out, the revision is rolled back and tried again later."""
    done: list[Step] = []
    attempt = 0
    while True:
        try:
            run = executor.downgrade if made.direction == ledger.DOWNGRADE else executor.upgrade
            done += run(
                connection,
                made.to_revision or ("base" if made.direction == ledger.DOWNGRADE else "heads"),
                on_step=on_step,
                in_transaction=lambda step: _write_down(connection, step, made),
            )
            return Applied(done)
        except MigrationFailed as failed:
            done += failed.completed
            if connection.invalidated:  # lost: nothing more can be read or recorded on it
                return Applied(done, ApplyFailure(failed, lost=True))
            connection.rollback()
            if refused := ledger.refused(failed, executor.label(executor.current(connection))):
                raise refused from None
            unrecorded = None
            if failed.revision is not None:  # the attempt, as migrail.history keeps every one
                unrecorded = _write_down_failure(made)(connection, failed)
            locked = _LOCK_NOT_AVAILABLE in failed.error
            if not locked or attempt == config.lock_retries:
                return Applied(
                    done,
                    ApplyFailure(
                        failed,
                        unrecorded=unrecorded.message if unrecorded is not None else None,
                        gave_up_after=attempt + 1 if locked else None,
                        database_at=executor.label(executor.current(connection)),
                    ),
                )
            pause = 0.5 * 2**attempt
            on_retry(pause)
            time.sleep(pause)
            attempt += 1


def _write_down_failure(
    made: Plan,
) -> Callable[[Connection, MigrationFailed], TableProblem | None]:
    """What writes a failed attempt of ``made``'s down in migrail.history, in its own
    transaction, returning the problem if the table refused it."""

    def write(connection: Connection, failed: MigrationFailed) -> TableProblem | None:
        assert failed.revision is not None
        revision = failed.revision.revision
        checksum = sums.digest(Path(failed.revision.path).read_bytes())
        error, plan, direction = failed.error, made.plan_id, made.direction
        return ledger.record_failure(connection, revision, checksum, error, plan, direction)

    return write


def _write_down(connection: Connection, step: Step, made: Plan) -> None:
    checksum = sums.digest(Path(step.revision.path).read_bytes())
    ledger.record(
        connection,
        step.revision.revision,
        checksum,
        step.seconds,
        plan_id=made.plan_id,
        direction=made.direction,
    )


def _check_planned_files(config: Config, executor: Executor, made: Plan) -> None:
    """The revision files are those that were planned, byte for byte: apply runs their Python,
    which can do on a live database what it does not do when rendered offline."""
    by_id = {revision.revision: revision for revision in executor.revisions()}
    for planned in made.revisions:
        revision = by_id.get(planned.revision)
        if revision is None or sums.digest(Path(revision.path).read_bytes()) != planned.checksum:
            raise FatalError(
                f"apply is refused: {planned.shown} is not the file that was planned",
                hint="plan again, and have the new plan approved",
            )
    env_py = sums.digest((config.migrations_dir / "env.py").read_bytes())
    if made.database.get("env.py", env_py) != env_py:
        raise FatalError(
            "apply is refused: migrations/env.py changed since the plan",
            hint="plan again, and have the new plan approved",
        )


def _check_applied_revisions(executor: Executor, connection: Connection) -> None:
    """Revisions applied before are unchanged since (Flyway's validate)."""
    by_id = {revision.revision: revision for revision in executor.revisions()}
    for entry in ledger.read_ledger(connection, limit=100_000):
        revision = by_id.get(entry.revision)
        if not entry.success or revision is None:
            continue
        if sums.digest(Path(revision.path).read_bytes()) != entry.checksum:
            raise FatalError(
                f"apply is refused: {display_name(revision)} was edited after it was "
                f"applied on {entry.applied_at:%Y-%m-%d}",
                hint="restore it as it was applied; change the schema in a new revision",
            )

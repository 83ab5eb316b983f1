"""Recording that a database already is at a revision, without running it: the baseline of a
database adopted by ``migrail pull``, whose schema the baseline only describes.

A stamp is a claim about the schema, so it is checked first: the database must have no revision
yet, and no drift from the schema the head implies (a database that lacks a table the baseline
creates would otherwise be recorded as having it). ``migrail stamp`` does so on unprotected
environments, under the migrate lock; a protected one is stamped only through an approved plan
(``plan --stamp``), as it changes only through plans. Either way ``alembic_version`` and
``migrail.history`` are written in one transaction, the ledger's row marked as stamped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.history import sums
from migrail.release import ledger
from migrail.release.moving import stamp_move

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.core.config import Environment
    from migrail.engine.executor import Executor

# What to do instead of stamping a protected environment directly.
PROTECTED_HINT = (
    "stamp it through a release plan: migrail plan --env {env} --stamp, then approve and apply"
)


def refuse_protected(environment: Environment, connection: Connection | None = None) -> None:
    """A protected environment changes only through an approved plan; a database that says it
    is protected is one, whatever it was reached as."""
    from migrail.postgres.identity import read_identity

    if environment.protected:
        raise FatalError(
            f"stamping is refused: environment {environment.name} is protected, and changes only "
            "through an approved plan",
            hint=PROTECTED_HINT.format(env=environment.name),
        )
    identity = read_identity(connection) if connection is not None else None
    if identity is not None and identity.protected:
        raise FatalError(
            f"stamping is refused: the database says it is {identity.name}, a protected "
            f"environment (you named it {environment.name})",
            hint=PROTECTED_HINT.format(env=identity.name),
        )


def refuse_drift(executor: Executor, connection: Connection, head: str) -> None:
    """The database has the schema ``head`` implies, or stamping it would be a false record."""
    from migrail.release.drift import find_drift

    drifted, _ = find_drift(executor, connection, (head,))
    connection.rollback()
    if drifted:
        lines = "".join(f"\n  {line}" for line in drifted)
        raise FatalError(
            f"stamping is refused: the database is not at {executor.label((head,))}'s schema "
            f"(+ the history has it and the database does not; - the reverse):{lines}",
            hint="make the baseline describe the database (migrail pull writes one from it), "
            "or bring the database to it first",
        )


def record_stamp(
    executor: Executor, connection: Connection, head: str, *, plan_id: str, direction: str
) -> None:
    """Write ``head`` into the version table and the ledger, in one transaction."""
    from alembic.runtime.migration import MigrationContext

    checksum = sums.digest(Path(executor.script.get_revision(head).path).read_bytes())
    where = executor.version_table(connection)
    MigrationContext.configure(connection, opts=where).stamp(executor.script, head)
    ledger.record(connection, head, checksum, 0.0, plan_id=plan_id, direction=direction)
    connection.commit()


def stamp_head(
    executor: Executor,
    connection: Connection,
    environment: Environment,
    on_wait: Callable[[], None],
) -> str:
    """Record the history's head as applied to a database that has no revision yet; its id."""
    from migrail.postgres.database import advisory_lock
    from migrail.postgres.identity import read_identity, record_identity
    from migrail.postgres.target import refuse_read_only

    refuse_read_only(connection, "stamp")
    refuse_protected(environment, connection)
    with advisory_lock(connection, on_wait=on_wait):
        move = stamp_move(executor, executor.current(connection), "stamp")
        assert move.target is not None  # stamp_move names the head or refuses
        refuse_drift(executor, connection, move.target)
        ledger.ensure_ledger(connection)
        record_stamp(executor, connection, move.target, plan_id=ledger.STAMPED, direction="upgrade")
        if read_identity(connection) is None:
            record_identity(connection, environment)
    return move.target

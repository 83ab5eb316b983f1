"""Recording that a database already is at a revision, without running it: the baseline of a
database adopted by ``migrail pull``, whose schema the baseline only describes.

Like ``migrate``, it is refused on a protected environment (which changes only through an
approved plan, and a plan cannot state a stamp yet) and on a database that says it is one; it
runs under the migrate lock, and ``alembic_version`` and ``migrail.history`` are written in one
transaction, the ledger's row marked as stamped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.history import sums
from migrail.release import ledger

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.core.config import Environment
    from migrail.engine.executor import Executor

# Why a protected environment cannot be stamped, and what to do instead.
PROTECTED_HINT = (
    "a release plan (migrail plan, approve, apply) cannot record a stamp yet, and applying the "
    "baseline would create tables that exist: commit the models and the baseline, and stamp "
    "only unprotected environments for now"
)


def refuse_protected(environment: Environment, connection: Connection | None = None) -> None:
    """A protected environment changes only through an approved plan, which cannot stamp; a
    database that says it is protected is one, whatever it was reached as."""
    from migrail.postgres.identity import read_identity

    if environment.protected:
        raise FatalError(
            f"stamping is refused: environment {environment.name} is protected, and changes only "
            "through an approved plan",
            hint=PROTECTED_HINT,
        )
    identity = read_identity(connection) if connection is not None else None
    if identity is not None and identity.protected:
        raise FatalError(
            f"stamping is refused: the database says it is {identity.name}, a protected "
            f"environment (you named it {environment.name})",
            hint=PROTECTED_HINT,
        )


def stamp_head(
    executor: Executor,
    connection: Connection,
    environment: Environment,
    on_wait: Callable[[], None],
) -> str:
    """Record the history's head as applied to a database that has no revision yet; its id."""
    from alembic.runtime.migration import MigrationContext

    from migrail.postgres.database import advisory_lock
    from migrail.postgres.identity import read_identity, record_identity
    from migrail.postgres.target import refuse_read_only

    refuse_read_only(connection, "stamp")
    refuse_protected(environment, connection)
    head = executor.head
    assert head is not None  # pull has just written the baseline
    with advisory_lock(connection, on_wait=on_wait):
        current = executor.current(connection)
        if current:
            raise FatalError(
                f"stamping is refused: the database is already at {executor.label(current)}",
                hint="a database with a revision changes through migrail migrate",
            )
        ledger.ensure_ledger(connection)
        checksum = sums.digest(Path(executor.script.get_revision(head).path).read_bytes())
        MigrationContext.configure(connection).stamp(executor.script, head)
        ledger.record(connection, head, checksum, 0.0, plan_id=ledger.STAMPED)
        connection.commit()
        if read_identity(connection) is None:
            record_identity(connection, environment)
    return head

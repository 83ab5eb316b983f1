"""What applying revisions produces: each step with its time, or the failure, told truthfully."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrail.core.urls import mask_text
from migrail.engine.environment import migrated, migrating
from migrail.engine.one_transaction import GUARD_SQLSTATE, TransactionGuard
from migrail.engine.revision_end import (
    ReadAtEnd,
    at_commit,
    install,
    left_behind,
    read_at_end,
)
from migrail.engine.usercode import UserCodeError, take_refusal
from migrail.history.revisions import allows, display_name

if TYPE_CHECKING:
    from pathlib import Path

    from alembic.script import Script
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Step:
    """One revision applied (or undone), and how long it took."""

    revision: Script
    seconds: float
    # It ran in the one transaction Alembic gave it, held to it from start to end, so that
    # what it did shows in that transaction (its locks); not so when a second one began (an
    # autocommit block) or the revision may end its own (``allow ends-transaction``).
    one_transaction: bool = True


@dataclass
class MigrationFailed(Exception):
    """A revision failed to apply: which one, the statement, and the database's error."""

    revision: Script | None
    direction: str
    error: str
    statement: str | None = None
    completed: list[Step] = field(default_factory=list)
    # The failed revision had committed part of its work first (an autocommit block commits
    # what ran before it, and runs its own statements outside any transaction).
    partly_committed: bool = False
    sqlstate: str | None = None  # the database's code for the error, where it gave one

    def __str__(self) -> str:
        if self.revision is not None:
            return f"{self.direction} of {display_name(self.revision)} failed: {self.error}"
        if self.completed:  # every revision went through; what came after them did not
            last = display_name(self.completed[-1].revision)
            return f"{self.direction} failed after {last}: {self.error}"
        return f"{self.direction} failed: {self.error}"


class StepWatch:
    """Which revisions really committed, and how long each took.

    Each step is the revision Alembic reports applied (``on_version_apply``), in the order they
    ran: never counted from transactions, which a revision that commits part-way multiplies.
    Alembic reports a revision as applied inside its transaction, before the COMMIT, which can
    still fail (a deferred constraint). A revision counts as done only when the next transaction
    begins or the run ends; its time runs from its own BEGIN, so no commit of another is in it.
    While a revision runs, ``guard`` holds it to that one transaction.
    """

    def __init__(
        self,
        plan: list[Script],
        on_step: Callable[[Step], None] | None,
        in_transaction: Callable[[Step], None] | None = None,
        *,
        root: Path,
    ) -> None:
        self.plan = plan
        self.on_step = on_step
        self.in_transaction = in_transaction
        self.guard = TransactionGuard(root)
        self.steps: list[Step] = []
        self._uncommitted: list[Step] = []
        self._applied = 0  # revisions Alembic reported applied: plan[_applied] runs next
        self._started: float | None = None
        self._ended: float | None = None  # when the last revision was reported applied
        self._one_transaction = True  # the running revision's, so far (``Step``)
        self._connection: Connection | None = None
        self._end_function: str | None = None  # what ``read_at_end`` calls (``install``)
        self._began_own = False  # the running revision began the transaction Alembic gave it
        # The revision reported applied is through migrail's work in its transaction: Alembic's
        # COMMIT of it is what comes next.
        self._committing = False

    @contextmanager
    def watching(self, connection: Connection) -> Iterator[None]:
        from sqlalchemy import event

        self.guard.install(connection)
        reads = self.in_transaction
        self._end_function = install(connection, reads if isinstance(reads, ReadAtEnd) else None)
        self._connection = connection
        event.listen(connection, "begin", self._began)
        try:
            with self.guard.guarding(connection):
                yield
        finally:
            event.remove(connection, "begin", self._began)

    def applied(self, **kwargs: Any) -> None:
        """Alembic's ``on_version_apply``: the revision it ran is done, in its transaction;
        unless it caught the refusal of a second connection and went on, which fails it here,
        before its transaction commits."""
        refused = take_refusal()
        if refused is not None:
            raise refused
        now = time.perf_counter()
        started = self._started if self._started is not None else self._ended or now
        revision = _ran(kwargs.get("step"), self.plan[min(self._applied, len(self.plan) - 1)])
        step = Step(revision, now - started, self._one_transaction)
        self._uncommitted.append(step)
        self._applied += 1
        self._started, self._ended = None, now
        began_own, self._began_own = self._began_own, False
        connection = self._connection
        callback = self.in_transaction
        reads = callback if isinstance(callback, ReadAtEnd) else None
        if connection is not None:
            # Found in its transaction, before its version commits: it fails, rolled back.
            release = self.guard.leave()
            function = self._end_function
            # In the one transaction it began, which Alembic commits next, where nothing is to
            # be read for the caller: the end read goes with that COMMIT. (What is read for
            # a caller is read here: it may run statements of its own in the transaction
            # after it, the sample rows of a new table; and a COMMIT that fails would lose it.)
            if (
                function is not None
                and reads is None
                and began_own
                and step.one_transaction
                and not self.guard.ended_part_way
            ):
                if callback is not None:
                    callback(step)  # still inside the revision's transaction
                    callback = None
                if at_commit(connection, release, function):
                    self._committing = True
                    return
            values = read_at_end(connection, release, reads, function)
            if reads is not None:
                reads.then(step, values)
                callback = None
        if callback is not None:  # still inside the revision's transaction
            callback(step)
        if connection is not None and self.guard.ended_part_way and connection.in_transaction():
            # It ended Alembic's transaction and went on in one Alembic does not know of, which
            # would carry on into the next revision: it ends here, with the revision's version.
            connection.commit()
        self._committing = True

    def committed(self) -> None:
        self._committing = False
        while self._uncommitted:
            self.steps.append(self._uncommitted.pop(0))
            if self.on_step is not None:
                self.on_step(self.steps[-1])

    def failure(self, direction: str, exc: Exception) -> MigrationFailed:
        """The revision that failed: the one reported applied whose COMMIT failed, or else the
        one running."""
        left_indexes = left_behind(exc)
        if left_indexes is not None and self._uncommitted:
            # Found in its transaction, before its version committed: it rolls back.
            left = self._uncommitted.pop()
            self.committed()
            return MigrationFailed(left.revision, direction, str(left_indexes), None, self.steps)
        # The driver's errors name their statement, and so does a lost connection's.
        statement: str | None = getattr(exc, "statement", None)
        statement = mask_text(statement) if statement else None
        if self._uncommitted and self._committed_meanwhile(exc):
            self.committed()  # its COMMIT went through: what failed came after it
        if self._uncommitted:
            statement = "COMMIT"
            failed: Script | None = self._uncommitted[0].revision
        else:
            failed = self.plan[self._applied] if self._applied < len(self.plan) else None
        error = describe_error(exc)
        if _sqlstate(exc) == GUARD_SQLSTATE:  # the session's guard refused a COMMIT
            error = self.guard.refused_commit(exc)
        partly = failed is not None and self.guard.blocks > 0 and not self._uncommitted
        return MigrationFailed(
            failed, direction, error, statement, self.steps, partly, _sqlstate(exc)
        )

    def stopped(self, direction: str) -> MigrationFailed:
        """The revision a signal stopped (``interrupts``): the one running, rolled back. One
        reported applied is done if its COMMIT went through (the session is out of its
        transaction: psycopg, interrupted, waits for the answer to what it sent); rolled back
        if the signal came before its COMMIT was sent; and either when the connection was
        closed as it committed (SQLAlchemy closes one interrupted in a statement)."""
        from migrail.engine.one_transaction import in_transaction

        connection = self._connection
        statement = None
        if connection is not None and migrated(connection):  # Alembic's run had returned
            self.committed()
        elif connection is None or connection.invalidated:
            statement = "COMMIT" if self._committing else None
        elif self._committing and not in_transaction(connection):
            self.committed()
        if self._uncommitted:
            failed: Script | None = self._uncommitted[0].revision
        else:
            failed = self.plan[self._applied] if self._applied < len(self.plan) else None
        partly = failed is not None and self.guard.blocks > 0 and not self._uncommitted
        return MigrationFailed(failed, direction, "interrupted", statement, self.steps, partly)

    def _committed_meanwhile(self, exc: Exception) -> bool:
        """Whether the last revision, reported applied, has committed after all: the project's
        code failed after it (env.py's own, once Alembic was done), and the session is out of
        the transaction."""
        from migrail.engine.one_transaction import in_transaction

        connection = self._connection
        last = self._applied == len(self.plan)
        if connection is None or not last:
            return False
        if migrated(connection):  # Alembic's run returned: its last COMMIT went through
            return True
        if connection.invalidated:
            return False
        return isinstance(exc, UserCodeError) and not in_transaction(connection)

    def _began(self, connection: Connection) -> None:
        if not migrating(connection):
            return  # env.py's own, before Alembic runs a revision: ended before one runs
        self.committed()
        if self._started is None:
            self._started = time.perf_counter()
            self._began_own = True
            if self._applied < len(self.plan):
                running = self.plan[self._applied]
                allowed = allows(running, "ends-transaction")
                self.guard.enter(running.revision, allowed=allowed)
                self._one_transaction = not allowed
        else:
            self._one_transaction = False
            self.guard.began(connection)


def _ran(step: Any, planned: Script) -> Script:
    """The revision Alembic says it ran (``on_version_apply``'s ``step``), else the planned one."""
    revision = getattr(step, "up_revision", None) if step is not None else None
    return revision if revision is not None else planned


def _sqlstate(exc: BaseException) -> str | None:
    from sqlalchemy.exc import DBAPIError

    error = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return getattr(getattr(error, "diag", None), "sqlstate", None)


def describe_error(exc: BaseException) -> str:
    """PostgreSQL's own message for database errors; the exception itself for anything else.

    Masked: a revision's own exception may name a URL with its password, and this text is
    printed, written into reports and recorded in the database's history.
    """
    from sqlalchemy.exc import DBAPIError

    from migrail.core.errors import FatalError
    from migrail.postgres.database import server_message

    if isinstance(exc, UserCodeError):
        return mask_text(str(exc))
    if isinstance(exc, FatalError):  # a lost connection, say: already in words
        return mask_text(exc.message)
    error = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if getattr(error, "diag", None) is None:  # not psycopg's, through SQLAlchemy or not
        return mask_text(f"{type(exc).__name__}: {exc}")
    return server_message(error)


def partly_committed_note(failed: MigrationFailed) -> str | None:
    """What stays of a revision that failed after an autocommit block had committed part of it:
    said, since its version row is missing and "the database is at" the revision before."""
    if not failed.partly_committed or failed.revision is None:
        return None
    return (
        f"  {display_name(failed.revision)} had committed part of its work before it failed: "
        "what ran before and inside its autocommit_block() stays in the database, without its "
        "version. Run again, it starts from the beginning: make those statements safe to "
        "repeat (IF NOT EXISTS), or undo them by hand first"
    )


def recorded_error(failed: MigrationFailed) -> str:
    """The error as migrail.history keeps a failed attempt: with what stayed committed, where
    an autocommit block had committed part of the revision (its version row is missing)."""
    if not failed.partly_committed:
        return failed.error
    return (
        f"{failed.error} (partly committed: what ran before and inside its autocommit_block() "
        "stays, without its version)"
    )


def lost_connection_note(failed: MigrationFailed, rerun: str) -> str:
    """What became of a revision whose connection was lost: rolled back, unless the COMMIT was
    sent, whose answer is what was lost."""
    if failed.statement == "COMMIT":
        return (
            "  the connection was lost during its COMMIT: the revision may be committed or not; "
            f"migrail status tells once the server answers, then {rerun}"
        )
    return (
        "  the revision was not committed: PostgreSQL rolls it back when it notices the "
        f"connection is gone; then {rerun}"
    )

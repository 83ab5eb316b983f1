"""Ctrl-C or SIGTERM while a revision runs: still an interrupt, which stops the run, lets its
cleanup run and exits 130 (or 143), and now says what it stopped.

A bare ``error: terminated`` leaves the user to guess which revision was running, whether it
was undone, and where the database is. The interrupt is raised again as ``RevisionInterrupted``
(``RevisionTerminated`` for SIGTERM), carrying the ``MigrationFailed`` ``StepWatch`` makes of
it; the layers it passes through add what only they know (staging's phase, the revision the
database is at once the connection is closed), and ``main`` tells it, in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from migrail.core.errors import NamedInterrupt, Terminated
from migrail.engine.steps import MigrationFailed, partly_committed_note
from migrail.engine.usercode import STOPPED
from migrail.history.revisions import display_name

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migrail.engine.executor import Executor


# Writes an interrupted revision's attempt down on a connection of its own (``database_told``).
Record = Callable[["Connection", MigrationFailed], object]


class RevisionInterrupted(NamedInterrupt):
    """Ctrl-C while a revision ran: which one, and how it ended (``failed``); ``phase``, the
    part of migrate-staging's proof it stopped; ``database_at``, where the database is now."""

    def __init__(self, failed: MigrationFailed) -> None:
        super().__init__(failed.error)
        self.failed = failed
        self.phase: str | None = None
        self.database_at: str | None = None

    def told(self) -> list[str]:
        """The failure's line, then the lines under it, as ``MigrationFailed`` is told."""
        failed = self.failed
        word = failed.error
        phase = f" (staging phase: {self.phase})" if self.phase else ""
        notes = []
        if failed.revision is None:
            last = failed.completed[-1].revision if failed.completed else None
            after = f" once {display_name(last)}, the last, had committed" if last else ""
            headline = f"{word} after the {failed.direction}{phase}{after}"
        else:
            running = f"{word} during the {failed.direction} of {display_name(failed.revision)}"
            if failed.statement == "COMMIT":
                headline = f"{running}{phase}, as it committed: it may be committed or not"
            elif failed.partly_committed:
                headline = f"{running}{phase}: stopped there and rolled back"
                notes.append(partly_committed_note(failed) or "")
            else:
                headline = f"{running}{phase}: {STOPPED}"
        if self.database_at is not None:
            notes.append(f"  the database is at {self.database_at}")
        return [headline, *notes]


class RevisionTerminated(RevisionInterrupted, Terminated):
    """SIGTERM while a revision ran (a cancelled CI job): exit 143, as ``Terminated``."""


def interrupted(signal: KeyboardInterrupt, failed: MigrationFailed) -> RevisionInterrupted:
    """``signal`` (Ctrl-C, or SIGTERM's ``Terminated``) as the interrupt of ``failed``."""
    terminated = isinstance(signal, Terminated)
    failed.error = "terminated" if terminated else "interrupted"
    return (RevisionTerminated if terminated else RevisionInterrupted)(failed)


@contextmanager
def database_told(
    executor: Executor, url: URL, command: str, record: Record | None = None
) -> Iterator[None]:
    """Around the connection ``command`` runs revisions on: a revision interrupted is told with
    the revision the database at ``url`` is at, read on a new connection once that one is
    closed (SQLAlchemy closes one interrupted in a statement), the revision's transaction rolled
    back with it; and ``record`` writes the attempt down there (``migrail.history`` keeps every
    attempt, an interrupted one too), unless it committed after all. A second signal, or a
    server gone, while that is done: told without it."""
    from migrail.postgres.target import connect_target

    try:
        yield
    except RevisionInterrupted as stopped:
        lock_timeout = executor.config.lock_timeout
        with (
            suppress(Exception, KeyboardInterrupt),
            connect_target(url, command, lock_timeout=lock_timeout) as connection,
        ):
            current = executor.current(connection)
            stopped.database_at = executor.label(current)
            if record is not None and not _committed(stopped.failed, current):
                record(connection, stopped.failed)
        raise


def _committed(failed: MigrationFailed, current: Sequence[str]) -> bool:
    """Whether the revision interrupted committed all the same (the signal came as its COMMIT
    was sent), as the revision the database is at now says; a revision with none running did."""
    if failed.revision is None:
        return True
    if failed.statement != "COMMIT":
        return False
    applied = failed.revision.revision in current
    return applied if failed.direction == "upgrade" else not applied

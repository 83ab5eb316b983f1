"""What migrail reads at the end of each revision, in its transaction, in one statement.

Every revision ends with a look at the catalog for INVALID indexes (which fail it before it
commits) and, while the session's guard holds the transaction, the release that lets its COMMIT
through (``one_transaction``). A caller's ``in_transaction`` callback that starts by reading
something of its own (the locks a revision holds, ``postgres.observe``) says what as a
``ReadAtEnd``: its expressions join the same statement. One round trip instead of three, at
every revision of every phase.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.engine.steps import Step


@dataclass(frozen=True)
class ReadAtEnd:
    """An ``in_transaction`` callback that reads ``sql`` (select-list expressions) in the
    revision's transaction, then hands the values to ``then``. ``StepWatch`` reads them in the
    statement it sends at the end of each revision anyway; called as any ``in_transaction``
    callback, it reads them itself, on ``connection()``."""

    sql: str
    then: Callable[[Step, Sequence[Any]], None]
    connection: Callable[[], Connection]

    def __call__(self, step: Step) -> None:
        from sqlalchemy import text

        self.then(step, tuple(self.connection().execute(text(f"SELECT {self.sql}")).one()))


def read_at_end(
    connection: Connection, release: str | None, callback: ReadAtEnd | None
) -> tuple[list[str], Sequence[Any]]:
    """The INVALID indexes in the database (those being built now left out), with ``release``
    (an SQL expression: the guard's) evaluated and ``callback``'s expressions read, in one
    statement; the indexes, and the values of ``callback``'s expressions (empty without it)."""
    from sqlalchemy import text

    from migrail.postgres.invalid_indexes import INVALID, still_invalid

    expressions = [INVALID, *([release] if release else [])]
    row = tuple(
        connection.execute(
            text(f"SELECT {', '.join(expressions)}{f', {callback.sql}' if callback else ''}")
        ).one()
    )
    return still_invalid(connection, row[0]), row[len(expressions) :]

"""One transaction per revision, held: a revision that ends its own transaction part-way is
stopped before the rest of it runs, and fails naming itself.

Alembic gives each revision a transaction, so that a failure leaves nothing of it applied. A
revision that calls ``op.get_bind().commit()`` (or runs ``COMMIT``) splits it in two: when a
later statement fails, the first half stays committed while ``alembic_version`` still names the
revision before. The one sanctioned way out of the transaction, Alembic's
``autocommit_block()``, is recognised and allowed.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.engine.usercode import UserCodeError, located

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

ADVICE = (
    "A revision runs in one transaction; what cannot run in one goes in "
    "`with op.get_context().autocommit_block():`"
)
STOPPED = "stopped there and rolled back, none of it applied"
# What a statement's text may hide a transaction's end in: quoted strings, comments, bodies.
_OPAQUE = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$|--[^\n]*|/\*.*?\*/", re.DOTALL
)
# Where END closes something else: CASE expressions, then SQL-standard function bodies.
_NOT_TRANSACTIONS = (
    re.compile(r"\bcase\b.*?\bend\b", re.IGNORECASE | re.DOTALL),
    re.compile(r"\bbegin\s+atomic\b.*?\bend\b", re.IGNORECASE | re.DOTALL),
)
# Statements that end the transaction they run in.
_ENDS = re.compile(
    r"\s*(commit|end|abort|rollback(?!\s+(?:to|prepared)\b)|prepare\s+transaction)\b",
    re.IGNORECASE,
)


class SecondTransaction(UserCodeError):
    """A revision ended its own transaction before it finished."""


def transaction_end(sql: str) -> str | None:
    """The statement in ``sql`` that would end the transaction it runs in (``COMMIT``...)."""
    bare = _OPAQUE.sub(" ", sql)
    for block in _NOT_TRANSACTIONS:
        bare = block.sub(" ", bare)
    for piece in bare.split(";"):
        found = _ENDS.match(piece)
        if found:
            return " ".join(found.group(1).upper().split())
    return None


class TransactionGuard:
    """Watches one connection while revisions run on it; ``StepWatch`` says when a revision is
    running (``enter``) and when it is done (``leave``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running = False
        self._ended: str | None = None  # how this revision's transaction ended, and where
        self._ran = False  # a statement ran in the revision's current transaction

    def enter(self) -> None:
        self.running, self._ended, self._ran = True, None, False

    def leave(self) -> None:
        self.running = False

    def began(self, connection: Connection) -> None:
        """Another transaction begins inside the running revision: in an autocommit block,
        as it should; otherwise the statement about to run in it fails."""
        self._ran = False
        if self._watched(connection) and self._ended is None:
            self._ended = f"a second transaction began {self._where()}".rstrip()

    @contextmanager
    def guarding(self, connection: Connection) -> Iterator[None]:
        from sqlalchemy import event

        listeners: dict[str, Callable[..., None]] = {
            "commit": self._commit,
            "rollback": self._rollback,
            "before_cursor_execute": self._before,
            "after_cursor_execute": self._after,
        }
        for name, listener in listeners.items():
            event.listen(connection, name, listener)
        try:
            yield
        finally:
            for name, listener in listeners.items():
                event.remove(connection, name, listener)

    def _watched(self, connection: Connection) -> bool:
        autocommit = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        return self.running and not autocommit and not _in_autocommit_block()

    def _commit(self, connection: Connection) -> None:
        if self._watched(connection):
            self._ended = f"commit() {self._where()}".rstrip()
            # SQLAlchemy marks a transaction whose commit failed inactive, and then rolls it
            # back only in its own books: the driver's must really end here.
            connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            raise SecondTransaction(
                f"it commits its transaction part-way ({self._ended}): {STOPPED}. {ADVICE}"
            )

    def _rollback(self, connection: Connection) -> None:
        # Let through (Alembic rolls a failed revision back this way); a statement after it
        # would run in a second transaction, and fails.
        if self._watched(connection) and self._ended is None:
            self._ended = f"rollback() {self._where()}".rstrip()

    def _before(self, connection: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if not self._watched(connection):
            return
        if self._ended is not None:
            raise SecondTransaction(
                f"it ended its transaction part-way ({self._ended}) and went on in a second "
                f"one: {STOPPED}. {ADVICE}"
            )
        end = transaction_end(sql)
        if end is not None:
            raise SecondTransaction(
                f"it runs {end} {self._where()}, which would end its transaction part-way: "
                f"{STOPPED}. {ADVICE}"
            )
        if self._ran and not _in_transaction(connection):
            raise SecondTransaction(
                f"its transaction was ended part-way behind SQLAlchemy's back (a commit on the "
                f"driver's connection?), found {self._where() or 'at its next statement'}: what "
                f"it ran before may be committed. {ADVICE}"
            )

    def _after(self, connection: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if not self._watched(connection):
            return
        self._ran = True
        if not _in_transaction(connection):
            raise SecondTransaction(
                f"a statement {self._where()} ended its transaction part-way: what the revision "
                f"ran before it is committed, the rest is not. {ADVICE}"
            )

    def _where(self) -> str:
        return located(traceback.extract_stack(), self.root)


def _in_transaction(connection: Connection) -> bool:
    """Whether the driver's connection is inside a transaction block (or a failed one)."""
    from psycopg.pq import TransactionStatus

    driver = connection.connection.dbapi_connection
    status = getattr(getattr(driver, "info", None), "transaction_status", None)
    return status is None or status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)


def _in_autocommit_block() -> bool:
    """Whether Alembic's ``autocommit_block()`` is on the stack: its commits are sanctioned."""
    from alembic.runtime.migration import MigrationContext

    code = MigrationContext.autocommit_block.__wrapped__.__code__  # type: ignore[attr-defined]
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False

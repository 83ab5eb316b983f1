"""One transaction per revision, held: a revision that ends its own transaction part-way is
stopped before the rest of it runs, and fails naming itself.

Alembic gives each revision a transaction, so that a failure leaves nothing of it applied. A
revision that calls ``op.get_bind().commit()`` (or runs ``COMMIT``) splits it in two: when a
later statement fails, the first half stays committed while ``alembic_version`` still names the
revision before. The one sanctioned way out of the transaction, Alembic's
``autocommit_block()``, is recognised and allowed; so is a revision whose file accepts it with
``# migrail: allow ends-transaction -- reason`` (histories already deployed do it), whose
transaction migrail then lets end where the revision ends it.

Two layers hold it. SQLAlchemy's events stop a commit, a rollback or a ``COMMIT`` statement
before it happens and name the line. Below them, in the session itself, a deferred constraint
trigger on a temporary table makes any COMMIT that migrail did not release fail, so that a
commit through the driver (``op.get_bind().connection.commit()``, a raw cursor) rolls the
revision back as well, instead of leaving half of it.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.engine.usercode import STOPPED, UserCodeError, located
from migrail.postgres.left_roles import note_statement

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

ADVICE = (
    "A revision runs in one transaction; what cannot run in one goes in "
    "`with op.get_context().autocommit_block():`"
)
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


GUARD_SQLSTATE = "MG001"  # raised by the session's guard when a COMMIT was not migrail's
# Lets the transaction's COMMIT through the session's guard (a SET LOCAL, as an expression).
RELEASE = "set_config('migrail.revision_done', 'on', true)"
_GUARD_TABLE = "pg_temp.migrail_one_transaction"
_GUARD_SETUP = (
    # Its rows are never read (the trigger sees each as it is inserted): kept, rather than
    # deleted at every COMMIT, which would truncate the table in every revision's transaction.
    "CREATE TEMP TABLE migrail_one_transaction (revision text)",
    f"""CREATE FUNCTION {_GUARD_TABLE}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('migrail.revision_done', true), '') <> 'on'
       AND current_query() !~* '^\\s*set\\s+constraints[^;]*;?\\s*$' THEN
        RAISE EXCEPTION 'revision % ended its transaction part-way', NEW.revision
            USING ERRCODE = '{GUARD_SQLSTATE}';
    END IF;
    RETURN NULL;
END $$""",
    f"CREATE CONSTRAINT TRIGGER migrail_one_transaction AFTER INSERT ON {_GUARD_TABLE} "
    f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {_GUARD_TABLE}()",
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
        self.running: str | None = None  # the revision running, by id
        self.in_block = False  # inside Alembic's autocommit_block(), where commits are its own
        self.allowed = False  # the running revision may end its transaction (its file says so)
        self.ended_part_way = False  # and it did, outside an autocommit block
        self.blocks = 0  # autocommit blocks the running revision entered: each commits before it
        self._ended: str | None = None  # how this revision's transaction ended, and where
        self._ran = False  # a statement ran in the revision's current transaction
        self._armed = False  # the session's guard holds the current transaction
        self._server_side = False

    def install(self, connection: Connection) -> None:
        """The session's guard: a temporary table whose deferred trigger fails a COMMIT that
        migrail did not release. Without the TEMP privilege, the events alone hold."""
        import psycopg

        driver = _driver(connection)
        try:
            found = driver.execute(f"SELECT to_regclass('{_GUARD_TABLE}')").fetchone()
            if found is None or found[0] is None:
                for statement in _GUARD_SETUP:
                    driver.execute(statement)
            driver.commit()
            self._server_side = True
        except psycopg.Error:
            driver.rollback()
            self._server_side = False

    def enter(self, revision: str, *, allowed: bool = False) -> None:
        self.running, self._ended, self._ran, self._armed = revision, None, False, False
        self.allowed, self.ended_part_way, self.blocks = allowed, False, 0

    def leave(self) -> str | None:
        """The revision finished inside its transaction: the COMMIT that follows is migrail's.
        What releases the session's guard, as an SQL expression for the caller to evaluate in
        that transaction (in a query it sends anyway, which saves a round trip); ``None``
        when the guard does not hold the transaction."""
        release = RELEASE if self._armed else None
        self.running, self._armed, self.allowed, self.blocks = None, False, False, 0
        return release

    def began(self, connection: Connection) -> None:
        """Another transaction begins inside the running revision: in an autocommit block,
        as it should; otherwise the statement about to run in it fails."""
        self._ran = False
        if self._watched(connection) and self._ended is None:
            self._ended = f"a second transaction began {self._where()}".rstrip()

    @contextmanager
    def autocommit_block(self, connection: Connection) -> Iterator[None]:
        """Around Alembic's ``autocommit_block()``: its COMMIT is released, and the transaction
        Alembic begins after it is held again."""
        if self._armed and connection.in_transaction():
            _driver(connection).execute("SET LOCAL migrail.revision_done = 'on'")
        self._armed, self.in_block = False, True
        if self.running is not None:
            self.blocks += 1
        try:
            yield
        finally:
            self.in_block = False
            self._ran = False

    @contextmanager
    def guarding(self, connection: Connection) -> Iterator[None]:
        from alembic.runtime.migration import MigrationContext
        from sqlalchemy import event

        listeners: dict[str, Callable[..., None]] = {
            "commit": self._commit,
            "rollback": self._rollback,
            "before_cursor_execute": self._before,
            "after_cursor_execute": self._after,
        }
        for name, listener in listeners.items():
            event.listen(connection, name, listener)
        event.listen(connection.engine, "checkout", self._checkout)
        original = MigrationContext.autocommit_block
        guard = self

        @contextmanager
        def autocommit_block(context: MigrationContext) -> Iterator[None]:
            with guard.autocommit_block(connection), original(context):
                yield

        MigrationContext.autocommit_block = autocommit_block  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            MigrationContext.autocommit_block = original  # type: ignore[method-assign]
            event.remove(connection.engine, "checkout", self._checkout)
            for name, listener in listeners.items():
                event.remove(connection, name, listener)

    def _checkout(self, *_: Any) -> None:
        """A second connection opened while a revision runs: what it does is outside the
        revision's transaction (committed whatever becomes of the revision)."""
        if self.running is not None:
            raise SecondTransaction(
                f"it opens a second connection {self._where()}, whose work would not be part "
                f"of its transaction: {STOPPED}. Use op.get_bind(), the revision's own"
            )

    def _watched(self, connection: Connection) -> bool:
        return self.running is not None and not self.in_block and not self.allowed

    def _note_allowed_end(self) -> None:
        """An allowed revision ends its transaction itself (``_watched`` lets it): remembered,
        so that what it runs after is committed at its end."""
        if self.running is not None and not self.in_block and self.allowed:
            self.ended_part_way = True

    def _commit(self, connection: Connection) -> None:
        self._note_allowed_end()
        if self._watched(connection):
            self._ended = f"commit() {self._where()}".rstrip()
            # SQLAlchemy marks a transaction whose commit failed inactive, and then rolls it
            # back only in its own books: the driver's must really end here.
            _driver(connection).rollback()
            raise SecondTransaction(
                f"it commits its transaction part-way ({self._ended}): {STOPPED}. {ADVICE}"
            )

    def _rollback(self, connection: Connection) -> None:
        # Let through (Alembic rolls a failed revision back this way); a statement after it
        # would run in a second transaction, and fails.
        self._note_allowed_end()
        if self._watched(connection) and self._ended is None:
            self._ended = f"rollback() {self._where()}".rstrip()

    def _before(self, connection: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if self.running is not None:
            note_statement(sql)  # a role it makes outlives a throwaway database: see left_roles
        if not self._watched(connection):
            return
        if self._ended is not None:
            raise SecondTransaction(
                f"it ended its transaction part-way ({self._ended}) and went on in a second "
                f"one: {STOPPED}. {ADVICE}"
            )
        end = transaction_end(sql)
        if end is None and not self._armed and self._server_side:
            # The revision's transaction, held from its first statement (which begins it).
            _hold(_driver(connection), self.running)
            self._armed = True
        if end is not None:
            raise SecondTransaction(
                f"it runs {end} {self._where()}, which would end its transaction part-way: "
                f"{STOPPED}. {ADVICE}"
            )
        if self._ran and not in_transaction(connection):
            raise SecondTransaction(
                f"its transaction was ended part-way behind SQLAlchemy's back (a commit on the "
                f"driver's connection?), found {self._where() or 'at its next statement'}: what "
                f"it ran before may be committed. {ADVICE}"
            )

    def _after(self, connection: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if not self._watched(connection):
            return
        self._ran = True
        if not in_transaction(connection):
            raise SecondTransaction(
                f"a statement {self._where()} ended its transaction part-way: what the revision "
                f"ran before it is committed, the rest is not. {ADVICE}"
            )

    def refused_commit(self, exc: BaseException) -> str:
        """The failure of a revision whose COMMIT the session's guard refused: one made
        behind SQLAlchemy's back, which rolled the revision back whole."""
        where = located(traceback.extract_tb(exc.__traceback__), self.root)
        return (
            f"it commits its transaction part-way (through the driver{', ' if where else ''}"
            f"{where}): {STOPPED}. {ADVICE}"
        )

    def _where(self) -> str:
        return located(traceback.extract_stack(), self.root)


def _hold(driver: Any, revision: str | None) -> None:
    """The session's guard armed for ``revision``'s transaction: its row inserted. Where the
    transaction has not begun yet (the revision's first statement), it begins in the same
    message, as the driver would have begun it: a round trip fewer at every revision."""
    from psycopg import pq, sql

    from migrail.postgres.together import send_together

    insert = sql.SQL("INSERT INTO {} VALUES ({})").format(
        sql.SQL(_GUARD_TABLE), sql.Literal(revision)
    )
    begin = getattr(driver, "_get_tx_start_command", None)
    idle = driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
    if driver.autocommit or not idle or begin is None:
        driver.execute(insert)
        return
    send_together(driver, begin() + b"; " + insert.as_bytes(driver))


def in_transaction(connection: Connection) -> bool:
    """Whether the driver's connection is inside a transaction block (or a failed one)."""
    from psycopg.pq import TransactionStatus

    driver = _driver(connection)
    status = getattr(getattr(driver, "info", None), "transaction_status", None)
    return status is None or status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)


def _driver(connection: Connection) -> Any:
    """The driver's own connection (psycopg's) under SQLAlchemy's."""
    return connection.connection.dbapi_connection

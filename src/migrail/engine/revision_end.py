"""What migrail reads at the end of each revision, in its transaction, and how little that costs.

Every revision ends with a look at the catalog for INVALID indexes (which fail it before it
commits) and, while the session's guard holds the transaction, the release that lets its COMMIT
through (``one_transaction``). A caller's ``in_transaction`` callback that starts by reading
something of its own (the locks a revision holds, ``postgres.observe``) says what as a
``ReadAtEnd``: its expressions join the same statement.

That statement is a function of the session (``install``), not text sent each time: a query
on the catalog sent as text is planned anew at every revision, and after a revision's DDL that
planning costs a millisecond or two (more than the DDL on a wide table); PostgreSQL keeps the
plans of a PL/pgSQL function's statements for the session. (psycopg's own prepared statements
do not last: it forgets them after every ALTER or DROP.) The function fails the transaction
itself when INVALID indexes are left (``INVALID_SQLSTATE``), so that, where nothing is read for
a caller, it can be sent in the same message as the COMMIT (``at_commit``): nothing commits if
it fails, and a revision costs the round trips Alembic's own take. Without the TEMP privilege,
the text is sent as it is, in the revision's transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.engine.steps import Step

_FUNCTION = "pg_temp.migrail_revision_end_{digest}"
# Raised by the session's function when the revision leaves INVALID indexes: their names, as a
# JSON array, are the error's DETAIL.
INVALID_SQLSTATE = "MG002"


class InvalidIndexesLeft(Exception):
    """After a revision, the database holds INVALID indexes: a concurrent build failed."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        shown = ", ".join(names)
        drops = "; ".join(f"DROP INDEX CONCURRENTLY {name}" for name in names)
        super().__init__(
            f"it leaves INVALID index {shown} (pg_index.indisvalid is false): a CREATE INDEX "
            "CONCURRENTLY failed, and the index enforces and speeds up nothing. Find why the "
            f"build failed (duplicates, for a unique index), then {drops}, and run it again"
        )


@dataclass(frozen=True)
class ReadAtEnd:
    """An ``in_transaction`` callback that reads ``sql`` (select-list expressions) in the
    revision's transaction, then hands the values to ``then``, still in that transaction.
    ``StepWatch`` reads them in the statement it sends at the end of each revision anyway,
    where they arrive as JSON gives them (a ``json`` value as it was, a number as a number,
    ``void`` as ``""``); called as any ``in_transaction`` callback, it reads them itself, on
    ``connection()``."""

    sql: str
    then: Callable[[Step, Sequence[Any]], None]
    connection: Callable[[], Connection]

    def __call__(self, step: Step) -> None:
        from sqlalchemy import text

        self.then(step, tuple(self.connection().execute(text(f"SELECT {self.sql}")).one()))


def install(connection: Connection, callback: ReadAtEnd | None) -> str | None:
    """The session's function that ``read_at_end`` and ``at_commit`` call with ``callback``'s
    expressions, created unless this session has it already; ``None`` where it cannot be (no
    TEMP privilege), and the text is sent instead. Outside any revision's transaction, which it
    commits: a function made inside one would go if that revision rolled back."""
    from migrail.engine.one_transaction import RELEASE
    from migrail.postgres.invalid_indexes import still_invalid_query
    from migrail.postgres.session_functions import session_function

    driver = connection.connection.dbapi_connection
    assert driver is not None
    body = (
        "DECLARE\n    found json;\nBEGIN\n"
        f"    found := (SELECT json_agg(name ORDER BY name) FROM ("
        f"{still_invalid_query(driver.info.server_version // 10000)}) AS left_behind(name));\n"
        "    IF found IS NOT NULL THEN\n"
        "        RAISE EXCEPTION 'INVALID indexes left behind'\n"
        f"            USING ERRCODE = '{INVALID_SQLSTATE}', DETAIL = found::text;\n"
        "    END IF;\n"
        f"    IF release THEN PERFORM {RELEASE}; END IF;\n"
        f"    RETURN json_build_array({callback.sql if callback is not None else ''});\n"
        "END"
    )
    name = _FUNCTION.format(digest=hashlib.sha256(body.encode()).hexdigest()[:12])
    create = (
        f"CREATE FUNCTION {name}(release boolean) RETURNS json LANGUAGE plpgsql AS $f$\n{body}\n$f$"
    )
    return name if session_function(driver, f"{name}(boolean)", create) else None


def read_at_end(
    connection: Connection,
    release: str | None,
    callback: ReadAtEnd | None,
    function: str | None = None,
) -> Sequence[Any]:
    """The values of ``callback``'s expressions (empty without it), read in the revision's
    transaction with ``release`` (an SQL expression: the guard's) evaluated; ``InvalidIndexesLeft``
    when INVALID indexes are left in the database (those being built now aside). One statement:
    a call of ``function`` (``install``'s, made for this ``callback``) where there is one."""
    import psycopg
    from sqlalchemy import text

    from migrail.postgres.invalid_indexes import INVALID, still_invalid

    if function is not None:
        driver = connection.connection.dbapi_connection
        assert driver is not None
        try:
            called = driver.execute(f"SELECT {function}(%s)", (release is not None,)).fetchone()
        except psycopg.Error as exc:
            left = left_behind(exc)
            if left is None:
                raise
            raise left from None
        assert called is not None
        return list(called[0])
    expressions = [INVALID, *([release] if release else [])]
    row = tuple(
        connection.execute(
            text(f"SELECT {', '.join(expressions)}{f', {callback.sql}' if callback else ''}")
        ).one()
    )
    invalid = still_invalid(connection, row[0])
    if invalid:
        raise InvalidIndexesLeft(invalid)
    return row[len(expressions) :]


def at_commit(connection: Connection, release: str | None, function: str) -> bool:
    """Have the call of ``function`` that ends the revision sent with its COMMIT, in the same
    message (nothing is read for a caller then). ``False`` where the driver's connection cannot
    (not migrail's own), and nothing is arranged."""
    from migrail.postgres.liveness import WatchedConnection

    driver = connection.connection.dbapi_connection
    if not isinstance(driver, WatchedConnection):
        return False
    driver.commit_after(f"SELECT {function}({'true' if release else 'false'})".encode())
    return True


def left_behind(exc: BaseException) -> InvalidIndexesLeft | None:
    """The INVALID indexes a revision left, from the session's function's failure (``exc``
    itself, or the driver's error under SQLAlchemy's), or ``InvalidIndexesLeft`` as it is."""
    if isinstance(exc, InvalidIndexesLeft):
        return exc
    error = getattr(exc, "orig", None) or exc
    diag = getattr(error, "diag", None)
    if diag is None or getattr(diag, "sqlstate", None) != INVALID_SQLSTATE:
        return None
    return InvalidIndexesLeft([str(name) for name in json.loads(diag.message_detail or "[]")])

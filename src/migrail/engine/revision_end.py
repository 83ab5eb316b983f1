"""What migrail reads at the end of each revision, in its transaction, in one statement.

Every revision ends with a look at the catalog for INVALID indexes (which fail it before it
commits) and, while the session's guard holds the transaction, the release that lets its COMMIT
through (``one_transaction``). A caller's ``in_transaction`` callback that starts by reading
something of its own (the locks a revision holds, ``postgres.observe``) says what as a
``ReadAtEnd``: its expressions join the same statement. One round trip instead of three, at
every revision of every phase.

That statement is a function of the session (``install``), not text sent each time: a query
on the catalog sent as text is planned anew at every revision, and after a revision's DDL that
planning costs a millisecond or two (more than the DDL on a wide table); PostgreSQL keeps the
plans of a PL/pgSQL function's statements for the session. (psycopg's own prepared statements
do not last: it forgets them after every ALTER or DROP.) Without the TEMP privilege, the text
is sent as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.engine.steps import Step

_FUNCTION = "pg_temp.migrail_revision_end_{digest}"


@dataclass(frozen=True)
class ReadAtEnd:
    """An ``in_transaction`` callback that reads ``sql`` (select-list expressions) in the
    revision's transaction, then hands the values to ``then``. ``StepWatch`` reads them in the
    statement it sends at the end of each revision anyway, where they arrive as JSON gives them
    (a ``json`` value as it was, a number as a number, ``void`` as ``""``); called as any
    ``in_transaction`` callback, it reads them itself, on ``connection()``."""

    sql: str
    then: Callable[[Step, Sequence[Any]], None]
    connection: Callable[[], Connection]

    def __call__(self, step: Step) -> None:
        from sqlalchemy import text

        self.then(step, tuple(self.connection().execute(text(f"SELECT {self.sql}")).one()))


def install(connection: Connection, callback: ReadAtEnd | None) -> str | None:
    """The session's function that ``read_at_end`` calls with ``callback``'s expressions,
    created unless this session has it already; ``None`` where it cannot be (no TEMP
    privilege), and the text is sent instead. Outside any revision's transaction, which it
    commits: a function made inside one would go if that revision rolled back."""
    import psycopg

    from migrail.engine.one_transaction import RELEASE
    from migrail.postgres.invalid_indexes import INVALID

    extra = f", {callback.sql}" if callback is not None else ""
    name = _FUNCTION.format(digest=hashlib.sha256(extra.encode()).hexdigest()[:12])
    driver = connection.connection.dbapi_connection
    assert driver is not None
    try:
        found = driver.execute(f"SELECT to_regprocedure('{name}(boolean)')").fetchone()
        if found is None or found[0] is None:
            driver.execute(
                f"CREATE FUNCTION {name}(release boolean) RETURNS json LANGUAGE plpgsql AS $f$\n"
                f"BEGIN\n"
                f"    IF release THEN PERFORM {RELEASE}; END IF;\n"
                f"    RETURN json_build_array({INVALID}{extra});\n"
                f"END $f$"
            )
        driver.commit()
    except psycopg.Error:
        driver.rollback()
        return None
    return name


def read_at_end(
    connection: Connection,
    release: str | None,
    callback: ReadAtEnd | None,
    function: str | None = None,
) -> tuple[list[str], Sequence[Any]]:
    """The INVALID indexes in the database (those being built now left out), with ``release``
    (an SQL expression: the guard's) evaluated and ``callback``'s expressions read, in one
    statement: a call of ``function`` (``install``'s, made for this ``callback``) where there
    is one. The indexes, and the values of ``callback``'s expressions (empty without it)."""
    from sqlalchemy import text

    from migrail.postgres.invalid_indexes import INVALID, still_invalid

    if function is not None:
        driver = connection.connection.dbapi_connection
        assert driver is not None
        called = driver.execute(f"SELECT {function}(%s)", (release is not None,)).fetchone()
        assert called is not None
        values = called[0]
        return still_invalid(connection, values[0]), values[1:]
    expressions = [INVALID, *([release] if release else [])]
    row = tuple(
        connection.execute(
            text(f"SELECT {', '.join(expressions)}{f', {callback.sql}' if callback else ''}")
        ).one()
    )
    return still_invalid(connection, row[0]), row[len(expressions) :]

"""Several statements in one message to the server: one round trip where there would be several.

Each revision of a run pays a fixed number of round trips (its BEGIN, the guard's row, its own
statements, Alembic's version row, migrail's look at its end, its COMMIT); on a machine where a
round trip costs a few tenths of a millisecond, that is most of what a thousand revisions cost
beyond their DDL. What needs no answer in between goes in one message, as the simple query
protocol allows (``BEGIN; INSERT ...``, ``SELECT ...; COMMIT``): the server runs the statements
in turn and stops at the first error, whose transaction then commits nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg.pq.abc import PGresult


def send_together(driver: Any, statements: bytes) -> list[PGresult]:
    """Send ``statements`` (``;``-separated, no parameters) on psycopg's connection ``driver``
    in one message and wait, as the driver waits, for every result; the first error is raised
    as psycopg raises it."""
    import psycopg
    from psycopg import generators, pq

    with driver.lock:
        driver.pgconn.send_query(statements)
        results: list[PGresult] = driver.wait(generators.execute(driver.pgconn))
    for result in results:
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            raise psycopg.errors.error_from_result(result, encoding=driver.info.encoding)
    return results

"""Functions of the session (in ``pg_temp``) for the queries migrail sends at every revision.

PostgreSQL keeps the plans of a PL/pgSQL function's statements for the session, where a query
sent as text is planned anew each time, and after a revision's DDL that planning can cost more
than the query (psycopg's own prepared statements do not last: it forgets them after every
ALTER or DROP). The end of each revision (``engine.revision_end``) and the step round trip's
catalog read (``postgres.catalog``) go through such functions.
"""

from __future__ import annotations

from typing import Any


def session_function(driver: Any, signature: str, create: str) -> bool:
    """Run ``create`` (a ``CREATE FUNCTION`` in ``pg_temp``) unless the session has the
    function ``signature`` (``pg_temp.name(boolean)``) already, and commit: outside any
    revision's transaction, since a function made inside one would go if that revision rolled
    back. ``False`` where it cannot be made (no TEMP privilege): the caller sends its text."""
    import psycopg

    try:
        found = driver.execute(f"SELECT to_regprocedure('{signature}')").fetchone()
        if found is None or found[0] is None:
            driver.execute(create)
        driver.commit()
    except psycopg.Error:
        driver.rollback()
        return False
    return True

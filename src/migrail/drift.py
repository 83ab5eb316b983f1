"""Drift: how a live database differs from the schema its own recorded revision implies.

The implied schema is built for real: a throwaway database is upgraded to the live database's
revision. Both are then read back (reflected) and compared with Alembic's own comparison, so a
column added by hand in production, or an index dropped there, shows up before a release plans
on top of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migrail.diffs import describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.executor import Executor

_BOOKKEEPING = {"alembic_version"}


def find_drift(executor: Executor, live: Connection, revision: tuple[str, ...]) -> list[str]:
    """How the live database differs from what ``revision`` implies, a line each: ``-`` for
    what the database has and the history does not, ``+`` for the reverse."""
    from sqlalchemy import MetaData

    from migrail.database import connect
    from migrail.ephemeral import ephemeral_database
    from migrail.errors import FatalError
    from migrail.steps import MigrationFailed

    implied = MetaData()
    with ephemeral_database() as url, connect(url) as connection:
        try:
            if revision:
                executor.upgrade(connection, revision[0])
        except MigrationFailed as failed:
            raise FatalError(
                "the schema the database's revision implies cannot be built on an empty "
                f"throwaway database: {failed}",
                hint="make that revision cope with empty tables, so drift can be checked",
            ) from None
        implied.reflect(connection)
        connection.rollback()
    for name in _BOOKKEEPING & set(implied.tables):
        implied.remove(implied.tables[name])
    return [describe(diff) for diff in _compare(live, implied)]


def _compare(live: Connection, implied: Any) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        return not (kind == "table" and name in _BOOKKEEPING)

    context = MigrationContext.configure(
        live,
        opts={"compare_type": True, "compare_server_default": True, "include_object": include},
    )
    diffs = list(compare_metadata(context, implied))
    live.rollback()
    return diffs

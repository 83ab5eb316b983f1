"""Drift: how a live database differs from the schema its own recorded revision implies.

The implied schema is built for real: a throwaway database is upgraded to the live database's
revision. Both are then read back (reflected) and compared with Alembic's own comparison, so a
column added by hand in production, or an index dropped there, shows up before a release plans
on top of it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from migrail.engine.diffs import describe
from migrail.engine.steps import MigrationFailed, Step

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migrail.engine.executor import Executor
    from migrail.postgres.observe import Effects

_BOOKKEEPING = {"alembic_version"}


def live_drift(executor: Executor, url: URL) -> tuple[tuple[str, ...], list[str]]:
    """The revision the database at ``url`` is at, and how it differs from what that revision
    implies; read only, under the configured timeouts."""
    from migrail.postgres.target import connect_target

    config = executor.config
    with connect_target(
        url, "drift", lock_timeout=config.lock_timeout, statement_timeout=config.statement_timeout
    ) as connection:
        current = executor.current(connection)
        found, _ = find_drift(executor, connection, current)
    return current, found


def find_drift(
    executor: Executor, live: Connection, revision: tuple[str, ...], measure: bool = False
) -> tuple[list[str], dict[str, Effects]]:
    """How the live database differs from what ``revision`` implies, a line each (``-`` for what
    the database has and the history does not, ``+`` for the reverse); with ``measure``, also
    what each pending revision then does to that schema's tables (locks, rewrites), measured by
    applying them on the same throwaway database."""
    from sqlalchemy import MetaData

    from migrail.history.extensions import created_extensions
    from migrail.postgres.database import connect
    from migrail.postgres.ephemeral import ephemeral_database
    from migrail.postgres.observe import Observer

    implied = MetaData()
    effects: dict[str, Effects] = {}
    needed = created_extensions(executor.config)
    with ephemeral_database(extensions=needed) as url, connect(url) as connection:
        _build(executor, connection, revision[0] if revision else None)
        implied.reflect(connection)
        connection.rollback()
        if measure:
            observer = Observer(connection)

            def observe(step: Step) -> None:
                effects[step.revision.revision] = observer.during()

            # Best effort: a revision that fails here fails migrate-staging, which says why.
            with contextlib.suppress(MigrationFailed):
                executor.upgrade(connection, "heads", in_transaction=observe)
    for name in _BOOKKEEPING & set(implied.tables):
        implied.remove(implied.tables[name])
    return [describe(diff) for diff in _compare(live, implied)], effects


def _build(executor: Executor, connection: Connection, target: str | None) -> None:
    from migrail.core.errors import FatalError

    try:
        if target:
            executor.upgrade(connection, target)
    except MigrationFailed as failed:
        raise FatalError(
            f"the history cannot be applied to an empty throwaway database: {failed}",
            hint="make that revision cope with empty tables, so the release can be checked",
        ) from None


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

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

VERSION_TABLE = "alembic_version"  # unless env.py names another (the ledger: schema migrail)


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

    options = _project_options(executor, live)
    bookkeeping = {options.get("version_table") or VERSION_TABLE}
    implied = MetaData()
    effects: dict[str, Effects] = {}
    needed = created_extensions(executor.config)
    with ephemeral_database(extensions=needed) as url, connect(url) as connection:
        _build(executor, connection, revision[0] if revision else None)
        implied.reflect(connection)
        if options.get("include_schemas"):  # the project compares every schema: so does drift
            for schema in _schemas(connection):
                implied.reflect(connection, schema=schema)
        connection.rollback()
        if measure:
            observer = Observer(connection)

            def observe(step: Step) -> None:
                effects[step.revision.revision] = observer.during()

            # Best effort: a revision that fails here fails migrate-staging, which says why.
            with contextlib.suppress(MigrationFailed):
                executor.upgrade(connection, "heads", in_transaction=observe)
    for table in [t for t in implied.tables.values() if t.name in bookkeeping]:
        implied.remove(table)
    return [describe(diff) for diff in _compare(live, implied, options, bookkeeping)], effects


def _project_options(executor: Executor, live: Connection) -> dict[str, Any]:
    """What the project's env.py tells Alembic's comparison: the objects it leaves out
    (``include_object``, ``include_name``: a table another service owns is not drift), whether
    it compares every schema, and where it keeps its version table."""
    from migrail.engine import environment

    if environment.is_migrails(executor.config):
        return {}
    theirs = executor.env_options(live)
    return {key: theirs[key] for key in environment.COMPARE_OPTIONS if key in theirs}


def _schemas(connection: Connection) -> list[str]:
    from sqlalchemy import inspect

    return [
        name
        for name in inspect(connection).get_schema_names()
        if name not in ("public", "information_schema", "migrail") and not name.startswith("pg_")
    ]


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


def _compare(
    live: Connection, implied: Any, options: dict[str, Any], bookkeeping: set[str]
) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    theirs = options.get("include_object")

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        if kind == "table" and (name in bookkeeping or getattr(obj, "schema", None) == "migrail"):
            return False
        return theirs is None or bool(theirs(obj, name, kind, reflected, compare_to))

    opts: dict[str, Any] = {
        "compare_type": True,
        "compare_server_default": True,
        "include_object": include,
    }
    opts.update(
        {key: options[key] for key in ("include_name", "include_schemas") if key in options}
    )
    context = MigrationContext.configure(live, opts=opts)
    diffs = list(compare_metadata(context, implied))
    live.rollback()
    return diffs

"""What ``migrations/env.py`` runs: Alembic configured from what migrail put in ``attributes``.

migrail passes the connection (online) or asks for SQL (offline), so loading ``env.py`` needs no
secret. Run by the plain ``alembic`` command instead (``alembic upgrade head``, ``current``,
``downgrade -1``), it reaches the environment ``-x env=NAME`` names (the project's default
otherwise) as migrail does: its URL from the environment or ``.env``, its timeouts, the migrate
lock; a protected environment is refused, as ``migrail migrate`` refuses it.
"""

from __future__ import annotations

from typing import Any


def run_migrations() -> None:
    """Configure Alembic's context for migrail's run and apply the migrations it asked for."""
    from alembic import context

    attributes: dict[str, Any] = context.config.attributes
    options: dict[str, Any] = {
        "target_metadata": attributes.get("target_metadata"),
        "transaction_per_migration": True,
        "compare_type": True,
        "compare_server_default": True,
        "on_version_apply": attributes.get("on_version_apply", []),
        "process_revision_directives": attributes.get("process_revision_directives"),
    }
    if context.is_offline_mode():
        context.configure(dialect_name="postgresql", literal_binds=True, **options)
    else:
        connection = attributes.get("connection")
        if connection is None:
            _run_for_alembic(context, options)
            return
        context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


def _run_for_alembic(context: Any, options: dict[str, Any]) -> None:
    """The plain ``alembic`` command's run, on the environment ``-x env=NAME`` names."""
    import sys

    from alembic.util import CommandError

    from migrail.core.config import load_config, resolve_environment
    from migrail.core.errors import FatalError
    from migrail.engine.models import load_metadata
    from migrail.postgres.database import advisory_lock, connect

    try:
        config = load_config()
        environment, url = resolve_environment(config, context.get_x_argument(True).get("env"))
    except FatalError as exc:  # Alembic prints its own errors as one line: FAILED: ...
        raise CommandError(exc.message) from None
    if environment.protected:
        raise CommandError(
            f"{environment.name} is protected: it changes only through an approved plan "
            f"(migrail plan --env {environment.name}, approve, apply), not through alembic"
        )
    with connect(url) as connection:
        connection.exec_driver_sql(f"SET lock_timeout = '{config.lock_timeout}'")
        connection.exec_driver_sql(f"SET statement_timeout = '{config.statement_timeout}'")
        connection.commit()  # session settings, outside the revisions' transactions
        waiting = lambda: print("Waiting for another migrate to finish...", file=sys.stderr)  # noqa: E731
        with advisory_lock(connection, on_wait=waiting):
            if options["target_metadata"] is None:
                options["target_metadata"] = load_metadata(config)
            context.configure(connection=connection, **options)
            with context.begin_transaction():
                context.run_migrations()


# The commands of plain alembic that change a database (``current`` and ``history`` only read).
_CHANGING = frozenset({"upgrade", "downgrade", "stamp"})


def refuse_protected(context: Any, connection: Any) -> None:
    """Called by an adopted env.py (``init``'s helper) when plain ``alembic`` connects: a
    database that says it is a protected environment changes only through an approved plan."""
    from alembic.util import CommandError

    from migrail.postgres.bookkeeping import TableProblem
    from migrail.postgres.identity import read_identity

    command = getattr(getattr(context.config, "cmd_opts", None), "cmd", None)
    name = getattr(command[0], "__name__", "") if command else ""
    if name not in _CHANGING:
        return
    try:
        identity = read_identity(connection)
    except TableProblem:  # a role that may not read it: plain alembic runs as it always did
        identity = None
    connection.rollback()
    if identity is not None and identity.protected:
        raise CommandError(
            f"the database says it is {identity.name}, a protected environment: it changes only "
            f"through an approved plan (migrail plan --env {identity.name}, approve, apply), "
            f"not through alembic {name}"
        )

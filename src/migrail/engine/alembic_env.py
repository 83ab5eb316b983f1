"""What ``migrations/env.py`` runs: Alembic configured from what migrail put in ``attributes``.

migrail always passes the connection (online) or asks for SQL (offline); ``env.py`` never builds
an engine or reads a URL, so no secret is needed to load it.
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
            raise RuntimeError("migrations/env.py is run by migrail: use `migrail migrate`")
        context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()

"""Looking at a real server from a test: which databases exist, which tables, which revision."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import URL

from migrail.templates import TEMPLATE_PREFIX
from migrail.urls import libpq_conninfo


def database_names(admin_url: URL) -> set[str]:
    """Names of the databases on the server, to show what a run left behind: all but the
    template cache's, which runs keep on purpose (``template_names`` shows those)."""
    return {name for name in _all_databases(admin_url) if not name.startswith(TEMPLATE_PREFIX)}


def template_names(admin_url: URL) -> set[str]:
    """Names of the template cache's databases on the server."""
    return {name for name in _all_databases(admin_url) if name.startswith(TEMPLATE_PREFIX)}


def _all_databases(admin_url: URL) -> set[str]:
    with psycopg.connect(libpq_conninfo(admin_url), autocommit=True) as connection:
        return {str(row[0]) for row in connection.execute("SELECT datname FROM pg_database")}


def query(url: URL, sql: str) -> list[tuple[object, ...]]:
    """Rows of one query, on a connection of its own."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as connection:
        return list(connection.execute(sql))  # type: ignore[arg-type]


def columns(url: URL, table: str) -> list[str]:
    """The columns of ``table`` in the public schema, in order."""
    rows = query(
        url,
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position",
    )
    return [str(row[0]) for row in rows]


def version(url: URL) -> list[str]:
    """What ``alembic_version`` holds (empty when the table does not exist)."""
    if not query(url, "SELECT 1 FROM pg_tables WHERE tablename = 'alembic_version'"):
        return []
    return [str(row[0]) for row in query(url, "SELECT version_num FROM alembic_version")]

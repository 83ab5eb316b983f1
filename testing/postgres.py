"""A real server from a test: which databases exist, which tables, which revision; roles to be."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from migrail.core.urls import libpq_conninfo
from migrail.postgres.ephemeral import DATABASE_PREFIX
from migrail.staging.templates import TEMPLATE_PREFIX, project_key


def database_names(admin_url: URL) -> set[str]:
    """Names of the databases on the server, to show what a run left behind: all but the
    template cache's, which runs keep on purpose (``template_names`` shows those)."""
    return {name for name in _all_databases(admin_url) if not name.startswith(TEMPLATE_PREFIX)}


def template_names(admin_url: URL) -> set[str]:
    """Names of the template cache's databases on the server."""
    return {name for name in _all_databases(admin_url) if name.startswith(TEMPLATE_PREFIX)}


def templates_of(admin_url: URL, project: Path) -> set[str]:
    """Names of the template cache's databases of ``project`` (its root, with ``migrations/``):
    the server may hold other projects' templates, other runs' included, as a team's does."""
    return {
        name
        for name in template_names(admin_url)
        if name.startswith(f"{TEMPLATE_PREFIX}{project_key(project / 'migrations')}_")
    }


def _all_databases(admin_url: URL) -> set[str]:
    with psycopg.connect(libpq_conninfo(admin_url), autocommit=True) as connection:
        return {str(row[0]) for row in connection.execute("SELECT datname FROM pg_database")}


def query(url: URL, sql: str) -> list[tuple[object, ...]]:
    """Rows of one query, on a connection of its own."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as connection:
        return list(connection.execute(sql))  # type: ignore[arg-type]


def run_sql(url: URL, statements: str) -> None:
    """Run ``statements`` (one or more, ``;``-separated) on a connection of their own."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as connection:
        connection.execute(statements)  # type: ignore[arg-type]


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


@contextmanager
def login_role(url: URL, *grants: str) -> Iterator[tuple[str, URL]]:
    """A login role of its own on ``url``'s server, and ``url`` as that role; ``grants`` (with
    ``{role}`` for its name) are run first in ``url``'s database, by ``url``'s user. Dropped
    afterwards, with what it owns and was granted there."""
    name = f"migrail_test_{os.getpid()}_{secrets.token_hex(3)}"
    password = secrets.token_hex(8)
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
        try:
            for grant in grants:
                admin.execute(grant.format(role=name))  # type: ignore[arg-type]
            yield name, url.set(username=name, password=password)
        finally:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def lock_holders(url: URL, table: str) -> list[int]:
    """The backends holding a lock on ``table`` in ``url``'s database (the asker aside)."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_locks WHERE granted AND relation = to_regclass(%s)"
            " AND pid <> pg_backend_pid()",
            (table,),
        )
        return [int(row[0]) for row in rows]


def running(url: URL, fragment: str) -> list[int]:
    """The backends of ``url``'s database running a statement that contains ``fragment``."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND datname ="
            " current_database() AND pid <> pg_backend_pid() AND strpos(query, %s) > 0",
            (fragment,),
        )
        return [int(row[0]) for row in rows]


def sessions(admin_url: URL, application: str) -> list[tuple[str, str]]:
    """The database and last query of each session of the run started with
    ``PGAPPNAME=application``: how a test tells its runs apart on a server others use too."""
    rows = query(
        admin_url,
        f"SELECT datname, query FROM pg_stat_activity WHERE application_name = '{application}'",
    )
    return [(str(name), str(text)) for name, text in rows]


def run_database(
    admin_url: URL, application: str, run: subprocess.Popen[str], doing: str = ""
) -> str:
    """The throwaway database of the run ``application``, once a session of the run there has
    run a query starting with ``doing``. Fails, rather than guess, if the run ends first or
    it does not happen within a minute."""
    deadline = time.monotonic() + 60
    while True:
        for name, text in sessions(admin_url, application):
            if name.startswith(DATABASE_PREFIX) and text.startswith(doing):
                return name
        assert run.poll() is None, f"the run ended: {run.communicate()[1]}"
        assert time.monotonic() < deadline, f"no session of {application} did {doing!r}"
        time.sleep(0.01)


def run_leftovers(admin_url: URL, database: str) -> set[str]:
    """The databases left of the run that made the throwaway ``database``: it, and those that
    carry its run's token (its template copies), templates aside."""
    token = database.removeprefix(DATABASE_PREFIX).split("_")[1]
    return {name for name in database_names(admin_url) if f"_{token}" in name}


def left_behind(admin_url: URL, made: list[str]) -> set[str]:
    """What is left of the runs that made the throwaway databases ``made`` (``run_leftovers``
    of each); none made fails: a test that saw no run has nothing to say about what it left."""
    assert made, "no throwaway database was made"
    return set().union(*(run_leftovers(admin_url, name) for name in made))

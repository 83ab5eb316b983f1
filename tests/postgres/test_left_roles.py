"""Roles a throwaway database's revisions make: dropped with it, or marked while another
database still depends on them, and dropped by cleanup once nothing does."""

from __future__ import annotations

import secrets

from migrail.postgres import left_roles
from migrail.postgres.ephemeral import Server, admin_connection, drop_database
from testing.postgres import query, run_sql


def test_a_role_still_needed_elsewhere_is_marked_then_dropped_once_nothing_needs_it(
    pg_server: Server,
) -> None:
    role = f"left_{secrets.token_hex(4)}"
    other = f"other_{secrets.token_hex(4)}"  # made meanwhile, used by no database of ours
    with pg_server.database() as url:
        assert url.database is not None
        run_sql(url, f"CREATE TABLE t (id int); CREATE ROLE {role}; GRANT SELECT ON t TO {role}")
        run_sql(pg_server.admin_url, f"CREATE ROLE {other}")
        copy = f"{url.database}_copy"
        with admin_connection(pg_server.admin_url) as admin:
            assert left_roles.makes_roles(admin, url.database)
            admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{url.database}"')
    try:
        described = query(
            pg_server.admin_url,
            f"SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = '{role}'",
        )
        assert described == [(left_roles.MARK,)]  # the copy holds its grant
        assert query(pg_server.admin_url, f"SELECT 1 FROM pg_roles WHERE rolname = '{other}'")
    finally:
        with admin_connection(pg_server.admin_url) as admin:
            drop_database(admin, copy)
            dropped = left_roles.drop_marked_roles(admin)
        run_sql(pg_server.admin_url, f"DROP ROLE {other}")
    assert role in dropped
    assert not query(pg_server.admin_url, f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'")

"""Roles that revisions create on a throwaway database's server, which outlive the database.

A role belongs to the server, not to a database: ``CREATE ROLE app_reader`` in a revision leaves
``app_reader`` behind when the throwaway database is dropped, and the next staging run that
applies that revision fails on it ("role already exists"), on the warm cluster as on a server
given with MIGRAIL_ADMIN_URL. So each throwaway database notes the roles of the server as it is
made; before it is dropped, the roles made since that its objects depend on (privileges,
ownership: ``pg_shdepend``) are its revisions', and are dropped with it. A history whose
revisions make roles is not cached (``makes_roles``): a template would keep them. A role that
something else still depends on stays, with a comment that marks it; ``migrail cleanup`` drops
marked roles that nothing depends on any more.

Roles made since that nothing in the database depends on are left alone, they may be another
run's on a server others share, unless a revision's own ``CREATE ROLE`` named them. All of this
is best effort: an admin role that may not drop roles (no CREATEROLE) leaves them, as before.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    Admin = psycopg.Connection[tuple[object, ...]]

# The comment on a role left because a cached template depends on it.
MARK = "migrail: made by a revision in a staging run, kept for a cached template"

# Each throwaway database of this process: the server's roles as it was made.
_BEFORE: dict[str, frozenset[int]] = {}
# The roles the revisions of this process named in a CREATE ROLE (USER, GROUP) they ran: a role
# nothing depends on is theirs only if they made it so (a DO block's dynamic SQL goes unseen).
_CREATED: set[str] = set()
_CREATE_ROLE = re.compile(
    r"\bCREATE\s+(?:ROLE|USER|GROUP)\s+(?:\"((?:[^\"]|\"\")+)\"|([A-Za-z_][\w$]*))",
    re.IGNORECASE,
)


def note_statement(statement: str) -> None:
    """Note the roles a statement run by a revision creates (``CREATE ROLE name``)."""
    for quoted, plain in _CREATE_ROLE.findall(statement):
        _CREATED.add(quoted.replace('""', '"') if quoted else plain.lower())


def remember(database: str, roles: frozenset[int]) -> None:
    _BEFORE[database] = roles


def forget(database: str) -> frozenset[int]:
    return _BEFORE.pop(database, frozenset())


def makes_roles(admin: Admin, database: str) -> bool:
    """Whether revisions run in ``database`` made roles it depends on. A template copied from
    it would keep those roles on the server after the run, and the next run from an earlier
    point would fail making them again: such a database is not cached."""
    before = _BEFORE.get(database)
    return before is not None and bool(made_for(admin, database, before))


def role_ids(admin: Admin) -> frozenset[int]:
    """The roles of the server now, by oid."""
    return frozenset(int(str(oid)) for (oid,) in admin.execute("SELECT oid FROM pg_roles"))


def made_for(admin: Admin, database: str, before: frozenset[int]) -> list[str]:
    """The roles made since ``before`` that objects of ``database`` depend on, or that the
    revisions run here created by name: its revisions'."""
    rows = admin.execute(
        "SELECT DISTINCT r.oid, r.rolname FROM pg_roles r WHERE r.rolname = ANY(%s)"
        " OR r.oid IN (SELECT d.refobjid FROM pg_shdepend d"
        " WHERE d.refclassid = 'pg_authid'::regclass"
        " AND d.dbid = (SELECT oid FROM pg_database WHERE datname = %s))",
        (sorted(_CREATED), database),
    ).fetchall()
    return sorted(str(name) for oid, name in rows if int(str(oid)) not in before)


def drop_roles(admin: Admin, names: list[str]) -> None:
    """Drop each role; one that a template still depends on is marked instead (see ``MARK``)."""
    import psycopg
    from psycopg import sql

    for name in names:
        role = sql.Identifier(name)
        try:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
        except psycopg.errors.DependentObjectsStillExist:
            _mark(admin, name)
        except psycopg.Error:
            continue  # not allowed to: left, as before


def drop_marked_roles(admin: Admin) -> list[str]:
    """Drop the roles marked as kept for templates that nothing depends on any more."""
    rows = admin.execute(
        "SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') = %s", (MARK,)
    ).fetchall()
    import psycopg
    from psycopg import sql

    dropped = []
    for (name,) in rows:
        try:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(str(name))))
        except psycopg.Error:
            continue  # still needed by a template, or not ours to drop
        dropped.append(str(name))
    return dropped


def _mark(admin: Admin, name: str) -> None:
    """Mark ``name`` as kept for a template, unless a revision gave it a comment of its own."""
    import psycopg
    from psycopg import sql

    found = admin.execute(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (name,)
    ).fetchone()
    if found is None or found[0] not in (None, MARK):
        return
    try:
        admin.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(name), MARK))
    except psycopg.Error:
        return

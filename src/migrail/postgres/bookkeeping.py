"""The tables kept in a target database beside the application's: Alembic's ``alembic_version``
and migrail's own, in schema ``migrail``.

The code that keeps them reads and writes them blindly, so a table altered by hand, or a role
without the privileges, would surface as a crash in the middle of a run, blamed on an innocent
revision. They are checked here first, through the catalogs (which every role may read), and
what is wrong is said with the SQL that fixes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SCHEMA = "migrail"
VERSION_TABLE = "alembic_version"
TABLE_KINDS = ("r", "p")  # a table, or a partitioned one: what INSERT and UPDATE reach
_KIND_NAMES = {"v": "view", "m": "materialized view", "f": "foreign table"}
_CHECKED = "migrail.version_table_checked"

_DESCRIBE = """
    SELECT c.relkind, has_schema_privilege(c.relnamespace, 'USAGE'),
        has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),
        ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
            AND NOT a.attisdropped ORDER BY a.attnum),
        ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {where}"""


class TableProblem(FatalError):
    """A table migrail relies on in the target database is not usable as it is: altered by
    hand, or out of this role's reach. Commands that only show (status, plan) go on without it."""


@dataclass(frozen=True)
class Table:
    """What the catalogs say about one table, as seen by the connected role."""

    name: str
    kind: str
    usable: bool  # USAGE on its schema
    readable: bool
    writable: bool  # INSERT
    columns: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def kind_name(self) -> str:
        return _KIND_NAMES.get(self.kind, "relation of another kind")

    def shape(self) -> str:
        return ", ".join(
            f"{name} {kind}" for name, kind in zip(self.columns, self.types, strict=True)
        )


def role(connection: Connection) -> str:
    """The connected role's name, quoted as SQL needs it (for the GRANTs the hints give)."""
    from sqlalchemy import text

    return str(connection.execute(text("SELECT quote_ident(current_user)")).scalar_one())


def describe(connection: Connection, table: str) -> Table | None:
    """``migrail.<table>`` as the catalogs describe it; ``None`` where it does not exist."""
    return _describe(
        connection,
        f"{SCHEMA}.{table}",
        "n.nspname = :schema AND c.relname = :table",
        {"schema": SCHEMA, "table": table},
    )


def _describe(
    connection: Connection, name: str, where: str, parameters: dict[str, str]
) -> Table | None:
    from sqlalchemy import text

    row = connection.execute(text(_DESCRIBE.format(where=where)), parameters).first()
    if row is None:
        return None
    kind, usable, may_read, may_write, columns, types = row
    return Table(
        name, str(kind), bool(usable), bool(may_read), bool(may_write), tuple(columns), tuple(types)
    )


def readable(connection: Connection, table: str) -> Table | None:
    """``migrail.<table>``, if it exists; a TableProblem with the GRANT if this role cannot read
    it (a read-only role made before migrail's schema existed has no USAGE on it)."""
    found = describe(connection, table)
    if found is None or (found.usable and found.readable):
        return found
    who = role(connection)
    connection.rollback()
    why = "" if found.usable else f" (it has no USAGE on schema {SCHEMA})"
    raise TableProblem(
        f"role {who} cannot read {found.name}{why}",
        hint=f"an owner runs: GRANT USAGE ON SCHEMA {SCHEMA} TO {who}; "
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {who}",
    )


def ensure_schema(connection: Connection) -> None:
    """Create schema ``migrail`` unless it exists, saying what to do where this role may not.

    ``CREATE SCHEMA IF NOT EXISTS`` asks for CREATE on the database even when the schema
    exists, so it is not run then: a role an owner made the schema for needs no more.
    """
    from sqlalchemy import text

    exists, may_create, who, database = connection.execute(
        text(
            "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = :schema),"
            " has_database_privilege(current_database(), 'CREATE'),"
            " quote_ident(current_user), quote_ident(current_database())"
        ),
        {"schema": SCHEMA},
    ).one()
    if exists:
        return
    if not may_create:
        connection.rollback()
        raise TableProblem(
            f"role {who} cannot create schema {SCHEMA}, where migrail records what it applies: "
            f"it needs CREATE on database {database}",
            hint=f"an owner of the database runs once: CREATE SCHEMA {SCHEMA} AUTHORIZATION "
            f"{who}; (or: GRANT CREATE ON DATABASE {database} TO {who})",
        )
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))


def ensure_table(connection: Connection, table: str, columns: Sequence[str]) -> None:
    """Create ``migrail.<table>`` with ``columns`` unless it exists (in a schema that does).

    As with the schema, ``CREATE TABLE IF NOT EXISTS`` would ask for CREATE on the schema even
    when the table exists.
    """
    from sqlalchemy import text

    if describe(connection, table) is not None:
        return
    if not connection.execute(
        text("SELECT has_schema_privilege(:schema, 'CREATE')"), {"schema": SCHEMA}
    ).scalar_one():
        who = role(connection)
        connection.rollback()
        raise TableProblem(
            f"role {who} cannot create table {SCHEMA}.{table}: it needs CREATE on schema {SCHEMA}",
            hint=f"an owner of schema {SCHEMA} runs: "
            f"GRANT USAGE, CREATE ON SCHEMA {SCHEMA} TO {who}",
        )
    connection.execute(text(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} ({', '.join(columns)})"))


def check_version_table(connection: Connection) -> None:
    """``alembic_version`` as Alembic keeps it, or a TableProblem saying what it is instead.

    Alembic reads its one column blindly and writes it with INSERT and UPDATE, so another shape
    fails in the middle of a revision, or worse, takes a revision id it then cannot read back.
    Checked once per connection, once the table exists.
    """
    if connection.info.get(_CHECKED):
        return
    table = _describe(
        connection, VERSION_TABLE, "c.oid = to_regclass(:table)", {"table": VERSION_TABLE}
    )
    if table is None:
        return
    if not (table.usable and table.readable):
        who = role(connection)
        raise TableProblem(
            f"role {who} cannot read {VERSION_TABLE}, where the database records its revision",
            hint=f"an owner runs: GRANT SELECT ON {VERSION_TABLE} TO {who}",
        )
    restore = (
        "one column version_num varchar(32) PRIMARY KEY, holding the revision the database is at"
    )
    if table.kind not in TABLE_KINDS:
        raise TableProblem(
            f"{VERSION_TABLE} is a {table.kind_name}, not a table: Alembic records the "
            "database's revision in it with INSERT and UPDATE",
            hint=f"replace it by Alembic's table: {restore}",
        )
    if table.columns != ("version_num",) or not table.types[0].startswith(
        ("character varying", "text")
    ):
        raise TableProblem(
            f"{VERSION_TABLE} is not Alembic's version table: it has ({table.shape()}), where "
            "Alembic keeps (version_num character varying(32))",
            hint=f"give it back Alembic's shape: {restore}",
        )
    _check_version_rows(connection)
    connection.info[_CHECKED] = True


def _check_version_rows(connection: Connection) -> None:
    """Without a primary key, rows Alembic cannot make sense of: a NULL, a revision twice."""
    from sqlalchemy import text

    odd = connection.execute(
        text(
            f"SELECT version_num, count(*) FROM {VERSION_TABLE} GROUP BY version_num"
            " HAVING count(*) > 1 OR version_num IS NULL ORDER BY version_num NULLS FIRST"
        )
    ).first()
    if odd is None:
        return
    if odd[0] is None:
        raise TableProblem(
            f"{VERSION_TABLE} has a row without a revision (version_num is NULL)",
            hint=f"delete it: DELETE FROM {VERSION_TABLE} WHERE version_num IS NULL",
        )
    raise TableProblem(
        f"{VERSION_TABLE} holds revision {odd[0]} in {odd[1]} rows, where Alembic keeps one "
        "(the table has no primary key)",
        hint=f"keep one of them, then: ALTER TABLE {VERSION_TABLE} ADD PRIMARY KEY (version_num)",
    )

"""What a target database says it is: the environment, recorded in the database itself.

A variable can be mislabeled (``DATABASE_URL`` pointing at production); the database cannot.
On its first ``migrate``, migrail writes the environment's name, and whether it is protected,
into ``migrail.environment``; ``push`` and ``migrate`` read it back before changing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.postgres.bookkeeping import SCHEMA, ensure_schema, ensure_table, readable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.core.config import Environment

TABLE = "environment"


@dataclass(frozen=True)
class Identity:
    """The environment a database was first migrated as."""

    name: str
    protected: bool


def read_identity(connection: Connection) -> Identity | None:
    """The identity the database records, ``None`` if it records none; a TableProblem where
    this role cannot read it."""
    from sqlalchemy import text

    if readable(connection, TABLE) is None:
        connection.rollback()
        return None
    row = connection.execute(text(f"SELECT name, protected FROM {SCHEMA}.environment")).first()
    connection.rollback()
    return Identity(str(row[0]), bool(row[1])) if row else None


def record_identity(connection: Connection, environment: Environment) -> None:
    """Record ``environment`` as the database's identity, unless it already has one."""
    from sqlalchemy import text

    ensure_schema(connection)
    ensure_table(
        connection,
        TABLE,
        [
            "one boolean PRIMARY KEY DEFAULT true CHECK (one)",
            "name text NOT NULL",
            "protected boolean NOT NULL",
            "recorded_at timestamptz NOT NULL DEFAULT now()",
        ],
    )
    connection.execute(
        text(
            f"INSERT INTO {SCHEMA}.environment (name, protected) VALUES (:name, :protected)"
            " ON CONFLICT (one) DO NOTHING"
        ),
        {"name": environment.name, "protected": environment.protected},
    )
    connection.commit()


def refuse_mislabeled(connection: Connection, environment: Environment) -> None:
    """A database that says it is protected is not changed as something else (migrate,
    import): the variable may be mislabeled, the database is not."""
    identity = read_identity(connection)
    if identity is not None and identity.protected and not environment.protected:
        if identity.name == environment.name:  # the configuration dropped the protection
            raise FatalError(
                f"the database says it is {identity.name}, a protected environment, and "
                f"{environment.name} is no longer protected in the configuration",
                hint=f"release through a plan (migrail plan --env {environment.name}); to lift "
                "the protection, an owner runs: UPDATE migrail.environment SET protected = false",
            )
        raise FatalError(
            f"the database says it is {identity.name}, a protected environment, but was reached "
            f"as {environment.name}",
            hint=f"check {environment.url_env}: it points at {identity.name}'s database",
        )

"""Schema snapshots: the models' PostgreSQL DDL at each revision, canonical and diff-friendly.

``generate`` writes ``migrations/schema/<revision>.sql`` beside each revision (as drizzle-kit
keeps snapshots); the ``schema-sync`` check compares the models with the snapshot at head, with
no database: a model changed without a migration shows up as a diff of plain DDL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from migrail.config import Config

SNAPSHOT_DIR = "schema"


def snapshot_path(config: Config, stem: str) -> Path:
    return config.migrations_dir / SNAPSHOT_DIR / f"{stem}.sql"


def render_schema(metadata: MetaData) -> str:
    """Every table (by name) with its indexes (by name), enum types and sequences first.

    Compiled for PostgreSQL by SQLAlchemy itself, so the snapshot says what ``create_all`` would
    create; tabs and trailing blanks are normalised so that diffs show only real changes.
    """
    from sqlalchemy import Enum
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import (
        AddConstraint,
        CreateIndex,
        CreateSequence,
        CreateTable,
        SetColumnComment,
        SetTableComment,
    )

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements: list[str] = []
    enums = {
        column.type.name: column.type
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, Enum) and column.type.native_enum and column.type.name
    }
    for name, enum in sorted(enums.items()):
        values = ", ".join("'" + value.replace("'", "''") + "'" for value in enum.enums)
        statements.append(f"CREATE TYPE {name} AS ENUM ({values})")
    for sequence in sorted(metadata._sequences.values(), key=lambda s: s.name):
        statements.append(str(CreateSequence(sequence).compile(dialect=dialect)))
    for table in sorted(metadata.tables.values(), key=lambda t: t.fullname):
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)))
        # What CREATE TABLE leaves out and autogenerate still migrates.
        if table.comment:
            statements.append(str(SetTableComment(table).compile(dialect=dialect)))
        for column in table.columns:
            if column.comment:
                statements.append(str(SetColumnComment(column).compile(dialect=dialect)))
        for key in sorted(table.foreign_key_constraints, key=lambda k: str(k.name)):
            if key.use_alter:
                statements.append(str(AddConstraint(key).compile(dialect=dialect)))
    return "".join(f"{_tidy(statement)};\n\n" for statement in statements)


def _tidy(statement: str) -> str:
    lines = [line.replace("\t", "    ").rstrip() for line in statement.strip().splitlines()]
    return "\n".join(lines)

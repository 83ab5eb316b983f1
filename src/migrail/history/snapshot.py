"""Schema snapshots: the models' PostgreSQL DDL at each revision, canonical and diff-friendly.

``generate`` writes ``migrations/schema/<revision>.sql`` beside each revision (as drizzle-kit
keeps snapshots); the ``schema-sync`` check compares the models with the snapshot at head, with
no database: a model changed without a migration shows up as a diff of plain DDL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from migrail.core.config import Config
    from migrail.history.tree import Tree

SNAPSHOT_DIR = "schema"
# The first line says which models the snapshot was rendered from, so that the commit hook can
# tell unchanged models from their files alone, without importing SQLAlchemy.
_MODELS_LINE = re.compile(r"-- models (sha256:[0-9a-f]{64})\n\n")


def snapshot_path(config: Config, stem: str) -> Path:
    return config.migrations_dir / SNAPSHOT_DIR / f"{stem}.sql"


def model_files(config: Config, tree: Tree) -> dict[str, bytes]:
    """The Python files the models may import from the project, by path from its root."""
    files = tree.python_files(package_paths(config))
    return {
        path.resolve().relative_to(config.root.resolve()).as_posix(): c for path, c in files.items()
    }


def package_paths(config: Config) -> list[Path]:
    """What the models may import from the project, to copy what is staged of it: all of
    ``src/`` in a src layout, else the models' top-level package or module, and the Flask
    app's (``flask_app``: its factory imports the models, and env.py runs in it)."""
    if config.metadata is None:
        return []
    if (config.root / "src").is_dir():
        return [config.root / "src"]
    tops = [
        spec.partition(":")[0].partition(".")[0]
        for spec in (config.metadata, config.flask_app)
        if spec
    ]
    candidates = [config.root / name for top in dict.fromkeys(tops) for name in (top, f"{top}.py")]
    return [path for path in candidates if path.exists()]


def models_digest(files: Mapping[str, bytes]) -> str:
    """One digest over the model files' names and contents."""
    digest = hashlib.sha256()
    for name, content in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return "sha256:" + digest.hexdigest()


def snapshot_text(metadata: MetaData, digest: str) -> str:
    """A snapshot file: the digest of the models it was rendered from, then their DDL."""
    return f"-- models {digest}\n\n{render_schema(metadata)}"


def split_snapshot(text: str) -> tuple[str | None, str]:
    """The models digest a snapshot records (``None`` for a snapshot without one) and its DDL."""
    match = _MODELS_LINE.match(text)
    return (match[1], text[match.end() :]) if match else (None, text)


def models_snapshot(config: Config, metadata: MetaData) -> str:
    """The snapshot of the models as they are on disk."""
    from migrail.history.tree import DiskTree

    return snapshot_text(metadata, models_digest(model_files(config, DiskTree())))


def write_snapshot(config: Config, metadata: MetaData, stem: str) -> Path:
    """Write ``migrations/schema/<stem>.sql`` from the models as they are on disk."""
    path = snapshot_path(config, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(models_snapshot(config, metadata))
    return path


def render_schema(metadata: MetaData) -> str:
    """Every table (by name) with its indexes (by name), enum types and sequences first.

    Compiled for PostgreSQL by SQLAlchemy itself, so the snapshot says what ``create_all`` would
    create; tabs and trailing blanks are normalised so that diffs show only real changes.
    """
    from sqlalchemy import Enum
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.dialects.postgresql.named_types import CreateEnumType
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
    for _, enum in sorted(enums.items()):
        statements.append(str(CreateEnumType(enum).compile(dialect=dialect)))
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

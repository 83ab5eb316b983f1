"""The SQLite file: opened read-only, its tables, columns, declared types and foreign keys.

Values are read as SQLite stores them (no ``detect_types``): the storage class of each value is
what tells a text value in an INTEGER column apart from an integer, which conversions report.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from migrail.core.errors import FatalError

SCHEME = "sqlite:///"


@dataclass(frozen=True)
class SourceColumn:
    """A column as declared in the SQLite file (``declared`` may be empty: no type at all)."""

    name: str
    declared: str
    not_null: bool
    primary_key: bool

    @property
    def affinity(self) -> str:
        """SQLite's type affinity of the declared type (the rules of section 3.1 of its docs)."""
        return affinity(self.declared)


@dataclass(frozen=True)
class SourceTable:
    """A table of the SQLite file, its columns in order, and whom its foreign keys name."""

    name: str
    columns: tuple[SourceColumn, ...]
    parents: tuple[str, ...]

    def column(self, name: str) -> SourceColumn:
        return next(column for column in self.columns if column.name == name)


def affinity(declared: str) -> str:
    """INTEGER, TEXT, BLOB, REAL or NUMERIC, as SQLite derives it from a declared type."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper.strip():
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` URL names."""
    if not url.startswith(SCHEME) or url == SCHEME:
        raise FatalError(
            f"{url!r} is not a SQLite URL",
            hint="name the file as sqlite:///relative/legacy.db or sqlite:////abs/legacy.db",
        )
    path = Path(url.removeprefix(SCHEME))
    if not path.is_file():
        raise FatalError(f"no SQLite file at {path}", hint="check the path in the URL")
    return path


# Seconds a read waits for a writer's lock on the file to go, as a brief write would.
BUSY_WAIT = 5.0


def open_read_only(path: Path) -> sqlite3.Connection:
    """The file opened read-only (``mode=ro``): an import never changes its source."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, timeout=BUSY_WAIT)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        connection.close()
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            raise FatalError(
                f"{path} is locked by a writer ({exc})",
                hint="stop the application that writes to it, then import again",
            ) from None
        raise FatalError(f"{path} is not a SQLite database ({exc})") from None
    return connection


def read_tables(connection: sqlite3.Connection) -> list[SourceTable]:
    """The file's own tables (SQLite's internal ``sqlite_*`` ones aside), by name."""
    names = [
        str(row[0])
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%'"
            " ESCAPE '\\' ORDER BY name"
        )
    ]
    return [_table(connection, name) for name in names]


def _table(connection: sqlite3.Connection, name: str) -> SourceTable:
    columns = tuple(
        SourceColumn(str(row[1]), str(row[2] or ""), bool(row[3]), bool(row[5]))
        for row in connection.execute("SELECT * FROM pragma_table_info(?)", (name,))
    )
    parents = tuple(
        sorted(
            {
                str(row[2])
                for row in connection.execute("SELECT * FROM pragma_foreign_key_list(?)", (name,))
            }
        )
    )
    return SourceTable(name, columns, parents)


def count_rows(connection: sqlite3.Connection, table: str) -> int:
    return int(connection.execute(f"SELECT count(*) FROM {quote_name(table)}").fetchone()[0])


def read_rows(
    connection: sqlite3.Connection, table: str, columns: list[str], batch: int
) -> Iterator[list[tuple[object, ...]]]:
    """The table's rows, ``columns`` of each, ``batch`` at a time (memory stays flat)."""
    names = ", ".join(map(quote_name, columns))
    cursor = connection.execute(f"SELECT {names} FROM {quote_name(table)}")
    while rows := cursor.fetchmany(batch):
        yield rows


def quote_name(name: str) -> str:
    """An identifier quoted as SQLite reads it."""
    return '"' + name.replace('"', '""') + '"'

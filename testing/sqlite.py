"""SQLite files as legacy applications left them, for ``migrail import`` to read."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path


def sqlite_file(
    path: Path, schema: str, rows: Mapping[str, Sequence[Sequence[object]]] | None = None
) -> Path:
    """A new SQLite file at ``path``: ``schema`` run, then ``rows`` inserted per table, values
    stored as given (SQLite keeps a text in an INTEGER column, as real files have them)."""
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript(schema)
        for table, values in (rows or {}).items():
            if values:
                marks = ", ".join("?" * len(values[0]))
                connection.executemany(f'INSERT INTO "{table}" VALUES ({marks})', values)
    connection.close()
    return path


def stored(path: Path, query: str) -> list[tuple[object, ...]]:
    """Rows of ``query`` on the file, values as SQLite stores them."""
    connection = sqlite3.connect(path)
    try:
        return list(connection.execute(query))
    finally:
        connection.close()

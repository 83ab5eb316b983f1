"""Write the legacy SQLite file of agent_armor: the ``tasks`` table as better-sqlite3 kept it,
with the differences the move to PostgreSQL met: an INTEGER key where PostgreSQL has text,
DATETIME as text without a zone (``CURRENT_TIMESTAMP``'s form, in UTC), JSON kept in TEXT.

    python -m agent_armor.legacy.generate [PATH] [ROWS]   # default: tasks.db beside this file
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

SCHEMA = """
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    metadata TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
)"""
STATUSES = ("todo", "running", "done", "failed")
OWNERS = ("ana", "bo", None, "chen")
START = datetime(2024, 3, 1, 8, 30)


def rows(count: int) -> Iterator[tuple[object, ...]]:
    """``count`` tasks, deterministic: the same file every time."""
    for n in range(1, count + 1):
        created = START + timedelta(minutes=7 * n)
        metadata = {"attempts": n % 4, "tags": ["legacy", STATUSES[n % 4]]} if n % 3 else None
        yield (
            n,
            f"task {n}",
            STATUSES[n % 4],
            OWNERS[n % 4],
            json.dumps(metadata) if metadata else None,
            created.strftime("%Y-%m-%d %H:%M:%S"),
            (created + timedelta(seconds=n % 600)).strftime("%Y-%m-%d %H:%M:%S"),
        )


def write(path: Path, count: int) -> Path:
    """A new SQLite file at ``path`` with ``count`` tasks."""
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute(SCHEMA)
        connection.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)", rows(count))
    connection.close()
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("tasks.db")
    write(target, int(sys.argv[2]) if len(sys.argv) > 2 else 12)

"""The target database's own record of what was applied to it: ``migrail.history``.

One row per revision applied by ``migrate``: its file's checksum, the plan it came from, who,
when, how long, and whether it succeeded. A success is written in the revision's own transaction,
so the record and ``alembic_version`` can never disagree; a failure is written after the
rollback.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from migrail.identity import SCHEMA

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Entry:
    revision: str
    checksum: str
    plan_id: str | None
    applied_by: str
    applied_at: datetime
    duration_ms: int
    success: bool
    error: str | None


def actor() -> str:
    """Who applies: ``MIGRAIL_ACTOR`` (set by CI to the person behind the run), else the user."""
    return os.environ.get("MIGRAIL_ACTOR", "").strip() or getpass.getuser()


def ensure_ledger(connection: Connection) -> None:
    from sqlalchemy import text

    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    connection.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.history ("
            " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " revision text NOT NULL, checksum text NOT NULL, plan_id text,"
            " applied_by text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
            " duration_ms integer NOT NULL, success boolean NOT NULL, error text)"
        )
    )
    connection.commit()


def record(
    connection: Connection,
    revision: str,
    checksum: str,
    seconds: float,
    *,
    plan_id: str | None = None,
    error: str | None = None,
) -> None:
    """One row; the caller's transaction decides when it commits."""
    from sqlalchemy import text

    connection.execute(
        text(
            f"INSERT INTO {SCHEMA}.history (revision, checksum, plan_id, applied_by, duration_ms,"
            " success, error) VALUES (:revision, :checksum, :plan_id, :by, :ms, :success, :error)"
        ),
        {
            "revision": revision,
            "checksum": checksum,
            "plan_id": plan_id,
            "by": actor(),
            "ms": round(seconds * 1000),
            "success": error is None,
            "error": error,
        },
    )


def read_ledger(connection: Connection, limit: int = 20) -> list[Entry]:
    """The newest entries, newest first (none where nothing was ever recorded)."""
    from sqlalchemy import text

    if connection.execute(text(f"SELECT to_regclass('{SCHEMA}.history')")).scalar() is None:
        connection.rollback()
        return []
    rows = connection.execute(
        text(
            f"SELECT revision, checksum, plan_id, applied_by, applied_at, duration_ms, success,"
            f" error FROM {SCHEMA}.history ORDER BY id DESC LIMIT :limit"
        ),
        {"limit": limit},
    ).all()
    connection.rollback()
    return [Entry(*row) for row in rows]

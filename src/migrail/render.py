"""Offline SQL: each revision's upgrade as it will run, for review (``generate``) and for lint.

The whole history renders in one Alembic run; ``on_version_apply`` marks where each revision's
SQL ends, so the output splits into one piece per revision, each with its own transaction
boundaries (an ``autocommit_block`` comes out outside a transaction, as it runs). A revision that
cannot render without a database (it reads through ``op.get_bind()``) is recorded, and rendering
goes on from the next revision.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrail import history
from migrail.errors import FatalError
from migrail.steps import describe_error

if TYPE_CHECKING:
    from alembic.script import Script

    from migrail.executor import Executor

_COMMIT = "COMMIT;\n\n"


@dataclass(frozen=True)
class Rendered:
    """One revision's upgrade SQL, with the session settings it runs under, or why there is none."""

    revision: Script
    sql: str | None
    error: str | None = None


def render_each(executor: Executor, start: str | None = None) -> list[Rendered]:
    """Every revision after ``start`` (``None``: base), oldest first, in as few runs as possible."""
    plan = history.upgrade_plan(executor.script, (start,) if start else ())
    rendered: list[Rendered] = []
    while len(rendered) < len(plan):
        pieces, failure = _render_from(executor, start)
        for piece in pieces:
            revision = plan[len(rendered)]
            rendered.append(Rendered(revision, executor.session_settings + piece))
        if failure is None:
            break
        failed = plan[len(rendered)]
        rendered.append(Rendered(failed, None, describe_error(failure)))
        start = failed.revision  # go on as if it had been applied
    return rendered


def _render_from(executor: Executor, start: str | None) -> tuple[list[str], Exception | None]:
    """One offline run to head: the SQL of each revision it rendered, and what stopped it."""
    buffer = io.StringIO()
    ends: list[int] = []
    try:
        executor.upgrade_offline(start, buffer, lambda **_: ends.append(buffer.tell()))
    except Exception as exc:
        return _split(buffer.getvalue(), ends), exc
    return _split(buffer.getvalue(), ends), None


def render_one(executor: Executor, previous: str | None) -> str:
    """The SQL of the revision after ``previous`` (the newest one), as ``generate`` writes it."""
    [piece] = render_each(executor, previous)[:1]
    if piece.sql is None:
        raise FatalError(
            f"{history.short_name(piece.revision)} cannot be rendered as SQL without a database: "
            f"{piece.error}"
        )
    return piece.sql


def render_range(executor: Executor, start: str | None) -> str:
    """The SQL an upgrade from ``start`` to head runs, as one script; a FatalError if it cannot."""
    pieces = render_each(executor, start)
    for piece in pieces:
        if piece.sql is None:
            raise FatalError(
                f"{history.short_name(piece.revision)} cannot be rendered as SQL without a "
                f"database: {piece.error}",
                hint="a data migration that reads from the database: apply it with migrate",
            )
    return executor.session_settings + "".join(
        piece.sql.removeprefix(executor.session_settings) for piece in pieces if piece.sql
    )


def _split(text: str, ends: list[Any]) -> list[str]:
    """Cut the output after each revision's COMMIT (Alembic marks the end just before it)."""
    pieces, begin = [], 0
    for end in ends:
        if text.startswith(_COMMIT, end):
            end += len(_COMMIT)
        pieces.append(text[begin:end])
        begin = end
    return pieces

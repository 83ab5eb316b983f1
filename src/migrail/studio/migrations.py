"""The migrations page's data: what the environment's database has applied (``migrail.history``),
what the checkout would apply next, each with its SQL and lint findings, and on request drift
and the locks each pending revision takes, measured on a throwaway copy of the schema.

The same library calls ``status``, ``plan`` and ``drift`` make: the page says what they say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.history.revisions import display_name
from migrail.postgres.bookkeeping import TableProblem
from migrail.release.ledger import DOWNGRADE, Entry, read_ledger

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config
    from migrail.lint.findings import Finding
    from migrail.postgres.observe import Effects

HISTORY_LIMIT = 100


@dataclass(frozen=True)
class PendingRevision:
    name: str
    message: str
    sql: str | None
    error: str | None  # why it cannot be rendered as SQL offline
    findings: list[Finding] = field(default_factory=list)
    locks: str | None = None  # measured, when asked: "rewrite: ACCESS EXCLUSIVE on tasks"
    staged: str | None = None  # as the staging report measured them (None: not in it)


@dataclass(frozen=True)
class Migrations:
    current: str
    head: str
    history: list[Entry]
    unreadable: str | None  # why the history is not shown (a GRANT missing)
    pending: list[PendingRevision]
    drift: list[str] | None = None  # None: not checked
    names: dict[str, str] = field(default_factory=dict)  # each revision in the history, named


def outcome(entry: Entry) -> str:
    """``ok``, ``undone``, ``stamped``, or the failure, as ``migrail status`` words them."""
    undone = entry.direction == DOWNGRADE
    if entry.success:
        return "stamped" if entry.stamped else "undone" if undone else "ok"
    return f"FAILED{' to undo' if undone else ''}: {entry.error}"


def read_migrations(
    config: Config,
    connection: Connection,
    measure: bool = False,
    staging_report: Path | None = None,
) -> Migrations:
    """History, pending revisions with their SQL and lint, and the locks a staging report
    (``migrate-staging --report``) measured; with ``measure``, drift and locks measured now
    (a throwaway database is built at the current revision: seconds, not milliseconds)."""
    from migrail.engine.executor import Executor
    from migrail.engine.render import render_each
    from migrail.lint.linter import lint_history
    from migrail.staging.staging_markdown import measured_locks

    executor = Executor(config)
    current = executor.current(connection)
    try:
        history, unreadable = read_ledger(connection, limit=HISTORY_LIMIT), None
    except TableProblem as problem:
        history, unreadable = [], f"{problem.message} ({problem.hint})"
    pending = executor.pending(current)
    wanted = {revision.revision for revision in pending}
    scope = {Path(revision.path).resolve() for revision in pending}
    not_rendered = "not rendered"
    try:
        rendered = render_each(executor, current) if pending else []
        findings = lint_history(executor, scope).findings if pending else []
    except FatalError as exc:  # env.py fails offline: the history and the rest still show
        rendered, findings, not_rendered = [], [], exc.message
    pieces = {
        piece.revision.revision: piece for piece in rendered if piece.revision.revision in wanted
    }
    drift: list[str] | None = None
    effects: dict[str, Effects] = {}
    if measure:
        from migrail.release.drift import find_drift

        drift, effects = find_drift(executor, connection, current, measure=bool(pending))
    staged = measured_locks(_read(staging_report)) if staging_report else {}
    shown = []
    for revision in pending:
        piece = pieces.get(revision.revision)
        measured = effects.get(revision.revision)
        shown.append(
            PendingRevision(
                display_name(revision),
                revision.doc or "",
                piece.sql if piece else None,
                piece.error if piece else not_rendered,
                [f for f in findings if Path(f.path).resolve() == Path(revision.path).resolve()],
                (measured.summary() or "no lock on an existing table") if measured else None,
                staged.get(display_name(revision)),
            )
        )
    head = (executor.head,) if executor.head else ()
    names = {entry.revision: executor.label((entry.revision,)) for entry in history}
    return Migrations(
        executor.label(current), executor.label(head), history, unreadable, shown, drift, names
    )


def _read(path: Path) -> str:
    """The report's text; none where it is not (yet) written."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""

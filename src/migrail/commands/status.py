"""``migrail status``: where an environment's database is, and what it is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.core.urls import mask_url
from migrail.engine.executor import Executor
from migrail.history.revisions import display_name
from migrail.postgres.bookkeeping import TableProblem
from migrail.release.ledger import DOWNGRADE, Entry, read_ledger

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def status(config: Config, *, env_name: str | None, console: Console) -> int:
    """Print the environment, its database's revision, the head, and the pending revisions."""
    from migrail.postgres.target import connect_target

    environment, url = resolve_environment(config, env_name)
    executor = Executor(config)
    with connect_target(url, "status", lock_timeout=config.lock_timeout) as connection:
        current = executor.current(connection)
        try:
            applied, unreadable = read_ledger(connection, limit=10), None
        except TableProblem as problem:  # the rest is still worth showing
            applied, unreadable = [], problem
    pending = executor.pending(current)
    head = (executor.head,) if executor.head else ()
    output.info(console, f"environment: {environment.name} ({mask_url(url)})")
    output.info(console, f"database at: {executor.label(current)}")
    output.info(console, f"head:        {executor.label(head)}")
    if pending:
        output.info(console, f"pending ({len(pending)}):")
        output.items(console, (display_name(revision) for revision in pending))
    else:
        output.success(console, "up to date")
    if unreadable is not None:
        output.info(console, f"applied: not shown: {unreadable.message}")
        output.items(console, [unreadable.hint] if unreadable.hint else [])
    if applied:
        output.info(console, "applied (newest first):")
        for entry in applied:
            outcome = _outcome(entry)
            when = entry.applied_at.strftime("%Y-%m-%d %H:%M:%S %Z")
            plan = f", plan {entry.plan_id[:12]}" if entry.plan_id else ""
            plan = ", stamped" if entry.stamped else plan
            output.info(
                console,
                f"  {executor.label((entry.revision,))}  {when}  by {entry.applied_by}  "
                f"{entry.duration_ms} ms{plan}  {outcome}",
            )
    return 0


def _outcome(entry: Entry) -> str:
    """``ok`` for a revision applied; a revision undone (``migrate --to``) says so."""
    undone = entry.direction == DOWNGRADE
    if entry.success:
        return "undone" if undone else "ok"
    return f"FAILED{' to undo' if undone else ''}: {entry.error}"

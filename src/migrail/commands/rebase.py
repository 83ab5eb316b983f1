"""``migrail rebase``: one head again after two branches each added revisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.history.file_names import with_id

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import MetaData

    from migrail.core.config import Config


def rebase(config: Config, *, onto: str, console: Console) -> int:
    """Move this branch's new revisions after ``onto``'s head, then re-render their SQL."""
    from migrail.engine.models import load_metadata
    from migrail.history.rebase import apply_rebase, plan_rebase

    moves = plan_rebase(config, onto)
    if not moves:
        output.info(console, f"No revision is new on this branch against {onto}: nothing to move")
        return 0
    metadata = load_metadata(config)  # before touching a file: the models must load (merged)
    apply_rebase(config, onto, moves)
    for move in moves:
        new = with_id(move.new_path.stem, move.new_id)
        output.success(console, f"{move.old.display} ➜ {new} (after {move.parent})")
    _refresh_sql(config, console)
    if metadata is not None:
        _write_snapshot(config, metadata, moves[-1].new_path.stem, console)
    output.info(console, "Review, then prove it: nox -s migrate-staging")
    return 0


def _write_snapshot(config: Config, metadata: MetaData, head: str, console: Console) -> None:
    """The new head's schema is both branches' models now: write it from the models."""
    from migrail.history.snapshot import write_snapshot

    path = write_snapshot(config, metadata, head)
    output.success(console, f"wrote {path.relative_to(config.root)}")


def _refresh_sql(config: Config, console: Console) -> None:
    """The moved revisions' SQL names their new ids: render it again."""
    from migrail.engine.executor import Executor
    from migrail.lint.linter import lint_history

    for path in lint_history(Executor(config), fix_sql=True).rewritten:
        output.success(console, f"rewrote {path.relative_to(config.root)}")

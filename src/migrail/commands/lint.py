"""``migrail lint``: every revision's SQL, rendered as it will run, checked before review."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.engine.executor import Executor
from migrail.lint import report

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def lint(config: Config, *, since: str | None, fix_sql: bool, format: str, console: Console) -> int:
    """0 when no error-level finding remains, 1 when one does."""
    from migrail.history.git import changed_files
    from migrail.lint.linter import lint_history

    scope = changed_files(config.root, since) if since else None
    executor = Executor(config, needed=scope)  # what is older than the changes: not imported
    result = lint_history(executor, scope, fix_sql=fix_sql)
    for path in result.rewritten:
        done = "rewrote" if path.exists() else "removed"
        output.success(console, f"{done} {path.relative_to(config.root)}")
    if since and not result.revisions:
        output.info(console, f"No revision changed since {since}: nothing to lint")
    if format == "terminal":
        report.terminal(console, result, config.root)
    else:
        render = {"json": report.as_json, "github": report.as_github, "sarif": report.as_sarif}
        output.write_data(render[format](result, config.root))
    return 1 if result.failing else 0

"""``migrail lint``: every revision's SQL, rendered as it will run, checked before review."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output, proc
from migrail.engine.executor import Executor
from migrail.lint import report

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from migrail.core.config import Config


def lint(
    config: Config,
    *,
    since: str | None,
    fix_sql: bool,
    all_sql: bool,
    format: str,
    console: Console,
) -> int:
    """0 when no error-level finding remains, 1 when one does."""
    if all_sql and not fix_sql:
        from migrail.core.errors import FatalError

        raise FatalError("--all-sql goes with --fix-sql", hint="migrail lint --fix-sql --all-sql")
    from migrail.history.git import changed_files
    from migrail.lint.linter import lint_history

    asked = proc.meanwhile(changed_files, config.root, since) if since else None
    import alembic.script  # noqa: F401  (what loading the history needs, imported while git answers)

    scope = asked.result() if asked is not None else None
    support = sorted(_support_changed(config, scope)) if scope else []
    if support:  # any revision may render otherwise now: none is left out
        root = config.root.resolve()
        shown = ", ".join(
            str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            for path in support[:3]
        )
        more = f" and {len(support) - 3} more" if len(support) > 3 else ""
        output.info(console, f"{shown}{more} changed since {since}: every revision linted")
        scope = None
    executor = Executor(config, needed=scope)  # what is older than the changes: not imported
    result = lint_history(executor, scope, fix_sql=fix_sql, all_sql=all_sql)
    for path in result.rewritten:
        done = "rewrote" if path.exists() else "removed"
        output.success(console, f"{done} {path.relative_to(config.root)}")
    if fix_sql and result.released_without_sql:
        count = result.released_without_sql
        output.info(
            console,
            f"{count} released revision{'s' if count > 1 else ''} without a SQL file left so "
            "(released revisions need none): --fix-sql --all-sql writes them too",
        )
    if since and not result.revisions:
        output.info(console, f"No revision changed since {since}: nothing to lint")
    if format == "terminal":
        report.terminal(console, result, config.root)
    else:
        render = {"json": report.as_json, "github": report.as_github, "sarif": report.as_sarif}
        output.write_data(render[format](result, config.root))
    return 1 if result.failing else 0


def _support_changed(config: Config, changed: set[Path]) -> list[Path]:
    """The files in ``changed`` beside the revisions that shape what they run (``env.py``, a
    helper they import, SQL they read): what a revision renders may change with them though
    its own file did not."""
    from migrail.history.revision_files import is_support_file

    migrations, versions = config.migrations_dir, config.versions_dir
    return [path for path in changed if is_support_file(path, migrations, versions)]

"""``migrail check``: the history's invariants, as CI and the hooks run them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.errors import FatalError
from migrail.history.revisions import check_versions_folder
from migrail.history.tree import DiskTree, StagedTree
from migrail.lint.history_checks import CHECKS

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def check(config: Config, *, only: str | None, staged: bool, console: Console) -> int:
    """Run the checks (``only``: a comma-separated few) on the disk or on what is staged."""
    names = [name.strip() for name in only.split(",")] if only else list(CHECKS)
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        raise FatalError(
            f"unknown check(s): {', '.join(unknown)}", hint=f"checks: {', '.join(CHECKS)}"
        )
    if not staged:
        check_versions_folder(config)
    tree = StagedTree(config.root) if staged else DiskTree()
    findings = [finding for name in names for finding in CHECKS[name](config, tree)]
    failing = [finding for finding in findings if finding.failing]
    for finding in findings:
        if not finding.failing:
            output.plain_note(f"{finding.rule}: {finding.message}")
    for finding in failing:
        output.plain(f"{finding.rule}: {finding.message}", finding.help)
    if not failing:
        where = "staged history" if staged else "history"
        output.plain(f"{', '.join(names)}: the {where} is sound", ok=True)
    return 1 if failing else 0

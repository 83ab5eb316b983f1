"""``migrail check`` and ``migrail sum``: the history's invariants, as CI and the hooks run them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.errors import FatalError
from migrail.core.files import unwritable
from migrail.history import sums
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
    for finding in findings:
        output.plain(f"{finding.rule}: {finding.message}", finding.help)
    if not findings:
        where = "staged history" if staged else "history"
        output.plain(f"{', '.join(names)}: the {where} is sound", ok=True)
    return 1 if findings else 0


def sum_command(config: Config, *, update: bool, console: Console) -> int:
    """Verify ``migrations/migrail.sum``, or (``update``) record every revision file as it is."""
    path = config.migrations_dir / sums.SUM_FILE
    if not update:
        return check(config, only="immutable", staged=False, console=console)
    check_versions_folder(config)
    files = {p.name: content for p, content in DiskTree().files(config.versions_dir, ".py").items()}
    files.pop("__init__.py", None)
    try:
        path.write_text(sums.render_sum(files))
    except OSError as exc:
        raise unwritable(path, exc) from None
    output.success(console, f"recorded {len(files)} revision(s) in {path.relative_to(config.root)}")
    return 0


def snapshot(config: Config, *, console: Console) -> int:
    """Write the schema snapshot of the current head from the models (adoption, hand edits)."""
    from migrail.engine.executor import Executor
    from migrail.engine.models import load_metadata
    from migrail.history.revisions import short_name
    from migrail.history.snapshot import write_snapshot

    metadata = load_metadata(config)
    if metadata is None:
        raise FatalError(
            "snapshots are of models, and no models are configured",
            hint="set [tool.migrail] metadata = 'package.module:metadata'",
        )
    head = Executor(config).head
    if head is None:
        raise FatalError(
            "there is no revision to write a snapshot for", hint="migrail generate NAME"
        )
    path = write_snapshot(config, metadata, short_name(Executor(config).script.get_revision(head)))
    output.success(console, f"wrote {path.relative_to(config.root)}")
    return 0

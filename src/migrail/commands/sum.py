"""``migrail sum``: verify ``migrations/migrail.sum``, or record the revision files in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.commands.check import check
from migrail.core import output
from migrail.core.files import unwritable
from migrail.history import sums
from migrail.history.revisions import check_versions_folder
from migrail.history.tree import DiskTree

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


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

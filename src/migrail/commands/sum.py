"""``migrail sum``: verify ``migrations/migrail.sum``, or record the revision files in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.commands.check import check
from migrail.core import output
from migrail.core.files import read_bytes, unwritable
from migrail.history import sums
from migrail.history.released import released, update_sum
from migrail.history.revision_files import by_key
from migrail.history.revisions import check_versions_folder
from migrail.history.tree import DiskTree

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def sum_command(config: Config, *, update: bool, force: bool, console: Console) -> int:
    """Verify ``migrations/migrail.sum``, or (``update``) record the revision files as they are;
    a released one recorded anew only with ``force``."""
    path = config.migrations_dir / sums.SUM_FILE
    if not update:
        return check(config, only="immutable", staged=False, console=console)
    check_versions_folder(config)
    files = by_key(DiskTree().revisions(config.versions_dir), config.versions_dir)
    # Not UTF-8 (a bad merge, an editor): what is legible of it still guards released lines.
    text = read_bytes(path).decode(errors="replace") if path.is_file() else None
    updated, forced = update_sum(text, files, released(config), force=force)
    try:
        path.write_text(updated)
    except OSError as exc:
        raise unwritable(path, exc) from None
    output.success(console, f"recorded {len(files)} revision(s) in {path.relative_to(config.root)}")
    if forced:
        output.info(console, f"released revision(s) recorded anew (--force): {', '.join(forced)}")
    return 0

"""``migrail drop REV``: remove an unreleased revision and its SQL, snapshot and sum line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.history import sums
from migrail.history.drop import drop_revision

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def drop(config: Config, *, revision: str, console: Console) -> int:
    """Remove ``revision``, a draft of this branch, with everything written for it."""
    for path in drop_revision(config, revision):
        verb = "updated" if path.name == sums.SUM_FILE else "removed"
        output.success(console, f"{verb} {config.shown(path)}")
    return 0

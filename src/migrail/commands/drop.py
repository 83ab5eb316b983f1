"""``migrail drop REV``: remove an unreleased revision and its SQL, snapshot and sum line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.errors import FatalError
from migrail.history import sums
from migrail.history.drop import drop_revision, droppable

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config
    from migrail.history.graph import Header


def drop(config: Config, *, revision: str, console: Console) -> int:
    """Remove ``revision``, a draft of this branch, with everything written for it."""
    header = droppable(config, revision)
    _refuse_applied_to_protected(config, header, console)
    for path in drop_revision(config, header):
        verb = "updated" if path.name == sums.SUM_FILE else "removed"
        output.success(console, f"{verb} {config.shown(path)}")
    return 0


def _refuse_applied_to_protected(config: Config, header: Header, console: Console) -> None:
    """A draft by git's account may still have run on production (applied from its branch)."""
    from migrail.engine.executor import Executor
    from migrail.release.protected import applied_to_protected

    if header.revision is None:  # no id: nothing can have recorded it
        return
    for answer in applied_to_protected(config, Executor(config), header.revision):
        if answer.applied:
            raise FatalError(
                f"{header.name} is applied to {answer.environment} (a protected environment), "
                "so it is released although its branch is not merged",
                hint="undo it with a new revision instead: migrail generate NAME",
            )
        if answer.applied is None:
            output.warning(
                console,
                f"could not ask {answer.environment} whether {header.name} ran there: {answer.why}",
            )

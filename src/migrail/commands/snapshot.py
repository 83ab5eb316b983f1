"""``migrail snapshot``: write the schema snapshot of the head from the models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


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
    executor = Executor(config)
    head = executor.head
    if head is None:
        raise FatalError(
            "there is no revision to write a snapshot for", hint="migrail generate NAME"
        )
    path = write_snapshot(config, metadata, short_name(executor.script.get_revision(head)))
    output.success(console, f"wrote {path.relative_to(config.root)}")
    return 0

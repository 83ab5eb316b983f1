"""``migrail stamp``: a database adopted by ``pull`` recorded as at the baseline, not run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.core.urls import mask_url
from migrail.engine.executor import Executor

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def stamp(config: Config, *, env_name: str | None, console: Console) -> int:
    """Refused on protected environments; under the migrate lock otherwise."""
    from migrail.postgres.target import connect_target
    from migrail.release.stamp import refuse_protected, stamp_head

    refuse_protected(config.environment(env_name))
    environment, url = resolve_environment(config, env_name)
    executor = Executor(config)
    waiting = lambda: output.info(console, "Waiting for another migrate to finish...")  # noqa: E731
    with connect_target(url, "stamp", lock_timeout=config.lock_timeout) as connection:
        output.info(console, f"Environment {environment.name}: {mask_url(url)}")
        head = stamp_head(executor, connection, environment, on_wait=waiting)
    output.success(console, f"Stamped {environment.name} at {executor.label((head,))}")
    return 0

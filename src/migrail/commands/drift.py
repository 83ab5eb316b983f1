"""``migrail drift``: compare the database with the schema its recorded revision implies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.engine.executor import Executor

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def drift(config: Config, *, env_name: str | None, console: Console) -> int:
    """0 when the database is exactly what its revision implies; 1, and how, if it differs."""
    from migrail.release.drift import live_drift

    environment, url = resolve_environment(config, env_name)
    executor = Executor(config)
    current, found = live_drift(executor, url)
    if found:
        report_drift(console, environment.name, executor.label(current), found)
        return 1
    output.success(console, f"{environment.name} is exactly what {executor.label(current)} implies")
    return 0


def report_drift(console: Console, name: str, revision: str, drift: list[str]) -> None:
    output.failure(
        console,
        f"{name} has drifted from {revision}: it differs from the schema its revision implies "
        "(+ the history has it and the database does not; - the reverse):",
    )
    output.items(console, drift)

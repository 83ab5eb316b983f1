"""``migrail push``: a development database made to match the models, without a revision."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.core.errors import FatalError
from migrail.core.urls import mask_url

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config, Environment
    from migrail.engine.push import Change


def _instead(environment: str) -> str:
    """How a protected database does change: a revision, released through an approved plan."""
    return (
        "write the change as a revision (migrail generate NAME), then release it: "
        f"migrail plan --env {environment}, approve and apply"
    )


def push(config: Config, *, env_name: str | None, yes: bool, console: Console) -> int:
    """Refused on anything protected or migrated; asks before losing data (unless ``yes``)."""
    from migrail.engine.models import load_metadata
    from migrail.engine.push import apply_changes, planned_changes
    from migrail.postgres.target import connect_target, refuse_read_only

    environment, url = resolve_environment(config, env_name)
    if environment.protected:
        raise FatalError(
            f"push is refused: environment {environment.name} is protected "
            f"({environment.protection})",
            hint=_instead(environment.name),
        )
    metadata = load_metadata(config)
    if metadata is None:
        raise FatalError("push makes the database match the models, and no models are configured")
    with connect_target(url, "push", lock_timeout=config.lock_timeout) as connection:
        refuse_read_only(connection, "push")
        _refuse_protected_or_migrated(config, connection, environment)
        changes = planned_changes(connection, metadata)
        output.info(console, f"Environment {environment.name}: {mask_url(url)}")
        if not changes:
            output.success(console, "Nothing to push: the database matches the models")
            return 0
        output.items(console, (change.description for change in changes))
        lossy = [change for change in changes if change.loses_data]
        if lossy and not yes and not _confirmed(console, lossy):
            output.info(console, "Nothing was changed")
            return 1
        apply_changes(connection, changes)
    output.success(console, f"Pushed {len(changes)} change(s)")
    return 0


def _refuse_protected_or_migrated(
    config: Config, connection: Connection, environment: Environment
) -> None:
    """What the database itself says: that it is protected, or that it has a history."""
    from migrail.engine.executor import Executor
    from migrail.postgres.identity import read_identity

    identity = read_identity(connection)
    if identity is not None and identity.protected:
        raise FatalError(
            f"push is refused: the database says it is {identity.name}, a protected environment "
            f"(you named it {environment.name})",
            hint=_instead(identity.name),
        )
    executor = Executor(config)
    current = executor.current(connection)
    if current:
        raise FatalError(
            f"push is refused: the database has a migration history (at "
            f"{executor.label(current)}) that push would fork",
            hint="apply the history instead: migrail migrate",
        )


def _confirmed(console: Console, lossy: list[Change]) -> bool:
    """Ask before anything that loses data; without a terminal there is no one to ask."""
    from migrail.engine.push import loss

    for change in lossy:
        output.info(console, loss(change))
    if not sys.stdin.isatty():
        raise FatalError(
            "push would lose data, and there is no terminal to confirm it",
            hint="rerun with --yes if you mean it",
        )
    return input("Apply these changes? [y/N] ").strip().lower() in ("y", "yes")

"""``migrail rehearse``: plan, approve and apply on a throwaway stand-in for an environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migrail.commands.apply import apply
from migrail.commands.approve import approve
from migrail.commands.plan import plan
from migrail.core import output

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def rehearse(config: Config, *, env_name: str | None, console: Console) -> int:
    """plan, approve (as someone else) and apply, end to end, on a throwaway database standing in
    for ``env_name`` (production by default): the release, rehearsed before it is real."""
    from migrail.core.scratch import scratch_directory
    from migrail.history.extensions import created_extensions
    from migrail.postgres.ephemeral import ephemeral_database

    environment = config.environment(env_name or "production")
    output.info(console, f"Rehearsing a release to {environment.name} on a throwaway database")
    with scratch_directory("rehearsal") as directory:
        plan_path = directory / "plan.json"
        with ephemeral_database(extensions=created_extensions(config)) as url:
            stand_in = url.render_as_string(hide_password=False)
            with _variables({environment.url_env: stand_in}):
                if plan(
                    config, env_name=environment.name, out=plan_path, force=False, console=console
                ):
                    return 1
                with _variables({"MIGRAIL_ACTOR": "rehearsal reviewer"}):
                    approve(config, plan_path=plan_path, console=console)
                if apply(config, plan_path=plan_path, console=console):
                    return 1
    output.success(console, "the release rehearsal passed: plan, approve and apply")
    return 0


@contextmanager
def _variables(values: dict[str, str]) -> Iterator[None]:
    """Environment variables set for the block, and put back as they were afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

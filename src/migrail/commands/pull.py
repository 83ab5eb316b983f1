"""``migrail pull``: a database without migrations adopted: its models, and a baseline revision."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.core.urls import mask_url
from migrail.core.writes import all_or_nothing

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def pull(
    config: Config, *, env_name: str | None, models: Path | None, stamp: bool, console: Console
) -> int:
    """Write the database's models and a baseline that creates them (``stamp``: and record the
    database as at the baseline); nothing is written unless all of it is."""
    from migrail.commands.generate import generate
    from migrail.commands.stamp import stamp as stamp_command
    from migrail.core.files import read_text
    from migrail.engine import pull as adopt
    from migrail.postgres.target import connect_target
    from migrail.release.stamp import refuse_protected

    adopt.require_sqlacodegen()
    if stamp:
        refuse_protected(config.environment(env_name))
    path = adopt.models_path(config, models)
    adopt.refuse_existing(config, path)
    environment, url = resolve_environment(config, env_name)
    with connect_target(
        url, "pull", lock_timeout=config.lock_timeout, statement_timeout=config.statement_timeout
    ) as connection:
        if stamp:
            refuse_protected(environment, connection)
        output.info(console, f"Environment {environment.name}: {mask_url(url)}")
        source = adopt.models_source(connection)
    setting = config.metadata or adopt.metadata_setting(config, path)
    with all_or_nothing() as writes:
        writes.write(path, source)
        if config.metadata is None:
            pyproject = config.root / "pyproject.toml"
            writes.write(pyproject, adopt.with_metadata_setting(read_text(pyproject), setting))
        output.success(console, f"Your models ➜ {config.shown(path)} ({setting})")
        adopted = replace(config, metadata=setting)
        generate(adopted, name="baseline", empty=False, console=console)
    if not stamp:
        again = f" --env {env_name}" if env_name else ""
        output.info(console, f"To record the database as at the baseline: migrail stamp{again}")
        return 0
    return stamp_command(adopted, env_name=env_name, console=console)

"""Whether a revision already ran on a protected environment, asked of the databases themselves.

git decides what is released for the commands that must work offline (the hooks, ``check``). A
revision can also reach production before its branch is merged (a hotfix applied from its
branch): then it is released too, and only the database knows. ``drop``, which destroys, asks
every protected environment whose URL is at hand; one it cannot reach is said, not fatal, since
git already judged the file a draft.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrail.core.config import resolve_environment
from migrail.core.errors import FatalError
from migrail.postgres.target import connect_target

if TYPE_CHECKING:
    from migrail.core.config import Config
    from migrail.engine.executor import Executor


@dataclass(frozen=True)
class Answer:
    """One protected environment's answer: ``applied`` is None where it could not be asked."""

    environment: str
    applied: bool | None
    why: str = ""


def applied_to_protected(config: Config, executor: Executor, revision: str) -> list[Answer]:
    """Ask each protected environment with a URL whether ``revision`` is applied there (at or
    below its current revision). Environments without a URL are not asked."""
    answers = []
    for environment in config.environments.values():
        if not environment.protected:
            continue
        try:
            _, url = resolve_environment(config, environment.name)
        except FatalError:
            continue  # no URL here: the usual laptop, nothing to ask
        try:
            with connect_target(
                url, "drop", lock_timeout=config.lock_timeout, statement_timeout="30s"
            ) as connection:
                current = executor.current(connection)
        except FatalError as problem:
            answers.append(Answer(environment.name, None, problem.message))
            continue
        pending = {script.revision for script in executor.pending(current)}
        answers.append(Answer(environment.name, revision not in pending))
    return answers

"""``migrail init``: adopt migrail in a project, keeping its Alembic environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

PRE_COMMIT = """\
  - repo: https://github.com/<owner>/migrail   # or a local path to a clone
    rev: <tag or commit>
    hooks:
      - id: migrail-schema-sync
        additional_dependencies: []   # what your models import besides SQLAlchemy
      - id: migrail-single-head
      - id: migrail-immutable
      - id: migrail-lint"""


def init(root: Path, *, console: Console) -> int:
    """Write ``[tool.migrail]``, make env.py use migrail's connection, record the history."""
    from migrail.core.config import load_config
    from migrail.engine.adoption import adopt_project, record_history

    result = adopt_project(root)
    record_history(load_config(root), result)
    if result.env_diff:
        console.print(result.env_diff, markup=False, highlight=False, end="")
    for line in result.done:
        output.success(console, line)
    for note in result.notes:
        output.info(console, note)
    if not result.done:
        output.success(console, "nothing to do: this project is already set up for migrail")
        return 0
    console.print(
        "Undo: restore env.py from its .migrail-bak copy, or `git checkout` the changed files.\n"
        "Commit hooks, in .pre-commit-config.yaml:\n" + PRE_COMMIT,
        markup=False,
        highlight=False,
    )
    return 0

"""Adopting a database that has no migrations: its schema read back as SQLAlchemy models
(sqlacodegen), the module they go in, and ``[tool.migrail] metadata`` pointing at them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.core.errors import FatalError
from migrail.history.revision_files import revision_paths

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config

# The name the written module's MetaData is found under (sqlacodegen declares ``Base``).
ATTRIBUTE = "metadata"
_INSTALL = "pip install 'migrail[pull]'"


def models_path(config: Config, models: Path | None) -> Path:
    """Where the models go: ``models`` (relative to the project), else the module
    ``[tool.migrail] metadata`` names; the two must agree when both are given."""
    configured = _configured_path(config)
    if models is None:
        if configured is None:
            raise FatalError(
                "pull needs to know where to write the models",
                hint="name the module: migrail pull --models app/models.py",
            )
        return configured
    path = models if models.is_absolute() else config.root / models
    if path.suffix != ".py" or not path.resolve().is_relative_to(config.root.resolve()):
        raise FatalError(
            f"--models {models} is not a Python module inside the project",
            hint="name a .py file under the project folder, e.g. --models app/models.py",
        )
    if configured is not None and configured.resolve() != path.resolve():
        raise FatalError(
            f"--models {models} is not the module [tool.migrail] metadata names "
            f"({config.metadata})",
            hint="leave out --models, or change [tool.migrail] metadata to point at it",
        )
    return path


def _configured_path(config: Config) -> Path | None:
    """The file of the module ``[tool.migrail] metadata`` names (under the project or src/)."""
    if config.metadata is None:
        return None
    module, _, attribute = config.metadata.partition(":")
    if attribute not in (ATTRIBUTE, "Base", "Base.metadata"):
        raise FatalError(
            f"pull writes models whose MetaData is {ATTRIBUTE} or Base.metadata, and "
            f"[tool.migrail] metadata names {config.metadata}",
            hint="point [tool.migrail] metadata at 'module:metadata', or remove it and pass "
            "--models",
        )
    relative = Path(*module.split(".")).with_suffix(".py")
    for base in (config.root / "src", config.root):
        if (base / relative.parts[0]).exists():
            return base / relative
    return config.root / relative


def metadata_setting(config: Config, path: Path) -> str:
    """``[tool.migrail] metadata`` for the models written to ``path``."""
    relative = path.resolve().relative_to(config.root.resolve()).with_suffix("")
    parts = relative.parts[1:] if relative.parts[0] == "src" else relative.parts
    return f"{'.'.join(parts)}:{ATTRIBUTE}"


def refuse_existing(config: Config, path: Path) -> None:
    """Pull starts a project's history: an existing models module or history stays untouched."""
    if path.exists() or path.is_symlink():
        raise FatalError(
            f"pull is refused: {config.shown(path)} exists, and pull does not overwrite models",
            hint="move it away (or name another module with --models), then pull again",
        )
    revisions = revision_paths(config.versions_dir)
    if revisions or (config.migrations_dir / "migrail.sum").exists():
        raise FatalError(
            f"pull is refused: {config.shown(config.migrations_dir)} already has a migration "
            "history, and pull writes a first revision",
            hint="a project with a history changes through migrail generate NAME; "
            "to start over, move migrations/versions and migrations/migrail.sum away",
        )


def require_sqlacodegen() -> Any:
    """sqlacodegen's declarative generator; an optional dependency, named before anything runs."""
    try:
        from sqlacodegen.generators import DeclarativeGenerator
    except ImportError:
        raise FatalError(
            "pull writes the models with sqlacodegen, which is not installed", hint=_INSTALL
        ) from None
    return DeclarativeGenerator


def models_source(connection: Connection) -> str:
    """The schema of the database's default schema as a module of declarative models, with
    ``metadata`` naming their MetaData (Alembic's and migrail's own tables left out)."""
    from sqlalchemy import MetaData

    generator = require_sqlacodegen()
    metadata = MetaData()
    metadata.reflect(connection, views=False, only=lambda name, _: name != "alembic_version")
    connection.rollback()
    if not metadata.tables:
        raise FatalError(
            "pull found no tables in the database's default schema",
            hint="check the environment's URL: it should point at the database to adopt",
        )
    source = generator(metadata, connection, []).generate()
    connection.rollback()
    text = f'"""Models read from the database by migrail pull."""\n\n{source.rstrip()}\n'
    if "class Base(" in source:  # no table with a primary key: sqlacodegen names a MetaData
        text += f"\n{ATTRIBUTE} = Base.metadata\n"
    return text


def with_metadata_setting(text: str, setting: str) -> str:
    """pyproject.toml's text with ``metadata = setting`` as the first key of [tool.migrail]."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.strip() == "[tool.migrail]":
            lines.insert(index + 1, f'metadata = "{setting}"\n')
            return "".join(lines)
    raise FatalError(
        "pull sets [tool.migrail] metadata, and pyproject.toml has no [tool.migrail] header line",
        hint=f'add metadata = "{setting}" under [tool.migrail] yourself, then pull again',
    )

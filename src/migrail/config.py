"""``[tool.migrail]`` in pyproject.toml, read once into a frozen ``Config``.

Precedence: command line, then the process environment (and ``.env`` files), then
``[tool.migrail]``, then the defaults below. Database URLs are only ever read from the environment,
so that no secret lives in a committed file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from migrail.errors import FatalError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

RevisionNaming = Literal["sequence", "timestamp"]

DEFAULT_ENVIRONMENTS: Mapping[str, Mapping[str, Any]] = {
    "development": {"url_env": "DATABASE_URL"},
    "test": {"url_env": "DATABASE_URL_TEST"},
    "staging": {"url_env": "STAGING_DATABASE_URL"},
    "production": {"url_env": "PRODUCTION_DATABASE_URL", "protected": True},
}
_KNOWN_KEYS = {"metadata", "migrations", "revision_naming", "default_environment", "environments"}
_KNOWN_ENV_KEYS = {"url_env", "protected"}


@dataclass(frozen=True)
class Environment:
    """A named target database; ``url_env`` is the environment variable holding its URL."""

    name: str
    url_env: str
    protected: bool = False


@dataclass(frozen=True)
class Config:
    """Everything migrail knows about one project."""

    root: Path
    migrations_dir: Path
    metadata: str | None = None
    revision_naming: RevisionNaming = "sequence"
    default_environment: str = "development"
    environments: Mapping[str, Environment] = field(default_factory=dict)

    @property
    def versions_dir(self) -> Path:
        return self.migrations_dir / "versions"

    @property
    def sql_dir(self) -> Path:
        """Where ``generate`` writes each revision's upgrade SQL for review."""
        return self.migrations_dir / "sql"

    def environment(self, name: str | None) -> Environment:
        """The environment called ``name`` (the default one when ``None``)."""
        name = name or self.default_environment
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise FatalError(
                f"unknown environment {name!r}",
                hint=f"environments in [tool.migrail.environments]: {known}",
            ) from None


def find_pyproject(start: Path) -> Path:
    """The nearest pyproject.toml with a ``[tool.migrail]`` table, from ``start`` upwards."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and "migrail" in _read_toml(candidate).get("tool", {}):
            return candidate
    raise FatalError(
        f"no pyproject.toml with a [tool.migrail] table in {start} or above",
        hint="run migrail inside your project, or pass --project DIR",
    )


def load_config(project: Path | None = None) -> Config:
    """Read the project's configuration and load its ``.env`` file into the environment."""
    pyproject = find_pyproject((project or Path.cwd()).resolve())
    root = pyproject.parent
    table = _read_toml(pyproject)["tool"]["migrail"]
    _reject_unknown(table, _KNOWN_KEYS, "[tool.migrail]")
    load_env_files(root)
    environments = _environments(table.get("environments", DEFAULT_ENVIRONMENTS))
    naming = table.get("revision_naming", "sequence")
    if naming not in ("sequence", "timestamp"):
        raise FatalError(
            f"[tool.migrail] revision_naming must be 'sequence' or 'timestamp', not {naming!r}"
        )
    config = Config(
        root=root,
        migrations_dir=root / table.get("migrations", "migrations"),
        metadata=table.get("metadata") or None,
        revision_naming=naming,
        default_environment=table.get("default_environment", "development"),
        environments=environments,
    )
    config.environment(None)
    return config


def load_env_files(root: Path, environment: str | None = None) -> None:
    """Load ``.env.<environment>`` and ``.env`` from ``root``; variables already set win."""
    from dotenv import load_dotenv

    names = ([f".env.{environment}"] if environment else []) + [".env"]
    for name in names:
        if (root / name).is_file():
            load_dotenv(root / name, override=False)


def require_env(variable: str, *, purpose: str) -> str:
    """The value of ``variable``, or a FatalError saying where to set it."""
    value = os.environ.get(variable, "").strip()
    if not value:
        raise FatalError(
            f"{variable} is not set ({purpose})",
            hint=f"export {variable}=postgresql://USER:PASSWORD@HOST:5432/DATABASE "
            "or put it in .env",
        )
    return value


def resolve_environment(config: Config, name: str | None) -> tuple[Environment, URL]:
    """The environment called ``name`` (default: the default one) and its parsed URL.

    The URL comes from the environment's variable, else from ``.env.<name>`` or ``.env``.
    """
    from migrail.urls import parse_url

    environment = config.environment(name)
    load_env_files(config.root, environment.name)
    raw = require_env(environment.url_env, purpose=f"the URL of environment {environment.name!r}")
    return environment, parse_url(raw, source=environment.url_env)


def _environments(table: Mapping[str, Any]) -> dict[str, Environment]:
    environments = {}
    for name, settings in table.items():
        if not isinstance(settings, Mapping) or not isinstance(settings.get("url_env"), str):
            raise FatalError(
                f"[tool.migrail.environments.{name}] needs url_env, the variable holding its URL"
            )
        _reject_unknown(settings, _KNOWN_ENV_KEYS, f"[tool.migrail.environments.{name}]")
        environments[name] = Environment(
            name=name, url_env=settings["url_env"], protected=bool(settings.get("protected"))
        )
    return environments


def _reject_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise FatalError(
            f"unknown key(s) in {where}: {', '.join(unknown)}",
            hint=f"known keys: {', '.join(sorted(known))}",
        )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise FatalError(f"{path} is not valid TOML: {exc}") from exc

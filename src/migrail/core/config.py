"""``[tool.migrail]`` in pyproject.toml, read once into a frozen ``Config``.

Precedence: command line, then the process environment (and ``.env`` files), then
``[tool.migrail]``, then the defaults below. Database URLs are only ever read from the environment,
so that no secret lives in a committed file.
"""

from __future__ import annotations

import io
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from migrail.core import durations, files
from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

RevisionNaming = Literal["sequence", "timestamp", "alembic"]
_NAMINGS: dict[str, RevisionNaming] = {
    "sequence": "sequence",
    "timestamp": "timestamp",
    "alembic": "alembic",
}

DEFAULT_ENVIRONMENTS: Mapping[str, Mapping[str, Any]] = {
    "development": {"url_env": "DATABASE_URL"},
    "test": {"url_env": "DATABASE_URL_TEST"},
    "staging": {"url_env": "STAGING_DATABASE_URL"},
    "production": {"url_env": "PRODUCTION_DATABASE_URL", "protected": True},
}
_KNOWN_KEYS = {
    "base_branch",
    "flask_app",
    "metadata",
    "migrations",
    "revision_naming",
    "default_environment",
    "environments",
    "lock_timeout",
    "statement_timeout",
    "lint",
    "locks",
    "four_eyes",
    "lock_retries",
}
_KNOWN_ENV_KEYS = {"url_env", "protected"}
_KNOWN_LINT_KEYS = {"pg_version", "exclude", "warn", "squawk_config"}
# Squawk rules about style rather than about what blocks or breaks production: reported, but
# they do not fail the lint unless [tool.migrail.lint] warn is set without them.
# prefer-text-field too: a model's String(64) is the team's choice, and widening a varchar later
# is a change of the catalog alone; failing the revision generate wrote from it helps no one.
DEFAULT_WARN = (
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-text-field",
)

# What staging measures a revision doing to a table that existed before it, each class with the
# severity it has unless [tool.migrail.locks] says otherwise (docs/rules.md has one section each).
LOCK_CLASSES = {
    "rewrite": "error",
    "scan-under-exclusive": "error",
    "write-blocking-index-build": "error",
    "exclusive-held-long": "warning",
    "metadata-only": "note",
}
# error: fails migrate-staging; warning: named, does not fail; note: counted in one line; off.
LOCK_SEVERITIES = ("error", "warning", "note", "off")


@dataclass(frozen=True)
class LintSettings:
    """``[tool.migrail.lint]``: how ``migrail lint`` judges the SQL of revisions."""

    pg_version: str | None = None
    exclude: tuple[str, ...] = ()
    warn: tuple[str, ...] = DEFAULT_WARN
    squawk_config: Path | None = None


@dataclass(frozen=True)
class Environment:
    """A named target database; ``url_env`` is the environment variable holding its URL."""

    name: str
    url_env: str
    # A protected environment's database is never changed outside the release path: push is
    # refused there, and the database records that it is protected on its first migrate.
    protected: bool = False
    # False for migrail's built-in environments (no [tool.migrail.environments] table): messages
    # say where a setting comes from.
    configured: bool = True

    @property
    def protection(self) -> str:
        """Where this environment's protection is set, for a refusal to cite."""
        if not self.configured:
            return (
                f"migrail's default environments protect {self.name}; a "
                "[tool.migrail.environments] table in pyproject.toml replaces them"
            )
        return f"protected = true in [tool.migrail.environments.{self.name}] in pyproject.toml"


@dataclass(frozen=True)
class Config:
    """Everything migrail knows about one project."""

    root: Path
    migrations_dir: Path
    metadata: str | None = None
    # A Flask-Migrate project's app ("package:create_app" or "module:app"): its env.py reads
    # current_app, so every env.py run happens inside this app's application context.
    flask_app: str | None = None
    revision_naming: RevisionNaming = "sequence"
    default_environment: str = "development"
    environments: Mapping[str, Environment] = field(default_factory=dict)
    # Every revision runs with these set, and its rendered SQL says so (squawk checks for them).
    lock_timeout: str = "5s"
    statement_timeout: str = "30min"
    lint: LintSettings = field(default_factory=LintSettings)
    # [tool.migrail.locks]: each measured lock class's severity in staging (LOCK_CLASSES).
    locks: Mapping[str, str] = field(default_factory=lambda: dict(LOCK_CLASSES))
    # Release: whether a plan's author may approve it, and how often ``apply`` tries again when
    # a revision's lock wait times out (with growing pauses between tries).
    four_eyes: bool = False
    lock_retries: int = 3
    # The branch whose revisions are released (None: origin/main, main, origin/master, master).
    base_branch: str | None = None

    @property
    def versions_dir(self) -> Path:
        return self.migrations_dir / "versions"

    @property
    def sql_dir(self) -> Path:
        """Where ``generate`` writes each revision's upgrade SQL for review."""
        return self.migrations_dir / "sql"

    @property
    def seeds_dir(self) -> Path:
        """Where a table's own staging rows live, as ``<table>.sql`` (see sample_data)."""
        return self.migrations_dir / "seeds"

    def shown(self, path: Path) -> str:
        """``path`` as messages name it: relative to the project, where it is inside it (as
        named: a link is not replaced by its target)."""
        for inside, root in ((path, self.root), (path.resolve(), self.root.resolve())):
            if inside.is_relative_to(root):
                return str(inside.relative_to(root))
        return str(path)

    def environment(self, name: str | None) -> Environment:
        """The environment called ``name`` (the default one when ``None``)."""
        known = ", ".join(sorted(self.environments)) or "none"
        if name is None and self.default_environment not in self.environments:
            raise FatalError(
                f"no --env given, and the default environment {self.default_environment!r} is "
                "not in [tool.migrail.environments]",
                hint=f"name one with --env ({known}), or set [tool.migrail] default_environment",
            )
        name = name or self.default_environment
        try:
            return self.environments[name]
        except KeyError:
            raise FatalError(
                f"unknown environment {name!r}",
                hint=f"environments in [tool.migrail.environments]: {known}",
            ) from None


def generate_command(root: Path) -> str:
    """How this project writes its next revision, for hints: its own nox session where its
    noxfile has one, else the command itself."""
    import re

    noxfile = root / "noxfile.py"
    text = noxfile.read_text(errors="replace") if noxfile.is_file() else ""
    if re.search(r"""def generate\s*\(|name\s*=\s*["']generate["']""", text):
        return "nox -s generate -- NAME"
    return "migrail generate NAME"


def find_pyproject(start: Path) -> Path:
    """The nearest pyproject.toml with a ``[tool.migrail]`` table, from ``start`` upwards."""
    nearest = None
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and "migrail" in _tool_table(candidate):
            return candidate
        nearest = nearest or (candidate if candidate.is_file() else None)
    raise FatalError(
        f"{nearest} has no [tool.migrail] table"
        if nearest is not None
        else f"no pyproject.toml with a [tool.migrail] table in {start} or above",
        hint="add one: migrail init (it finds your Alembic environment, or makes one), or "
        "pass --project DIR to name a project elsewhere",
    )


def load_config(project: Path | None = None) -> Config:
    """Read the project's configuration and load its ``.env`` file into the environment."""
    if project is not None and not project.is_dir():
        raise FatalError(
            f"--project {project}: "
            + ("it is a file, not a folder" if project.exists() else "no such folder"),
            hint="name the folder that holds the project's pyproject.toml",
        )
    pyproject = find_pyproject((project or Path.cwd()).resolve())
    root = pyproject.parent
    table = _tool_table(pyproject)["migrail"]
    if not isinstance(table, Mapping):
        raise FatalError("[tool.migrail] in pyproject.toml must be a table")
    _reject_unknown(table, _KNOWN_KEYS, "[tool.migrail]")
    load_migrail_settings(root)
    raw_naming = _text(table, "revision_naming", "sequence")
    naming = _NAMINGS.get(raw_naming)
    if naming is None:
        raise FatalError(
            "[tool.migrail] revision_naming must be 'sequence', 'timestamp' or 'alembic', "
            f"not {raw_naming!r}"
        )
    config = Config(
        root=root,
        migrations_dir=root / _text(table, "migrations", "migrations"),
        metadata=_text(table, "metadata", "") or None,
        flask_app=_text(table, "flask_app", "") or None,
        revision_naming=naming,
        default_environment=_text(table, "default_environment", "development"),
        environments=_environments(
            table.get("environments", DEFAULT_ENVIRONMENTS), configured="environments" in table
        ),
        lock_timeout=_duration(table, "lock_timeout", "5s"),
        statement_timeout=_duration(table, "statement_timeout", "30min"),
        lint=_lint_settings(root, table.get("lint", {})),
        locks=_lock_settings(table.get("locks", {})),
        four_eyes=_flag(table, "four_eyes"),
        lock_retries=_count(table, "lock_retries", 3),
        base_branch=_text(table, "base_branch", "") or None,
    )
    if "default_environment" in table:  # named on purpose: it must exist
        config.environment(None)
    return config


def env_file_values(root: Path, environment: str | None = None) -> dict[str, str]:
    """Variables from ``.env.<environment>`` and ``.env`` in ``root``, the first file winning.

    Nothing is put into the process environment: a URL read for one environment must not leak
    into another, and variables already set always win over the files. python-dotenv is
    imported only where there is a file to read: most runs have none.
    """
    values: dict[str, str] = {}
    for name in ([f".env.{environment}"] if environment else []) + [".env"]:
        if (root / name).is_file():
            from dotenv import dotenv_values

            text = files.read_text(root / name)
            for key, value in dotenv_values(stream=io.StringIO(text)).items():
                if value is not None:
                    values.setdefault(key, value)
    return values


def load_migrail_settings(root: Path) -> None:
    """Export the ``MIGRAIL_*`` settings of ``.env`` (e.g. MIGRAIL_ADMIN_URL) that are not set."""
    for key, value in env_file_values(root).items():
        if key.startswith("MIGRAIL_"):
            os.environ.setdefault(key, value)


def resolve_environment(config: Config, name: str | None) -> tuple[Environment, URL]:
    """The environment called ``name`` (default: the default one) and its parsed URL.

    The URL comes from the environment's variable, else from ``.env.<name>``, else ``.env``.
    """
    from migrail.core.urls import parse_url

    environment = config.environment(name)
    variable = environment.url_env
    raw = os.environ.get(variable) or env_file_values(config.root, environment.name).get(variable)
    if not (raw or "").strip():
        raise FatalError(
            f"{variable} is not set (the URL of environment {environment.name!r})",
            hint=f"export {variable}=postgresql://USER:PASSWORD@HOST:5432/DATABASE "
            f"or put it in .env",
        )
    return environment, parse_url(str(raw), source=variable)


def _environments(table: object, configured: bool = True) -> dict[str, Environment]:
    if not isinstance(table, Mapping):
        raise FatalError("[tool.migrail.environments] must be a table of environments")
    environments = {}
    for name, settings in table.items():
        where = f"[tool.migrail.environments.{name}]"
        if not isinstance(settings, Mapping) or not isinstance(settings.get("url_env"), str):
            raise FatalError(f"{where} needs url_env, the name of the variable holding its URL")
        _reject_unknown(settings, _KNOWN_ENV_KEYS, where)
        protected = settings.get("protected", False)
        if not isinstance(protected, bool):
            raise FatalError(f"{where} protected must be true or false, not {protected!r}")
        environments[name] = Environment(name, settings["url_env"], protected, configured)
    return environments


def _lint_settings(root: Path, table: object) -> LintSettings:
    where = "[tool.migrail.lint]"
    if not isinstance(table, Mapping):
        raise FatalError(f"{where} must be a table")
    _reject_unknown(table, _KNOWN_LINT_KEYS, where)
    squawk_config = _text(table, "squawk_config", "", where) or None
    if squawk_config is None and (root / ".squawk.toml").is_file():
        squawk_config = ".squawk.toml"
    return LintSettings(
        pg_version=_text(table, "pg_version", "", where) or None,
        exclude=_names(table, "exclude", (), where),
        warn=_names(table, "warn", DEFAULT_WARN, where),
        squawk_config=root / squawk_config if squawk_config else None,
    )


def _lock_settings(table: object) -> dict[str, str]:
    where = "[tool.migrail.locks]"
    if not isinstance(table, Mapping):
        raise FatalError(f"{where} must be a table")
    _reject_unknown(table, set(LOCK_CLASSES), where)
    found = dict(LOCK_CLASSES)
    for name in LOCK_CLASSES:
        value = _text(table, name, LOCK_CLASSES[name], where)
        if value not in LOCK_SEVERITIES:
            raise FatalError(
                f"{where} {name} must be one of {', '.join(LOCK_SEVERITIES)}, not {value!r}"
            )
        found[name] = value
    return found


def _flag(table: Mapping[str, Any], key: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise FatalError(f"[tool.migrail] {key} must be true or false, not {value!r}")
    return value


def _count(table: Mapping[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 20:
        raise FatalError(f"[tool.migrail] {key} must be a whole number from 0 to 20, not {value!r}")
    return value


def _text(table: Mapping[str, Any], key: str, default: str, where: str = "[tool.migrail]") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise FatalError(f"{where} {key} must be a string, not {value!r}")
    return value


def _names(
    table: Mapping[str, Any], key: str, default: tuple[str, ...], where: str
) -> tuple[str, ...]:
    value = table.get(key, default)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise FatalError(f"{where} {key} must be a list of rule names, not {value!r}")
    return tuple(value)


def _duration(table: Mapping[str, Any], key: str, default: str) -> str:
    value = _text(table, key, default).strip()
    length = durations.milliseconds(value)
    if length is None:
        raise FatalError(
            f"[tool.migrail] {key} must be a PostgreSQL duration such as '5s' or '30min', "
            f"not {value!r}"
        )
    if length > durations.MAX_MILLISECONDS:
        raise FatalError(
            f"[tool.migrail] {key} is longer than PostgreSQL allows (at most "
            f"{durations.MAX_MILLISECONDS}ms, about 24 days), not {value!r}",
            hint=f"give it in seconds or minutes, e.g. {default!r}; '0' turns it off",
        )
    return value


def _reject_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise FatalError(
            f"unknown key(s) in {where}: {', '.join(unknown)}",
            hint=f"known keys: {', '.join(sorted(known))}",
        )


def _tool_table(path: Path) -> Mapping[str, Any]:
    """The ``[tool]`` table of a pyproject.toml (empty when it has none)."""
    tool = _read_toml(path).get("tool", {})
    if not isinstance(tool, Mapping):
        raise FatalError(
            f"{path}: tool must be a table (the [tool.NAME] sections), not {tool!r}",
            hint="remove the line tool = ...; migrail's settings go in [tool.migrail]",
        )
    return tool


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(files.read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise FatalError(f"{path} is not valid TOML: {exc}") from exc

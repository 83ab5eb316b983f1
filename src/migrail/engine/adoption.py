"""``migrail init``: a project made ready for migrail, keeping the Alembic environment it has.

Every step is idempotent (a file is written only when its content would change), so a second
run changes nothing; what was done comes back as data for the command to print.
"""

from __future__ import annotations

import configparser
import difflib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.core.errors import FatalError
from migrail.engine import adopt, flask_project

if TYPE_CHECKING:
    from migrail.core.config import Config

BACKUP_SUFFIX = ".migrail-bak"
MIGRAIL_ENV_PY = '''"""Alembic environment: migrail passes the connection and the models."""

from migrail.alembic_env import run_migrations

run_migrations()
'''


@dataclass
class Adoption:
    """What ``init`` did, in order, and the diff of env.py when it edited it."""

    done: list[str] = field(default_factory=list)
    env_diff: str = ""
    notes: list[str] = field(default_factory=list)


def find_script_location(root: Path) -> str | None:
    """The Alembic environment's folder as ``alembic.ini`` or ``[tool.alembic]`` names it,
    relative to ``root``; ``None`` when the project has no Alembic configuration."""
    raw: str | None = None
    ini = root / "alembic.ini"
    if ini.is_file():
        parser = configparser.ConfigParser(defaults={"here": str(root)})
        try:
            parser.read(ini, encoding="utf-8")
            raw = parser.get("alembic", "script_location", fallback=None)
        except configparser.Error as exc:
            raise FatalError(f"alembic.ini cannot be read: {exc}") from None
    if raw is None:
        tool: Any = _pyproject(root).get("tool", {})
        value = tool.get("alembic", {}).get("script_location")
        raw = value.replace("%(here)s", str(root)) if isinstance(value, str) else None
    if raw is None:
        return None
    if ":" in raw and not Path(raw).is_absolute() and not (root / raw).exists():
        raise FatalError(
            f"script_location {raw!r} names a package resource",
            hint="set [tool.migrail] migrations to the folder's path by hand",
        )
    location = Path(raw) if Path(raw).is_absolute() else root / raw
    try:
        return str(location.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(location)


def _pyproject(root: Path) -> dict[str, object]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FatalError(f"{path} cannot be read: {exc}") from None


def adopt_project(root: Path) -> Adoption:
    """Make ``root`` a migrail project; its files are written, the database is not touched."""
    result = Adoption()
    location = find_script_location(root) or flask_project.find_migrations(root)
    migrations = location or "migrations"
    env_py = root / migrations / "env.py"
    created = location is None and not env_py.exists()
    if location is None:
        _scaffold(root / migrations, result, root)
    if not env_py.is_file():
        raise FatalError(
            f"{migrations}/env.py does not exist: script_location names no Alembic environment",
            hint="check script_location in alembic.ini (or [tool.alembic])",
        )
    source = env_py.read_text()
    if flask_project.migrates_several(source):
        raise FatalError(
            f"{migrations}/env.py migrates several databases in one run "
            "(run_migrations(engine_name=...): a multidb template, such as what "
            "`flask db init --multidb` writes for SQLALCHEMY_BINDS)",
            hint="migrail proves and migrates one database per history: give each database "
            "a single-database migrations folder (`flask db init`), or keep this one on `flask db`",
        )
    metadata = adopt.target_metadata(source)
    app = None
    tool: Any = _pyproject(root).get("tool", {})
    if flask_project.reads_current_app(source) and "migrail" not in tool:
        app, found, guessed = flask_project.find_settings(root)
        metadata = metadata or guessed
        result.notes.append(f"env.py reads current_app: it will run in the app {app} ({found})")
    naming = guess_naming(root / migrations / "versions")
    _write_tool_migrail(root, migrations, metadata, naming, result, app)
    if created:  # so that the plain alembic command finds the new environment too
        _append_table(root, f"[tool.alembic]\nscript_location = {_toml(migrations)}", result)
    _adopt_env_py(env_py, root, result)
    return result


def _append_table(root: Path, table: str, result: Adoption) -> None:
    path = root / "pyproject.toml"
    existing = path.read_text() if path.is_file() else ""
    separator = "" if not existing else ("\n" if existing.endswith("\n") else "\n\n")
    _replace(path, existing + separator + table + "\n")
    result.done.append(f"wrote {table.splitlines()[0]} in pyproject.toml")


def _scaffold(migrations: Path, result: Adoption, root: Path) -> None:
    """A new Alembic environment of migrail's: its env.py, the revision template, versions/."""
    template = resources.files("alembic").joinpath("templates/generic/script.py.mako")
    for path, text in (
        (migrations / "env.py", MIGRAIL_ENV_PY),
        (migrations / "script.py.mako", template.read_text()),
    ):
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            result.done.append(f"created {path.relative_to(root)}")
    versions = migrations / "versions"
    if not versions.is_dir():
        versions.mkdir(parents=True)
        result.done.append(f"created {versions.relative_to(root)}/")


def guess_naming(versions: Path) -> str | None:
    """The ``revision_naming`` a history already follows: Alembic's random hex ids give
    ``"alembic"``, so that the next revision looks like its neighbours; numbers keep migrail's
    default (``None``)."""
    from migrail.history.graph import read_headers

    ids = [header.revision for header in read_headers(versions) if header.revision]
    if ids and not all(revision.replace("_", "").isdigit() for revision in ids):
        return "alembic"
    return None


def _write_tool_migrail(
    root: Path,
    migrations: str,
    metadata: str | None,
    naming: str | None,
    result: Adoption,
    flask_app: str | None = None,
) -> None:
    """Append ``[tool.migrail]`` to pyproject.toml (created when absent), unless it is there."""
    path = root / "pyproject.toml"
    tool: Any = _pyproject(root).get("tool", {})
    if "migrail" in tool:
        return
    lines = ["[tool.migrail]", f"migrations = {_toml(migrations)}"]
    if flask_app:
        lines.append(f"flask_app = {_toml(flask_app)}   # env.py runs in its app context")
    if metadata:
        lines.append(f"metadata = {_toml(metadata)}")
    else:
        lines.append(
            '# metadata = "package.models:metadata"   # the models, for generate and check'
        )
        result.notes.append(
            "no `target_metadata = <module>.<attribute>` found in env.py: set [tool.migrail] "
            "metadata to compare the models"
        )
    if naming:
        lines.append(f"revision_naming = {_toml(naming)}   # ids as the history has them")
    existing = path.read_text() if path.is_file() else ""
    separator = "" if not existing else ("\n" if existing.endswith("\n") else "\n\n")
    _replace(path, existing + separator + "\n".join(lines) + "\n")
    result.done.append(f"{'wrote' if existing else 'created'} [tool.migrail] in pyproject.toml")


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _adopt_env_py(env_py: Path, root: Path, result: Adoption) -> None:
    """The minimal edit (``adopt.adopted``), a backup of the original, and the diff shown."""
    source = env_py.read_text()
    try:
        edited = adopt.adopted(source)
    except adopt.NoRule as exc:
        raise FatalError(
            f"{env_py.relative_to(root)} connects in a way migrail cannot edit: {exc}",
            hint="make it use config.attributes['connection'] when given (Alembic's cookbook: "
            "'Sharing a Connection across one or more programmatic migration commands')",
        ) from None
    if edited is None:
        return
    backup = env_py.with_name(env_py.name + BACKUP_SUFFIX)
    if not backup.exists():
        backup.write_text(source)
    _replace(env_py, edited)
    name = str(env_py.relative_to(root))
    result.env_diff = "".join(
        difflib.unified_diff(
            source.splitlines(keepends=True), edited.splitlines(keepends=True), name, name
        )
    )
    result.done.append(
        f"edited {name} to use migrail's connection when given "
        f"(original kept in {backup.relative_to(root)})"
    )


def _replace(path: Path, text: str) -> None:
    """Write through a temporary file, so an interrupted run leaves the old file whole."""
    temporary = path.with_name(path.name + ".migrail-tmp")
    try:
        temporary.write_text(text)
        temporary.replace(path)
    except OSError as exc:
        from migrail.core.files import unwritable

        raise unwritable(path, exc) from None


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; True when written."""
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace(path, text)
    return True


def record_history(config: Config, result: Adoption) -> None:
    """``migrail.sum`` over every revision file, and the head's schema snapshot when models are
    configured (what ``migrail sum --update`` and ``migrail snapshot`` write), where absent."""
    from migrail.engine.executor import Executor
    from migrail.engine.models import load_metadata
    from migrail.history import sums
    from migrail.history.revision_files import by_key
    from migrail.history.revisions import check_versions_folder, short_name
    from migrail.history.snapshot import models_snapshot, snapshot_path
    from migrail.history.tree import DiskTree

    check_versions_folder(config)
    files = by_key(DiskTree().revisions(config.versions_dir), config.versions_dir)
    path = config.migrations_dir / sums.SUM_FILE
    # An existing record is kept: rewriting it would hide an edit of a released revision.
    if not path.exists() and write_if_changed(path, sums.render_sum(files)):
        result.done.append(f"recorded {len(files)} revision(s) in {config.shown(path)}")
    metadata = load_metadata(config)
    if metadata is None:
        return
    executor = Executor(config, metadata)
    head = executor.head
    if head is None:
        return
    path = snapshot_path(config, short_name(executor.script.get_revision(head)))
    if not path.exists() and write_if_changed(path, models_snapshot(config, metadata)):
        result.done.append(f"wrote the head's schema snapshot {config.shown(path)}")

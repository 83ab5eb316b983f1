"""What ``migrail init`` finds in a Flask-Migrate project: its migrations folder, its app, and
the Flask-SQLAlchemy models.

``flask db init`` puts ``alembic.ini`` inside the migrations folder (Flask-Migrate sets
``script_location`` in code), and its env.py reads ``current_app``. The app is looked for as
``flask`` looks for it, kept simple and said: ``FLASK_APP`` (the environment, ``.env``, then
``.flaskenv``), else a ``create_app`` factory or an ``app`` in ``app.py``, ``wsgi.py`` or a
package's ``__init__.py``.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any

from migrail.core.errors import FatalError
from migrail.engine.flask_app import HINT, SETTING, make_app, migrate_db

_APP_FILES = ("app.py", "wsgi.py")
_ENVS = (".env", ".flaskenv")


def reads_current_app(source: str) -> bool:
    """env.py is Flask-Migrate's: it imports ``current_app`` from ``flask``."""
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "flask"
        and any(alias.name == "current_app" for alias in node.names)
        for node in _nodes(source)
    )


def migrates_several(source: str) -> bool:
    """env.py runs the history once per database (``run_migrations(engine_name=...)``), as
    Flask-Migrate's multidb template (``flask db init --multidb``) does."""
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "run_migrations"
        and any(keyword.arg == "engine_name" for keyword in node.keywords)
        for node in _nodes(source)
    )


def _nodes(source: str) -> list[ast.AST]:
    """Every node of ``source``; none when it does not parse (Alembic will say why)."""
    try:
        return list(ast.walk(ast.parse(source)))
    except SyntaxError:
        return []


def find_settings(root: Path) -> tuple[str, str, str | None]:
    """The app's spec, where it was found, and the models' ``metadata`` guessed from the app's
    Flask-SQLAlchemy instance. The app is made here, so that one that cannot be is said now."""
    spec, found = find_app(root)
    db = migrate_db(make_app(root, spec), spec)
    return spec, found, metadata_of(db, root)


def find_migrations(root: Path) -> str | None:
    """The folder ``flask db init`` made: ``alembic.ini`` and a Flask-Migrate env.py inside it
    (``migrations`` first, then any other folder of the project's root)."""
    others = sorted(path for path in root.iterdir() if path.name != "migrations")
    for folder in [root / "migrations", *others]:
        env_py = folder / "env.py"
        if (
            (folder / "alembic.ini").is_file()
            and env_py.is_file()
            and reads_current_app(env_py.read_text())
        ):
            return folder.name
    return None


def find_app(root: Path) -> tuple[str, str]:
    """``module:attribute`` of the project's Flask app, and where that was found."""
    from dotenv import dotenv_values

    for value, source in (  # flask's own order: the environment, then .env, then .flaskenv
        (os.environ.get("FLASK_APP"), "FLASK_APP"),
        *((dotenv_values(root / name).get("FLASK_APP"), f"FLASK_APP in {name}") for name in _ENVS),
    ):
        if value:
            return _from_flask_app(root, value, source), source
    candidates = [root / name for name in _APP_FILES] + sorted(
        path / "__init__.py"
        for base in (root, root / "src")
        if base.is_dir()
        for path in base.iterdir()
        if (path / "__init__.py").is_file()
    )
    for path in candidates:
        attribute = _app_in(path)
        if attribute is not None:
            shown = path.relative_to(root)
            return f"{_module(root, path)}:{attribute}", f"{attribute} in {shown}"
    raise FatalError(
        "this is a Flask-Migrate project, and migrail found no Flask app to run its env.py in",
        hint=HINT,
    )


def _from_flask_app(root: Path, value: str, source: str) -> str:
    """FLASK_APP as ``flask`` reads it (``module``, ``module:name``, ``module:create_app()``,
    ``path/to/file.py``), as a spec; a factory given arguments cannot be called here."""
    module, _, attribute = value.strip().partition(":")
    if attribute.endswith("()"):
        attribute = attribute[: -len("()")]
    if not attribute.isidentifier() and attribute:
        raise FatalError(
            f"{source} is {value!r}: migrail calls the app factory without arguments",
            hint=f"set {SETTING} to a factory (or app) that needs none",
        )
    if module.endswith(".py"):
        module = module[: -len(".py")].replace("/", ".").replace("\\", ".")
    if not attribute:
        path = next(
            (
                candidate
                for base in (root, root / "src")
                for candidate in (
                    base / (module.replace(".", "/") + ".py"),
                    base / module.replace(".", "/") / "__init__.py",
                )
                if candidate.is_file()
            ),
            None,
        )
        found = _app_in(path) if path is not None else None
        if found is None:
            raise FatalError(f"{source} is {value!r}: no create_app or app found in it", hint=HINT)
        attribute = found
    return f"{module}:{attribute}"


def _app_in(path: Path) -> str | None:
    """``create_app`` (a factory) or ``app``, defined at the top level of the file."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return next((name for name in ("create_app", "make_app", "app") if name in names), None)


def _module(root: Path, path: Path) -> str:
    base = root / "src" if path.is_relative_to(root / "src") else root
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def metadata_of(db: Any, root: Path) -> str | None:
    """``module:name.metadata`` for the Flask-SQLAlchemy instance ``db``, from the project's
    own modules that hold it: a models module first (importing it imports the models), else
    the one closest to the top."""
    project = root.resolve()
    found = [
        (name, attribute)
        for name, module in list(sys.modules.items())
        if _inside(module, project)
        for attribute, value in list(vars(module).items())
        if value is db and attribute.isidentifier()
    ]
    if not found:
        return None
    name, attribute = min(
        found,
        key=lambda item: (
            not item[0].rpartition(".")[2].startswith("model"),
            item[1] != "db",
            item[0].count("."),
            item[0],
        ),
    )
    return f"{name}:{attribute}.metadata"


def _inside(module: object, project: Path) -> bool:
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or "site-packages" in file:
        return False
    return Path(file).resolve().is_relative_to(project)

"""A Flask-Migrate project's Flask app: made once, and its application context around every run
of the project's env.py.

Flask-Migrate's env.py (what ``flask db init`` writes) reads ``current_app`` as it is imported:
the Flask-SQLAlchemy instance, its URL and ``configure_args``. Outside ``flask db`` it fails with
"Working outside of application context". With ``[tool.migrail] flask_app`` set, migrail makes
the app as ``flask`` does (a factory is called without arguments), once per process, and pushes
its application context while env.py runs. The app's own engine is never connected: env.py,
edited by ``migrail init``, takes migrail's connection, and the app's URL is only read.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from migrail.core.errors import FatalError
from migrail.engine.models import importable
from migrail.engine.usercode import located, user_code

if TYPE_CHECKING:
    from pathlib import Path


SETTING = "[tool.migrail] flask_app"
HINT = (
    f'set {SETTING} in pyproject.toml to your app factory or app, e.g. "yourapp:create_app" '
    "(`migrail init` also reads FLASK_APP: the environment, .env, .flaskenv)"
)

# (project root, spec) -> the module the app came from, and the app: made again only when that
# module was imported afresh (a staged copy of the project, say).
_made: dict[tuple[str, str], tuple[ModuleType, Any]] = {}


def make_app(root: Path, spec: str) -> Any:
    """The Flask app ``spec`` names: ``module:factory`` (called without arguments) or
    ``module:app``. Every failure says which setting to change, never a traceback."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute.isidentifier():
        raise FatalError(
            f"{SETTING} must look like 'package:create_app' or 'module:app', not {spec!r}",
            hint=HINT,
        )
    key = (str(root), spec)
    if key in _made and _made[key][0] is sys.modules.get(module_name):
        return _made[key][1]
    importable(root)
    try:
        with user_code(root, may_connect=True), _flask_dotenv(root):  # the application's
            module = importlib.import_module(module_name)
            found = getattr(module, attribute, None)
            app = found() if callable(found) and not is_app(found) else found
    except ImportError as exc:
        raise FatalError(
            f"cannot import {module_name!r} to make the Flask app ({SETTING} = {spec!r}): {exc}",
            hint=HINT,
        ) from None
    except Exception as exc:
        where = located(traceback.extract_tb(exc.__traceback__), root)
        raise FatalError(
            f"making the Flask app {spec!r} ({SETTING}) failed: {type(exc).__name__}: {exc}"
            + (f" {where}" if where else ""),
            hint="migrail makes the app as `flask db` does: give the factory what it needs "
            f"(its environment variables), or point {SETTING} at an app that is made as is",
        ) from None
    if found is None:
        raise FatalError(f"{module_name} has no {attribute!r} ({SETTING} = {spec!r})", hint=HINT)
    if not is_app(app):
        raise FatalError(
            f"{spec} ({SETTING}) gave a {type(app).__name__}, not a Flask app", hint=HINT
        )
    _refuse_own_engines(app)
    _made[key] = (module, app)
    return app


@contextlib.contextmanager
def _flask_dotenv(root: Path) -> Iterator[None]:
    """While the app is made, the variables ``flask`` would load for it: ``.env``, then
    ``.flaskenv``, neither over what is set. Only then: migrail reads its own URLs from these
    files per environment, and must not find one exported by the app's making."""
    from dotenv import dotenv_values

    before = dict(os.environ)
    for name in (".env", ".flaskenv"):
        if (root / name).is_file():
            for key, value in dotenv_values(root / name).items():
                if value is not None:
                    os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]


class AppEngineUsed(RuntimeError):
    """The app's own engine was about to connect, in a migrail run: to the app's configured
    database (maybe a real one), not the database migrail locked and set up."""


def _refused(*_: Any) -> None:
    raise AppEngineUsed(
        "the Flask app's own engine (its SQLALCHEMY_DATABASE_URI) was asked to connect: under "
        "migrail, revisions run on migrail's connection only; use op.get_bind() (or "
        "Session(bind=op.get_bind())) rather than db.session or db.engine"
    )


def _refuse_own_engines(app: Any) -> None:
    """Flask-SQLAlchemy's engines, closed and made to refuse any new connection in this
    process: env.py only reads the app's URL, and a revision that reaches for ``db.session``
    must fail rather than change the app's database behind migrail's back."""
    from sqlalchemy import event

    state = app.extensions.get("migrate")
    with app.app_context():
        engines = getattr(getattr(state, "db", None), "engines", None)
        for engine in dict(engines or {}).values():
            engine.dispose()  # a connection the factory itself made is not reused either
            if not event.contains(engine, "do_connect", _refused):
                event.listen(engine, "do_connect", _refused)


def is_app(value: object) -> bool:
    """A Flask app (duck-typed: migrail itself does not depend on Flask)."""
    return callable(getattr(value, "app_context", None)) and isinstance(
        getattr(value, "extensions", None), dict
    )


def migrate_db(app: Any, spec: str) -> Any:
    """The Flask-SQLAlchemy instance the app registered with Flask-Migrate (what env.py reads
    as ``current_app.extensions['migrate'].db``)."""
    state = app.extensions.get("migrate")
    if state is None or getattr(state, "db", None) is None:
        raise FatalError(
            f"the Flask app {spec!r} does not register Flask-Migrate, which its env.py reads",
            hint="call Migrate(app, db) (or migrate.init_app(app, db)) in the app factory",
        )
    return state.db

"""A Flask-Migrate project, made the way its developers made it: an app factory with
Flask-SQLAlchemy and Flask-Migrate, then the real ``flask db init`` and ``flask db migrate``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

FLASK = Path(sys.executable).parent / "flask"
URL_VARIABLE = "SHOP_DATABASE_URL"  # where the app reads its own database from

APP = f"""\
import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["{URL_VARIABLE}"]
    db.init_app(app)
    migrate.init_app(app, db, compare_type=True)
    from shop import models  # noqa: F401

    return app
"""

MODELS = """\
from shop import db


class Item(db.Model):
    __tablename__ = "items"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.Text, nullable=False)
"""

PRICE = "    price = db.Column(db.Integer, nullable=True)\n"


def address(url: URL) -> str:
    """``url`` as the app's configuration holds it (psycopg 3, the driver installed here)."""
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def flask(project: Path, app_url: URL, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``flask`` command in ``project``, its app on the database at ``app_url``."""
    return subprocess.run(
        [str(FLASK), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(project), URL_VARIABLE: address(app_url)},
        check=False,
    )


def flask_project(root: Path, app_url: URL, *init_args: str, wsgi: bool = False) -> Path:
    """A ``shop`` app (its factory named by ``.flaskenv``; with ``wsgi``, an ``app`` made in
    ``wsgi.py`` beside the package), ``flask db init`` (with ``init_args``, ``--multidb`` say),
    and its first revision from ``flask db migrate`` against the database at ``app_url``."""
    package = root / "shop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(APP)
    (package / "models.py").write_text(MODELS)
    if wsgi:
        (root / "wsgi.py").write_text("from shop import create_app\n\napp = create_app()\n")
    (root / ".flaskenv").write_text(f"FLASK_APP={'wsgi.py' if wsgi else 'shop:create_app'}\n")
    for args in (("db", "init", *init_args), ("db", "migrate", "-m", "create items")):
        done = flask(root, app_url, *args)
        assert done.returncode == 0, done.stderr
    return root

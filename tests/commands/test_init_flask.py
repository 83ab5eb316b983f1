"""``migrail init`` on Flask-Migrate projects made with the real ``flask db init``, then migrail
and ``flask db`` on them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.files import tree
from testing.flask_projects import MODELS, PRICE, URL_VARIABLE, address, flask, flask_project
from testing.postgres import columns, database_names, version

NEVER_CREATED = "shop_app_database_never_created"
# Flask-Migrate's env.py tries Flask-SQLAlchemy 2's get_engine() first, which 3.1 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the project is made; the app's modules are forgotten afterwards."""
    monkeypatch.delenv("FLASK_APP", raising=False)  # the project's .flaskenv names it
    yield tmp_path
    _forget_app()
    sys.path[:] = [entry for entry in sys.path if not entry.startswith(str(tmp_path))]


def _forget_app() -> None:
    """As in a new process: the next command imports the app and its models afresh."""
    for name in [name for name in sys.modules if name.partition(".")[0] in ("shop", "wsgi")]:
        del sys.modules[name]


def _head(project: Path, app_url: URL) -> str:
    done = flask(project, app_url, "db", "heads")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


def test_init_adopts_a_flask_migrate_project_and_flask_db_still_works(
    home: Path,
    database_url: URL,
    pg_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """alembic.ini inside migrations/, an env.py that reads current_app as it is imported: run
    in the app's context on migrail's databases, never on the app's own."""
    project = flask_project(home / "shop_app", database_url)
    env_py = project / "migrations" / "env.py"
    original_env = env_py.read_text()
    monkeypatch.chdir(project)
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    # Read while the app is made, as `flask` reads it; never exported to migrail's process.
    never = address(database_url.set(database=NEVER_CREATED))
    (project / ".env").write_text(f"{URL_VARIABLE}={never}\n")

    assert main(["init"]) == 0
    err = capsys.readouterr().err
    assert (
        "+    with _migrail_connection(connectable.connect) as connection:  # migrail-adopt" in err
    )
    assert (
        "env.py reads current_app: it will run in the app shop:create_app (FLASK_APP in .flaskenv)"
        in err
    )
    assert "recorded 1 revision(s) in migrations/migrail.sum" in err
    assert (project / "migrations" / "env.py.migrail-bak").read_text() == original_env
    assert (project / "pyproject.toml").read_text() == (
        '[tool.migrail]\nmigrations = "migrations"\n'
        'flask_app = "shop:create_app"   # env.py runs in its app context\n'
        'metadata = "shop.models:db.metadata"\n'
        'revision_naming = "alembic"   # ids as the history has them\n'
    )
    assert list((project / "migrations" / "schema").glob("*.sql"))

    before = tree(project)
    assert main(["init"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert tree(project) == before

    with pg_server.database() as development:
        monkeypatch.setenv("DATABASE_URL", development.render_as_string(hide_password=False))
        assert main(["check"]) == 0, capsys.readouterr().err
        assert main(["migrate-staging"]) == 0, capsys.readouterr().err
        capsys.readouterr()

        (project / "shop" / "models.py").write_text(MODELS + PRICE)
        _forget_app()
        assert main(["generate", "add_price"]) == 0, capsys.readouterr().err
        [added] = (project / "migrations" / "versions").glob("*_add_price.py")
        # In the project's form: Flask-Migrate's configure_args (render_as_batch) are kept.
        assert "batch_op.add_column(sa.Column('price', sa.Integer(), nullable=True))" in (
            added.read_text()
        )
        assert main(["migrate"]) == 0, capsys.readouterr().err
        head = _head(project, database_url)
        assert version(development) == [head]
        assert "price" in columns(development, "items")
        assert main(["check"]) == 0, capsys.readouterr().err

    assert NEVER_CREATED not in database_names(pg_server.admin_url)
    assert URL_VARIABLE not in os.environ
    upgrade = flask(project, database_url, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    current = flask(project, database_url, "db", "current")
    assert current.returncode == 0, current.stderr
    assert f"{head} (head)" in current.stdout
    assert version(database_url) == [head]


def test_the_commit_hooks_run_a_flask_app_made_in_wsgi_py(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Staged, the history is checked in a copy of the project: the module that makes the app
    (``wsgi.py``, beside the models' package) is in it, and env.py runs in that app."""
    import migrail as migrail_package
    from testing.git import commit_all, git

    project = flask_project(home / "shop_app", database_url, wsgi=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv(URL_VARIABLE, address(database_url.set(database=NEVER_CREATED)))
    assert main(["init"]) == 0
    assert 'flask_app = "wsgi:app"' in (project / "pyproject.toml").read_text()
    commit_all(project, "adopted")
    git(project, "checkout", "-q", "-b", "feature")
    (project / "shop" / "models.py").write_text(MODELS + PRICE)
    _forget_app()
    assert main(["generate", "add_price"]) == 0, capsys.readouterr().err
    git(project, "add", "-A")

    migrail = Path(sys.executable).parent / "migrail"  # not python -m: that adds the folder
    for check in ("single-head", "immutable", "schema-sync", "lint"):  # .pre-commit-hooks.yaml
        hook = subprocess.run(  # as pre-commit runs each: a new process, the project not on
            [str(migrail), "check", "--staged", "--only", check],  # its path
            cwd=project,
            # Only the migrail under test on the path.
            env={**os.environ, "PYTHONPATH": str(Path(migrail_package.__file__).parents[1])},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert hook.returncode == 0, hook.stderr
        assert "the staged history is sound" in hook.stderr


def test_init_refuses_flask_migrates_multidb_template(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = flask_project(home / "shop_app", database_url, "--multidb")
    monkeypatch.chdir(project)
    monkeypatch.setenv(URL_VARIABLE, address(database_url))
    before = tree(project)

    assert main(["init"]) == 2
    err = capsys.readouterr().err
    assert (
        "error: migrations/env.py migrates several databases in one run "
        "(run_migrations(engine_name=...): a multidb template, such as what "
        "`flask db init --multidb` writes for SQLALCHEMY_BINDS)"
    ) in " ".join(err.split())
    assert "migrail proves and migrates one database per history" in err
    assert "Traceback" not in err
    assert tree(project) == before


def test_init_says_what_to_set_when_the_flask_app_cannot_be_made(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found without FLASK_APP (a create_app in the package), the factory fails: said, with the
    line, and nothing is written."""
    project = flask_project(home / "shop_app", database_url)
    (project / ".flaskenv").unlink()
    monkeypatch.chdir(project)
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    before = tree(project)

    assert main(["init"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "error: making the Flask app 'shop:create_app' ([tool.migrail] flask_app) failed: "
        "KeyError: 'SHOP_DATABASE_URL' at shop/__init__.py:13 "
        "hint: migrail makes the app as `flask db` does: give the factory what it needs "
        "(its environment variables)"
    ) in err
    assert "Traceback" not in err
    assert tree(project) == before


def test_init_says_what_to_set_when_no_flask_app_is_found(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = flask_project(home / "shop_app", database_url)
    (project / ".flaskenv").unlink()
    package = project / "shop" / "__init__.py"
    package.write_text(package.read_text().replace("def create_app(", "def build("))
    monkeypatch.chdir(project)
    before = tree(project)

    assert main(["init"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "error: this is a Flask-Migrate project, and migrail found no Flask app to run its "
        "env.py in"
    ) in err
    assert (
        "hint: set [tool.migrail] flask_app in pyproject.toml to your app factory or app, e.g. "
        '"yourapp:create_app"'
    ) in err
    assert "Traceback" not in err
    assert tree(project) == before


def test_a_revision_that_uses_the_apps_own_session_fails_and_names_op_get_bind(
    home: Path,
    database_url: URL,
    pg_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``db.session`` in a revision would reach the app's configured database, not the one
    migrail locked: refused, and rolled back."""
    project = flask_project(home / "shop_app", database_url)
    never = database_url.set(database=NEVER_CREATED)
    monkeypatch.chdir(project)
    monkeypatch.setenv(URL_VARIABLE, address(never))
    assert main(["init"]) == 0
    done = flask(project, never, "db", "revision", "-m", "upper names")
    assert done.returncode == 0, done.stderr
    [path] = (project / "migrations" / "versions").glob("*_upper_names.py")
    path.write_text(
        path.read_text().replace(
            "def upgrade():\n    pass",
            "def upgrade():\n    from shop import db\n\n"
            "    db.session.execute(sa.text('UPDATE items SET name = upper(name)'))\n"
            "    db.session.commit()",
        )
    )
    capsys.readouterr()

    with pg_server.database() as development:
        monkeypatch.setenv("DATABASE_URL", development.render_as_string(hide_password=False))
        assert main(["migrate"]) == 1
        err = " ".join(capsys.readouterr().err.split())
        assert (
            "the Flask app's own engine (its SQLALCHEMY_DATABASE_URI) was asked to connect: "
            "under migrail, revisions run on migrail's connection only; use op.get_bind()"
        ) in err
        [first] = (project / "migrations" / "versions").glob("*_create_items.py")
        assert version(development) == [first.name.partition("_")[0]]
    assert NEVER_CREATED not in database_names(pg_server.admin_url)


def test_a_planned_downgrade_renders_through_the_adopted_env_py(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``plan --to`` renders the downgrade offline with the project's env.py: in the app's
    context, each revision's SQL found, and Alembic's log lines kept out of the output."""
    project = flask_project(home / "shop_app", database_url)
    monkeypatch.chdir(project)
    monkeypatch.setenv(URL_VARIABLE, address(database_url.set(database=NEVER_CREATED)))
    assert main(["init"]) == 0
    upgrade = flask(project, database_url, "db", "upgrade")  # the database, as the app made it
    assert upgrade.returncode == 0, upgrade.stderr
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", database_url.render_as_string())
    capsys.readouterr()

    assert main(["plan", "--env", "production", "--to", "base"]) == 0
    out, err = capsys.readouterr()
    assert "INFO" not in out + err
    [revision] = (project / "migrations" / "versions").glob("*_create_items.py")
    assert f"planned undoing {revision.stem} for production" in err
    assert "DROP TABLE items;" in (project / "plan.md").read_text()

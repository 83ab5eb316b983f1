"""``migrail init`` on projects made with plain Alembic, then migrail and alembic on them."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from testing.alembic_projects import alembic, alembic_project
from testing.files import tree
from testing.postgres import columns, query, run_sql, version


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the project is made; its models module is forgotten afterwards."""
    yield tmp_path
    sys.modules.pop("app_models", None)
    sys.path[:] = [entry for entry in sys.path if not entry.startswith(str(tmp_path))]


def _head(project: Path) -> str:
    done = alembic(project, "heads")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


def test_init_adopts_a_generic_alembic_project_and_alembic_still_works(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = alembic_project(home / "app", "generic", database_url)
    original_env = (project / "migrations" / "env.py").read_text()
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))

    assert main(["init"]) == 0
    err = capsys.readouterr().err
    assert "_migrail_connection(connectable.connect) as connection:  # migrail-adopt" in err
    assert "edited migrations/env.py" in err
    assert "recorded 2 revision(s) in migrations/migrail.sum" in err
    assert "migrail-schema-sync" in err
    assert (project / "migrations" / "env.py.migrail-bak").read_text() == original_env
    pyproject = (project / "pyproject.toml").read_text()
    assert pyproject == (
        '[tool.migrail]\nmigrations = "migrations"\nmetadata = "app_models:metadata"\n'
        'revision_naming = "alembic"   # ids as the history has them\n'
    )
    assert list((project / "migrations" / "schema").glob("*.sql"))

    before = tree(project)
    assert main(["init"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert tree(project) == before

    # legacy_audit is in the database, not in the models: include_object keeps it out.
    assert main(["check"]) == 0, capsys.readouterr().err
    assert main(["migrate-staging"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["migrate"]) == 0, capsys.readouterr().err
    head = _head(project)
    assert version(database_url) == [head]
    assert "legacy_audit" in {
        row[0] for row in query(database_url, "select tablename from pg_tables")
    }

    current = alembic(project, "current")
    assert current.returncode == 0, current.stderr
    assert head in current.stdout
    down = alembic(project, "downgrade", "-1")
    assert down.returncode == 0, down.stderr
    assert version(database_url) != [head]
    assert "name" not in columns(database_url, "accounts")
    capsys.readouterr()
    assert main(["migrate"]) == 0, capsys.readouterr().err
    assert version(database_url) == [head]


def test_init_reads_a_metadata_imported_as_target_metadata(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``from app_models import metadata as target_metadata``: no assignment, the same models."""
    project = alembic_project(home / "app", "generic", database_url)
    env_py = project / "migrations" / "env.py"
    source = env_py.read_text()
    assigned = "import app_models\n\ntarget_metadata = app_models.metadata\n"
    assert assigned in source
    env_py.write_text(
        source.replace(assigned, "from app_models import metadata as target_metadata\n")
    )
    monkeypatch.chdir(project)
    assert main(["init"]) == 0
    err = capsys.readouterr().err
    assert "no `target_metadata" not in err, err
    assert 'metadata = "app_models:metadata"\n' in (project / "pyproject.toml").read_text()


def test_init_adopts_an_async_alembic_project(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = alembic_project(home / "app", "async", database_url)
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))

    assert main(["init"]) == 0
    env_py = (project / "migrations" / "env.py").read_text()
    assert 'do_run_migrations(context.config.attributes.get("connection"))' in env_py
    before = tree(project)
    assert main(["init"]) == 0
    assert tree(project) == before
    capsys.readouterr()

    assert main(["check"]) == 0, capsys.readouterr().err
    assert main(["migrate"]) == 0, capsys.readouterr().err
    head = _head(project)
    assert version(database_url) == [head]
    current = alembic(project, "current")
    assert current.returncode == 0, current.stderr
    assert head in current.stdout
    down = alembic(project, "downgrade", "-1")
    assert down.returncode == 0, down.stderr
    assert "name" not in columns(database_url, "accounts")


def test_an_env_py_that_connects_by_itself_is_refused_before_it_runs(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = alembic_project(home / "app", "generic", database_url)
    (project / "pyproject.toml").write_text(
        '[tool.migrail]\nmigrations = "migrations"\nmetadata = "app_models:metadata"\n'
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))

    assert main(["migrate"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        "error: migrations/env.py opens its own database connection instead of using migrail's"
        in err
    )
    assert "migrail init" in err
    assert version(database_url) == []


def test_init_without_alembic_creates_migrails_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = home / "fresh"
    project.mkdir()
    monkeypatch.chdir(project)

    assert main(["init"]) == 0
    assert (
        "from migrail.alembic_env import run_migrations"
        in (project / "migrations" / "env.py").read_text()
    )
    assert (project / "migrations" / "script.py.mako").is_file()
    assert (project / "migrations" / "versions").is_dir()
    assert (
        (project / "pyproject.toml")
        .read_text()
        .startswith('[tool.migrail]\nmigrations = "migrations"\n')
    )
    before = tree(project)
    capsys.readouterr()
    assert main(["init"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert tree(project) == before


def test_generate_in_an_adopted_project_keeps_its_file_template_and_include_object(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = alembic_project(home / "app", "generic", database_url)
    monkeypatch.chdir(project)
    assert main(["init"]) == 0
    models = project / "app_models.py"
    email = 'Column("name", Text), Column("email", Text)'
    models.write_text(models.read_text().replace('Column("name", Text)', email))
    sys.modules.pop("app_models", None)  # as in a new process: init imported the models
    capsys.readouterr()

    assert main(["generate", "add_email"]) == 0, capsys.readouterr().err
    [written] = [p for p in (project / "migrations" / "versions").glob("*add_email.py")]
    # ids like its neighbours': Alembic's random hex, not migrail's 0002
    assert re.fullmatch(r"\d{4}_\d\d_\d\d_\d{4}-[0-9a-f]{12}_add_email\.py", written.name)
    assert 'revision_naming = "alembic"' in (project / "pyproject.toml").read_text()
    source = written.read_text()
    assert "op.add_column('accounts', sa.Column('email'" in source
    assert "legacy_audit" not in source


def test_init_reads_script_location_from_tool_alembic(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = home / "app"
    project.mkdir()
    done = alembic(project, "init", "-t", "pyproject", "db")
    assert done.returncode == 0, done.stderr
    assert alembic(project, "revision", "-m", "first").returncode == 0
    monkeypatch.chdir(project)

    assert main(["init"]) == 0
    err = capsys.readouterr().err
    assert "recorded 1 revision(s) in db/migrail.sum" in err
    pyproject = (project / "pyproject.toml").read_text()
    assert "[tool.alembic]" in pyproject
    assert '\n[tool.migrail]\nmigrations = "db"\n' in pyproject
    assert "# migrail-adopt" in (project / "db" / "env.py").read_text()
    assert main(["check", "--only", "single-head,immutable"]) == 0, capsys.readouterr().err


def test_an_adopted_env_py_keeps_its_version_table_schema(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = alembic_project(home / "app", "generic", database_url)
    env_py = project / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "include_object=include_object,",
            'include_object=include_object, version_table_schema="meta",',
        )
    )
    run_sql(database_url, "CREATE SCHEMA meta")
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["init"]) == 0
    capsys.readouterr()

    assert main(["migrate"]) == 0, capsys.readouterr().err
    head = _head(project)
    assert query(database_url, "SELECT version_num FROM meta.alembic_version") == [(head,)]
    assert main(["migrate"]) == 0
    assert "Up to date" in capsys.readouterr().err
    current = alembic(project, "current")
    assert head in current.stdout, current.stderr


def test_init_in_a_migrail_project_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its migrail.sum and snapshot are its record: an edited revision must stay visible."""
    revision = project / "migrations" / "versions" / "0001_create_tasks.py"
    revision.write_text(revision.read_text() + "\n# edited after release\n")
    (project / "migrations" / "schema").mkdir(exist_ok=True)
    (project / "migrations" / "schema" / "0001_create_tasks.sql").write_text("-- kept\n")
    before = tree(project)
    assert main(["init"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert tree(project) == before
    assert main(["check", "--only", "immutable"]) == 1


BARE_CONNECT = """
def run_migrations_online() -> None:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy."
    )
    connection = engine.connect()
    try:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.close()
"""


def test_an_env_py_that_closes_its_bare_connection_is_adopted_and_runs(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = alembic_project(home / "app", "generic", database_url)
    env_py = project / "migrations" / "env.py"
    source = env_py.read_text()
    start = source.index("def run_migrations_online")
    end = source.index("if context.is_offline_mode()")
    env_py.write_text(source[:start] + BARE_CONNECT.lstrip() + "\n\n" + source[end:])
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["init"]) == 0
    assert 'connection = context.config.attributes.get("connection") or engine.connect()' in (
        env_py.read_text()
    )
    capsys.readouterr()

    assert main(["migrate"]) == 0, capsys.readouterr().err
    assert version(database_url) == [_head(project)]
    assert query(database_url, "SELECT count(*) FROM migrail.history") == [(2,)]
    current = alembic(project, "current")
    assert _head(project) in current.stdout, current.stderr


def test_plain_alembic_works_on_a_project_init_created(
    home: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """migrail's own env.py, run by the alembic command: the development environment's URL,
    migrail's timeouts and lock; a protected environment refused."""
    project = home / "fresh"
    project.mkdir()
    monkeypatch.chdir(project)
    assert main(["init"]) == 0
    assert main(["generate", "--empty", "create_notes"]) == 0
    [revision] = (project / "migrations" / "versions").glob("*create_notes.py")
    text = revision.read_text()
    revision.write_text(
        re.sub(
            r"(def upgrade\(\) -> None:\n(?:    \"\"\".*\"\"\"\n)?)    pass",
            r'\1    op.execute("CREATE TABLE notes (id int)")',
            text,
        )
    )
    assert "CREATE TABLE notes" in revision.read_text()
    url = database_url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    upgraded = alembic(project, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert query(database_url, "SELECT to_regclass('notes') IS NOT NULL") == [(True,)]
    current = alembic(project, "current")
    assert current.returncode == 0 and "0001 (head)" in current.stdout, current.stderr
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", url)
    refused = alembic(project, "-x", "env=production", "downgrade", "base")
    assert refused.returncode != 0
    assert "FAILED: production is protected: it changes only through an approved plan" in (
        refused.stdout + refused.stderr
    )
    assert query(database_url, "SELECT to_regclass('notes') IS NOT NULL") == [(True,)]


def test_the_lint_hook_loads_an_adopted_env_py_that_imports_the_models(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Staged, the history is linted in a copy: the models module env.py imports is in it."""
    from testing.git import commit_all, git

    project = alembic_project(home / "app", "generic", database_url)
    monkeypatch.chdir(project)
    git(project, "init", "-q", "-b", "main")
    assert main(["init"]) == 0
    commit_all(project, "adopted")
    git(project, "checkout", "-q", "-b", "feature")
    from migrail.history.graph import heads, read_headers
    from testing.projects import write_revision

    [head] = heads(read_headers(project / "migrations" / "versions"))
    write_revision(
        project,
        "0f0f0f0f0f0f",
        "add_note",
        head.revision,
        "pass",
        file_name="2026_01_01_0000-0f0f0f0f0f0f_add_note.py",
    )
    git(project, "add", "-A")
    import os
    import subprocess

    migrail = Path(sys.executable).parent / "migrail"  # not python -m: that adds the folder
    hook = subprocess.run(  # as pre-commit runs it: a new process, the project not on its path
        [str(migrail), "check", "--staged", "--only", "lint"],
        cwd=project,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert hook.returncode == 0, hook.stderr
    assert "the staged history is sound" in hook.stderr


def test_drift_on_an_adopted_project_compares_as_its_env_py_does(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A table another service owns (left out by include_object) and the version table under
    the name env.py gives it are not drift; a column added by hand still is."""
    project = alembic_project(home / "app", "generic", database_url)
    env_py = project / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text()
        .replace(
            'return not (type_ == "table" and name == "legacy_audit")',
            'return not (type_ == "table" and name in ("legacy_audit", "external_cache"))',
        )
        .replace(
            "include_object=include_object,",
            'include_object=include_object, version_table="schema_versions",',
        )
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["init"]) == 0
    assert main(["migrate"]) == 0
    head = _head(project)
    assert query(database_url, "SELECT version_num FROM schema_versions") == [(head,)]
    run_sql(database_url, "CREATE TABLE external_cache (key text PRIMARY KEY)")
    capsys.readouterr()
    assert main(["drift"]) == 0, capsys.readouterr().err
    assert "[✓] development is exactly what " in capsys.readouterr().err

    run_sql(database_url, "ALTER TABLE accounts ADD COLUMN nickname text")
    assert main(["drift"]) == 1
    err = capsys.readouterr().err
    assert "- column accounts.nickname" in err
    assert "schema_versions" not in err and "external_cache" not in err


def test_the_helper_init_adds_goes_below_every_import(
    home: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `from alembic import context` first among the imports, the helper goes below all
    of them: no import is left below code (flake8 and ruff's E402)."""
    project = alembic_project(home / "app", "generic", database_url)
    env_py = project / "migrations" / "env.py"
    source = env_py.read_text().replace("\nfrom alembic import context\n", "\n")
    env_py.write_text("from alembic import context\n" + source)
    monkeypatch.chdir(project)
    assert main(["init"]) == 0
    lines = env_py.read_text().splitlines()
    helper = lines.index("import contextlib as _migrail_contextlib  # migrail-adopt")
    assert helper > lines.index("from sqlalchemy import pool")
    assert "def _migrail_connection(connect):  # migrail-adopt" in lines[helper:]


def test_plain_alembic_on_an_adopted_project_may_not_change_a_protected_database(
    home: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The helper init adds asks the database: one that says it is protected is read, not
    changed, by plain alembic."""
    from migrail.core.config import Environment
    from migrail.postgres.database import connect
    from migrail.postgres.identity import record_identity

    project = alembic_project(home / "app", "generic", database_url)
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["init"]) == 0
    up = alembic(project, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    head = _head(project)
    with connect(database_url) as connection:  # what a first release to production records
        record_identity(connection, Environment("production", "PRODUCTION_DATABASE_URL", True))
    down = alembic(project, "downgrade", "-1")
    assert down.returncode != 0
    assert (
        "the database says it is production, a protected environment: it changes only through "
        "an approved plan (migrail plan --env production, approve, apply), not through alembic "
        "downgrade" in down.stderr
    )
    assert version(database_url) == [head]
    current = alembic(project, "current")
    assert current.returncode == 0, current.stderr
    assert head in current.stdout

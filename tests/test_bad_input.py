"""Bad input gets one or two lines saying what is wrong and what to try, exit code 2, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from migrail import cluster
from migrail.main import main
from migrail.urls import libpq_conninfo
from testing.projects import write_revision

Setup = Callable[[Path, pytest.MonkeyPatch], None]
SECRET = "s3cr3t-pw"


def _env(name: str, value: str) -> Setup:
    return lambda project, monkeypatch: monkeypatch.setenv(name, value)


def _edit(path: str, old: str, new: str) -> Setup:
    def edit(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        target = project / path
        target.write_text(target.read_text().replace(old, new))

    return edit


def _write(path: str, text: str) -> Setup:
    return lambda project, monkeypatch: (project / path).write_text(text)


def _two_heads(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_revision(project, "0002", "left", "0001", "pass")
    write_revision(project, "0003", "right", "0001", "pass")


CASES: list[tuple[str, list[str], Setup, str]] = [
    (
        "password in the query string",
        ["status"],
        _env("DATABASE_URL", f"postgresql://app@127.0.0.1:1/agent_armor?password={SECRET}"),
        "error: cannot connect to postgresql://app@127.0.0.1:1/agent_armor?password=***: "
        "Connection refused\n"
        "hint: is the server running and reachable? try: pg_isready -h 127.0.0.1 -p 1\n",
    ),
    (
        "unreachable host",
        ["status"],
        _env("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/agent_armor"),
        "error: cannot connect to postgresql://app:***@127.0.0.1:1/agent_armor: Connection refused\n"
        "hint: is the server running and reachable? try: pg_isready -h 127.0.0.1 -p 1\n",
    ),
    (
        "unknown host name",
        ["migrate"],
        _env("DATABASE_URL", f"postgresql://app:{SECRET}@db.invalid:5432/agent_armor"),
        "error: cannot connect to postgresql://app:***@db.invalid:5432/agent_armor: failed to "
        "resolve host 'db.invalid': [Errno -2] Name or service not known\n"
        "hint: is the server running and reachable? try: pg_isready -h db.invalid -p 5432\n",
    ),
    (
        "malformed URL",
        ["status"],
        _env("DATABASE_URL", f"app:{SECRET}@localhost/agent_armor"),
        "error: DATABASE_URL is not a valid database URL: 'app:***@localhost/agent_armor'\n"
        "hint: expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n",
    ),
    (
        "URL of another database engine",
        ["migrate"],
        _env("DATABASE_URL", f"mysql://app:{SECRET}@localhost/agent_armor"),
        "error: DATABASE_URL is not a PostgreSQL URL: mysql://app:***@localhost/agent_armor\n"
        "hint: migrail works with PostgreSQL only: postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n",
    ),
    (
        "missing environment variable",
        ["migrate"],
        lambda project, monkeypatch: None,
        "error: DATABASE_URL is not set (the URL of environment 'development')\n"
        "hint: export DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DATABASE or put it in .env\n",
    ),
    (
        "unknown environment",
        ["migrate", "--env", "prod"],
        lambda project, monkeypatch: None,
        "error: unknown environment 'prod'\n"
        "hint: environments in [tool.migrail.environments]: development, production, staging\n",
    ),
    (
        "metadata module that does not import",
        ["generate", "add_priority"],
        _edit("pyproject.toml", "tasks_models:metadata", "tasks_modles:metadata"),
        "error: cannot import the models module 'tasks_modles' (No module named 'tasks_modles')\n"
        "hint: check [tool.migrail] metadata in pyproject.toml, and that the package is installed\n",
    ),
    (
        "metadata attribute that is not MetaData",
        ["migrate-staging"],
        _edit("pyproject.toml", "tasks_models:metadata", "tasks_models:tasks_table"),
        "error: tasks_models:tasks_table is not a SQLAlchemy MetaData (found NoneType)\n"
        "hint: point [tool.migrail] metadata at your models, e.g. 'app.models:Base.metadata'\n",
    ),
    (
        "revision file with a syntax error",
        ["migrate-staging"],
        _write("migrations/versions/0002_broken.py", "revision = '0002'\ndef upgrade(:\n"),
        "{project}/migrations/versions/0002_broken.py:2: syntax error in a revision file: invalid syntax\n",
    ),
    (
        "revision file that raises when it is loaded",
        ["migrate-staging"],
        _write(
            "migrations/versions/0002_broken.py", "revision = '0002'\ndown_revision = undefined\n"
        ),
        "{project}/migrations/versions/0002_broken.py:2: a revision file failed to load: "
        "NameError: name 'undefined' is not defined\n",
    ),
    (
        "metadata that is not a string",
        ["status"],
        _edit("pyproject.toml", 'metadata = "tasks_models:metadata"', "metadata = 5"),
        "error: [tool.migrail] metadata must be a string, not 5\n",
    ),
    (
        "environments that are not a table",
        ["status"],
        _write("pyproject.toml", '[tool.migrail]\nenvironments = "prod"\n'),
        "error: [tool.migrail.environments] must be a table of environments\n",
    ),
    (
        "revision pointing at a parent that does not exist",
        ["migrate-staging"],
        lambda project, monkeypatch: (
            write_revision(project, "0002", "orphan", "0042", "pass") and None
        ),
        "error: the migration history is broken: Revision 0042 referenced from 0042 -> 0002 (head), "
        "orphan is not present\n"
        "hint: fix the down_revision of the revision that names a missing parent\n",
    ),
    (
        "two heads",
        ["migrate-staging"],
        _two_heads,
        "error: the migration history has 2 heads: 0002, 0003\n"
        "hint: merge them: alembic merge, or rebase one branch's revision onto the other\n",
    ),
    (
        "unknown key in [tool.migrail]",
        ["status"],
        _edit("pyproject.toml", 'migrations = "migrations"', 'migration = "migrations"'),
        "error: unknown key(s) in [tool.migrail]: migration\n"
        "hint: known keys: default_environment, environments, four_eyes, lint, lock_retries, "
        "lock_timeout, metadata, migrations, revision_naming, statement_timeout\n",
    ),
    (
        "unknown revision naming",
        ["generate", "x"],
        _edit(
            "pyproject.toml",
            'migrations = "migrations"',
            'migrations = "migrations"\nrevision_naming = "uuid"',
        ),
        "error: [tool.migrail] revision_naming must be 'sequence' or 'timestamp', not 'uuid'\n",
    ),
    (
        "invalid TOML",
        ["status"],
        _edit("pyproject.toml", "[tool.migrail]", "[tool.migrail"),
        "error: {project}/pyproject.toml is not valid TOML: Expected ']' at the end of a table "
        "declaration (at line 5, column 14)\n",
    ),
    (
        "no migrations folder",
        ["migrate-staging"],
        _edit("pyproject.toml", 'migrations = "migrations"', 'migrations = "db/migrations"'),
        "error: {project}/db/migrations has no env.py: it is not an Alembic environment\n"
        "hint: check [tool.migrail] migrations in pyproject.toml\n",
    ),
    (
        "a revision name without words",
        ["generate", "--empty", "!!!"],
        lambda project, monkeypatch: None,
        "error: '!!!' is not a usable revision name\nhint: name the change in a few words, e.g. add_user_roles\n",
    ),
]


@pytest.mark.parametrize(
    ("argv", "setup", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    setup: Setup,
    expected: str,
) -> None:
    setup(project, monkeypatch)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    if not expected.startswith("error:"):
        expected = "error: " + expected
    assert err == expected.format(project=project)
    assert SECRET not in err


def test_debug_shows_the_traceback_with_the_password_masked(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/agent_armor")
    assert main(["status", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err
    assert "migrail.errors.FatalError: cannot connect to postgresql://app:***@127.0.0.1:1" in err
    assert SECRET not in err


def test_no_project_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 2
    assert capsys.readouterr().err == (
        f"error: no pyproject.toml with a [tool.migrail] table in {tmp_path} or above\n"
        "hint: run migrail inside your project, or pass --project DIR\n"
    )


def test_wrong_password_is_named_and_never_shown(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bindir = cluster.find_embedded_bindir()
    assert bindir is not None
    with cluster.private_cluster(bindir) as running:
        admin = f"postgresql://postgres@/postgres?host={running.socket_dir}"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("CREATE ROLE app LOGIN PASSWORD 'right-password'")
            (running.data_dir / "pg_hba.conf").write_text(
                "local all postgres trust\nlocal all all scram-sha-256\n"
            )
            connection.execute("SELECT pg_reload_conf()")
        monkeypatch.setenv(
            "DATABASE_URL", f"postgresql://app:{SECRET}@/postgres?host={running.socket_dir}"
        )
        assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: cannot connect to postgresql://app:***@/postgres?host={str(running.socket_dir).replace('/', '%2F')}: "
        'password authentication failed for user "app"\n'
        "hint: check the user and password\n"
    )


def test_a_database_ahead_of_the_code(
    project: Path,
    database_url: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sqlalchemy.engine import URL

    assert isinstance(database_url, URL)
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('0099')")
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == (
        "error: the database is at revision 0099, which this repository does not have\n"
        "hint: the database is ahead of the code: check out the branch that added it\n"
    )

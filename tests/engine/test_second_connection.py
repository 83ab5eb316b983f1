"""A revision that opens a database connection of its own is stopped at that line and rolled
back, and its connection reaches nothing: in migrate, migrate-staging and lint.

Its work would be committed on its own whatever became of the revision, on whatever database it
names: here another database, as a revision with a real database's URL hard-coded reaches it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.core.urls import libpq_conninfo
from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.postgres import columns, query, run_sql, version
from testing.projects import write_revision

ADD_X = 'op.add_column("tasks", sa.Column("x", sa.Integer()))'
STOPPED = "stopped there and rolled back, none of it applied"
# What a revision does on a connection of its own, and the driver's call that opens it.
SECOND = {
    "an engine of its own, committing a DELETE": (
        "with sa.create_engine(OTHER).begin() as c:\n"
        '        c.exec_driver_sql("DELETE FROM customers")',
        "psycopg.connect",
    ),
    "psycopg.connect in autocommit, creating a table": (
        "import psycopg\n"
        "    with psycopg.connect(OTHER_DSN, autocommit=True) as c:\n"
        '        c.execute("CREATE TABLE side_probe (id int)")',
        "psycopg.connect",
    ),
}
CAUGHT = {
    "the refusal caught, and carried on": (
        "try:\n"
        "        with sa.create_engine(OTHER).begin() as c:\n"
        '            c.exec_driver_sql("DELETE FROM customers")\n'
        "    except BaseException:\n"
        "        pass",
        "psycopg.connect",
    ),
}


@pytest.fixture
def other(pg_server: Server) -> Iterator[URL]:
    """Another database, as a developer's own: a table ``customers`` with two rows."""
    with pg_server.database() as url:
        run_sql(url, "CREATE TABLE customers (id int); INSERT INTO customers VALUES (1), (2)")
        yield url


def _second_revision(project: Path, other: URL, body: str) -> int:
    """0002: adds tasks.x, then runs ``body`` with the other database's URL at hand; the line
    that connects is returned."""
    url = other.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    extra = f"OTHER = {url!r}\nOTHER_DSN = {libpq_conninfo(other)!r}"
    path = write_revision(project, "0002", "second", "0001", f"{ADD_X}\n    {body}", extra=extra)
    return _connecting_line(path)


def _connecting_line(path: Path) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if "connect(" in line or "begin()" in line)


def _untouched(other: URL) -> None:
    assert query(other, "SELECT id FROM customers ORDER BY id") == [(1,), (2,)]
    assert query(other, "SELECT to_regclass('side_probe')") == [(None,)]


def _refusal(call: str, line: int) -> str:
    return (
        f"upgrade of 0002_second failed: it opens a second connection at "
        f"migrations/versions/0002_second.py:{line} ({call}), whose work would not be part of "
        f"its transaction: {STOPPED}"
    )


@pytest.mark.parametrize(
    ("body", "call"), [*SECOND.values(), *CAUGHT.values()], ids=[*SECOND, *CAUGHT]
)
def test_migrate_refuses_a_connection_of_the_revisions_own(
    project: Path,
    database_url: URL,
    other: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    body: str,
    call: str,
) -> None:
    line = _second_revision(project, other, body)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    exit_code = main(["migrate"])
    _untouched(other)
    assert exit_code == 1
    assert f"error: {_refusal(call, line)}" in capsys.readouterr().err
    assert version(database_url) == ["0001"]
    assert "x" not in columns(database_url, "tasks")


@pytest.mark.parametrize(("body", "call"), SECOND.values(), ids=SECOND.keys())
def test_migrate_staging_refuses_a_connection_of_the_revisions_own(
    project: Path, other: URL, capsys: pytest.CaptureFixture[str], body: str, call: str
) -> None:
    line = _second_revision(project, other, body)
    exit_code = main(["migrate-staging", "--no-cache"])
    _untouched(other)
    assert exit_code == 1
    assert f"error: {_refusal(call, line)}" in capsys.readouterr().err


@pytest.mark.parametrize("body", [body for body, _ in SECOND.values()], ids=SECOND.keys())
def test_lint_runs_such_a_revision_without_reaching_its_database(
    project: Path, other: URL, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    """lint renders each revision offline, and runs on a throwaway database those that cannot
    render: neither run reaches the database the revision names."""
    line = _second_revision(project, other, body)
    main(["lint", "--format", "json"])
    _untouched(other)
    findings = json.loads(capsys.readouterr().out)
    where = f"it opens a second connection at migrations/versions/0002_second.py:{line}"
    assert [f["rule"] for f in findings if where in f["message"]] == ["cannot-render"]


@pytest.mark.parametrize("body", [body for body, _ in SECOND.values()], ids=SECOND.keys())
def test_lint_as_a_process_refuses_a_driver_the_revision_imports_first(
    project: Path, other: URL, body: str
) -> None:
    """In a process of its own, lint renders offline without importing a driver; the one the
    revision imports (SQLAlchemy's, or psycopg directly) is watched as soon as it is imported."""
    line = _second_revision(project, other, body)
    completed = subprocess.run(
        [sys.executable, "-m", "migrail", "lint", "--format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _untouched(other)
    findings = json.loads(completed.stdout)
    where = f"it opens a second connection at migrations/versions/0002_second.py:{line}"
    assert [f["rule"] for f in findings if where in f["message"]] == ["cannot-render"]


def test_a_driver_imported_after_the_watch_began_is_watched(database_url: URL) -> None:
    """Watching imports no driver (psycopg costs a tenth of a second of every command); one
    imported afterwards is watched before anything uses it: refused, not connected. In a fresh
    interpreter, where nothing imported psycopg before."""
    script = (
        "import sys\n"
        "from migrail.engine.drivers import watch_connects\n"
        "def refuse(call):\n"
        "    raise ConnectionRefusedError(call)\n"
        "watch_connects(refuse)\n"
        "print('psycopg' in sys.modules)\n"
        "import sqlalchemy as sa\n"
        "for connect in (lambda: __import__('psycopg').connect(sys.argv[1]),\n"
        "                lambda: sa.create_engine(sys.argv[2]).connect()):\n"
        "    try:\n"
        "        connect()\n"
        "        print('connected')\n"
        "    except ConnectionRefusedError as exc:\n"
        "        print('refused', exc)\n"
    )
    url = database_url.set(drivername="postgresql+psycopg")
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            libpq_conninfo(database_url),
            url.render_as_string(hide_password=False),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.splitlines() == [
        "False",
        "refused psycopg.connect",
        "refused psycopg.connect",
    ]


def test_a_second_connection_waiting_for_the_revisions_lock_is_refused_not_left_hanging(
    project: Path, database_url: URL
) -> None:
    """Its DELETE would wait for the lock the revision's ALTER holds, while the revision waits
    for it: no timeout of migrail's session ends that. Run as a process, so that a hang is a
    failure of the test (killed at the timeout), not of the suite."""
    url = database_url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    path = write_revision(
        project,
        "0002",
        "second",
        "0001",
        f"{ADD_X}\n    with sa.create_engine(OTHER).begin() as c:\n"
        '        c.exec_driver_sql("DELETE FROM tasks")',
        extra=f"OTHER = {url!r}",
    )
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "migrail", "migrate"],
            cwd=project,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("migrate hung: the second connection waited for the revision's lock")
    assert completed.returncode == 1, completed.stderr
    assert f"error: {_refusal('psycopg.connect', _connecting_line(path))}" in completed.stderr
    assert "x" not in columns(database_url, "tasks")


def test_an_env_py_connecting_by_itself_is_refused_where_it_connects(
    project: Path,
    database_url: URL,
    other: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """env.py may build an engine of its own (adopted projects do, at import); connecting it
    is what is refused: the revisions run on migrail's connection."""
    url = other.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    env_py = project / "migrations" / "env.py"
    env_py.write_text(
        "import sqlalchemy as sa\n"
        "from migrail.alembic_env import run_migrations\n\n"
        f"ENGINE = sa.create_engine({url!r})\n"
        "with ENGINE.begin() as c:\n"
        '    c.exec_driver_sql("DELETE FROM customers")\n'
        "run_migrations()\n"
    )
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    exit_code = main(["migrate"])
    _untouched(other)
    assert exit_code == 1
    err = capsys.readouterr().err
    assert "failed: it opens a second connection at migrations/env.py:5 (psycopg.connect)" in err
    assert version(database_url) == []

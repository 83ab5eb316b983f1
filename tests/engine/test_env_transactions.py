"""An env.py that begins a transaction of its own on migrail's connection still gets one
transaction per revision: a ``with connection.begin():`` around ``configure()`` and
``run_migrations()``, or Alembic's old template (``trans = connection.begin()`` after
``configure()``, ``trans.commit()`` after the revisions), with a SET before ``configure()``.

Both run under plain Alembic; under migrail the first failed with "Can't operate on closed
transaction inside context manager" and the second with "This transaction is inactive", each
reported as a bug in migrail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from testing.postgres import columns, query, version
from testing.projects import write_revision

ENVS = {
    "a with block around configure and run_migrations": """
from alembic import context

connection = context.config.attributes["connection"]
with connection.begin():
    context.configure(connection=connection, target_metadata=None)
    context.run_migrations()
""",
    "Alembic's old template, with a SET before configure": """
from alembic import context

connection = context.config.attributes["connection"]
connection.exec_driver_sql("SET search_path TO public")
context.configure(connection=connection, target_metadata=None)
trans = connection.begin()
try:
    context.run_migrations()
    trans.commit()
except:
    trans.rollback()
    raise
""",
}


@pytest.fixture(params=ENVS.values(), ids=ENVS.keys())
def own_transaction(project: Path, request: pytest.FixtureRequest) -> Path:
    (project / "migrations" / "env.py").write_text(request.param)
    return project


def test_migrate_commits_each_revision_and_names_the_one_that_failed(
    own_transaction: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_revision(
        own_transaction, "0002", "add_a", "0001", 'op.execute("ALTER TABLE tasks ADD a int")'
    )
    write_revision(
        own_transaction,
        "0003",
        "broken",
        "0002",
        'op.execute("ALTER TABLE tasks ADD b nosuchtype")',
    )
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert 'error: upgrade of 0003_broken failed: type "nosuchtype" does not exist' in err
    assert "bug in migrail" not in err
    # Each revision in its own transaction, not all of them in env.py's.
    assert version(database_url) == ["0002"]
    assert "a" in columns(database_url, "tasks")
    rows = query(database_url, "SELECT revision, success FROM migrail.history ORDER BY id")
    assert rows == [("0001", True), ("0002", True), ("0003", False)]

    (own_transaction / "migrations" / "versions" / "0003_broken.py").unlink()
    write_revision(
        own_transaction, "0003", "add_b", "0002", 'op.execute("ALTER TABLE tasks ADD b int")'
    )
    assert main(["migrate"]) == 0
    assert version(database_url) == ["0003"]
    assert "b" in columns(database_url, "tasks")


def test_migrate_staging_proves_the_history(
    own_transaction: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        own_transaction,
        "0002",
        "touch",
        "0001",
        'op.execute("UPDATE tasks SET name = name")',
    )
    assert main(["migrate-staging", "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert "[✓] round trip: down to base and up to head again" in err, err
    assert "0002_touch" in err


# env.py's own statement after the revisions, which fails once revision 0002's table exists.
FAILS_AFTER = """
from alembic import context

connection = context.config.attributes["connection"]
with connection.begin():
    context.configure(connection=connection, target_metadata=None)
    context.run_migrations()
    connection.exec_driver_sql(
        "SELECT 1 / ((SELECT count(*)::int FROM pg_tables WHERE tablename = 'after') - 1)"
    )
"""


def test_env_py_failing_after_the_revisions_is_its_own_failure_not_theirs(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The revisions committed, each in its own transaction, before env.py's code after
    them failed: the last is neither reported failed "as it committed" nor recorded failed in
    migrail.history, and a later run that fails in env.py is env.py's failure, not a bug."""
    (project / "migrations" / "env.py").write_text(FAILS_AFTER)
    write_revision(project, "0002", "after", "0001", 'op.execute("CREATE TABLE after (id int)")')
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "[✓] 0002_after" in err, err
    assert (
        "error: upgrade failed after 0002_after: migrations/env.py failed after running the "
        "migrations: DataError: (psycopg.errors.DivisionByZero) division by zero"
    ) in err, err
    assert "COMMIT" not in err
    assert version(database_url) == ["0002"]
    rows = query(database_url, "SELECT revision, success FROM migrail.history ORDER BY id")
    assert rows == [("0001", True), ("0002", True)]

    assert main(["migrate", "--to", "0001", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "error: migrations/env.py failed after running the migrations: DataError:" in err
    assert "bug in migrail" not in err
    assert version(database_url) == ["0002"]


def test_env_py_opening_a_second_connection_is_its_own_failure_not_a_bug(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Refused where it connects, as a revision's would be; told as the project's code's
    failure (exit 1), not as a bug in migrail (exit 3)."""
    plain = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    (project / "migrations" / "env.py").write_text(
        "import psycopg\n"
        "from alembic import context\n\n"
        'connection = context.config.attributes["connection"]\n'
        "context.configure(connection=connection, target_metadata=None)\n"
        "with context.begin_transaction():\n"
        "    context.run_migrations()\n"
        f"psycopg.connect({plain!r}).close()\n"
    )
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "error: it opens a second connection at migrations/env.py:8 (psycopg.connect)" in err
    assert "bug in migrail" not in err

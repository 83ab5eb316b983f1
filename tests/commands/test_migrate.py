"""``migrail migrate`` and ``migrail status`` against a real database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from migrail.database import MIGRATE_LOCK_KEY
from migrail.main import main
from migrail.urls import libpq_conninfo
from testing.postgres import columns, query, version
from testing.projects import write_revision


@pytest.fixture
def target(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> URL:
    """The development database of the test project, reached through DATABASE_URL."""
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    return database_url


def test_migrate_lists_pending_revisions_then_applies_them(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "add_priority",
        "0001",
        'op.add_column("tasks", sa.Column("priority", sa.Integer()))',
    )
    assert main(["migrate"]) == 0
    err = capsys.readouterr().err
    assert "2 pending: 0001_create_tasks, 0002_add_priority\n" in err
    assert "[✓] 0001_create_tasks (" in err
    assert err.endswith("[✓] Applied 2 revision(s); the database is at 0002_add_priority\n")
    assert version(target) == ["0002"]
    assert "priority" in columns(target, "tasks")
    assert main(["migrate"]) == 0
    assert capsys.readouterr().err.endswith("[✓] Up to date at 0002_add_priority\n")


def test_migrate_sql_prints_the_sql_and_applies_nothing(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--sql"]) == 0
    out, err = capsys.readouterr()
    assert "CREATE TABLE tasks (" in out
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in out
    assert err == ""
    assert version(target) == []


def test_a_failing_revision_is_rolled_back_and_earlier_ones_stay(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "bad_cast",
        "0001",
        'op.add_column("tasks", sa.Column("n", sa.Integer())); op.execute("SELECT \'x\'::integer")',
    )
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert (
        'error: upgrade of 0002_bad_cast failed: invalid input syntax for type integer: "x" '
        "(SQLSTATE 22P02)\n"
        "  statement: SELECT 'x'::integer\n"
        "  the database is at 0001_create_tasks\n"
    ) in err
    assert version(target) == ["0001"]
    assert "n" not in columns(target, "tasks")
    ledger = query(target, "SELECT revision, success, error FROM migrail.history ORDER BY id")
    assert ledger == [
        ("0001", True, None),
        ("0002", False, 'invalid input syntax for type integer: "x" (SQLSTATE 22P02)'),
    ]


def test_a_revision_failing_at_commit_is_named_and_not_counted(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "deferred",
        "0001",
        'op.execute("CREATE TABLE parent (id int PRIMARY KEY)"); '
        'op.execute("CREATE TABLE child (parent_id int REFERENCES parent '
        'DEFERRABLE INITIALLY DEFERRED)"); '
        'op.execute("INSERT INTO child VALUES (1)")',
    )
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "[✓] 0001_create_tasks (" in err
    assert "[✓] 0002_deferred" not in err
    assert (
        'error: upgrade of 0002_deferred failed: insert or update on table "child" violates '
        'foreign key constraint "child_parent_id_fkey" (SQLSTATE 23503)\n'
        "  statement: COMMIT\n"
        "  the database is at 0001_create_tasks\n"
    ) in err
    assert version(target) == ["0001"]
    ledger = query(target, "SELECT revision, success FROM migrail.history ORDER BY id")
    assert ledger == [("0001", True), ("0002", False)], "its success row went with its COMMIT"


def test_migrate_sql_starts_from_the_database_revision(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    write_revision(
        project,
        "0002",
        "add_priority",
        "0001",
        'op.add_column("tasks", sa.Column("priority", sa.Integer()))',
    )
    capsys.readouterr()
    assert main(["migrate", "--sql"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE tasks" not in out
    assert "ALTER TABLE tasks ADD COLUMN priority INTEGER;" in out
    assert (
        "UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';"
        in out
    )
    assert version(target) == ["0001"]


def test_concurrent_migrates_wait_for_the_lock_and_apply_each_revision_once(
    project: Path, target: URL
) -> None:
    write_revision(
        project,
        "0002",
        "count",
        "0001",
        'op.execute("CREATE TABLE applied (at timestamptz)"); '
        'op.execute("INSERT INTO applied VALUES (now())")',
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    with psycopg.connect(libpq_conninfo(target), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "migrail", "migrate"],
                cwd=project,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for run in runs:  # both are queued behind the lock before it is released
            assert run.stderr is not None
            lines = iter(run.stderr.readline, "")
            assert any(line == "Waiting for another migrate to finish...\n" for line in lines)
    outputs = [run.communicate(timeout=60)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sorted(output.splitlines()[-1] for output in outputs) == [
        "[✓] Another migrate applied them; the database is at 0002_count",
        "[✓] Applied 2 revision(s); the database is at 0002_count",
    ]
    assert query(target, "SELECT count(*) FROM applied") == [(1,)]
    assert version(target) == ["0002"]
    ledger = query(target, "SELECT revision, success FROM migrail.history ORDER BY id")
    assert ledger == [("0001", True), ("0002", True)], "each revision recorded once"


def test_status_shows_revision_head_and_pending(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    masked = target.set(drivername="postgresql").render_as_string(hide_password=True)
    assert capsys.readouterr().err == (
        f"environment: development ({masked})\n"
        "database at: base\n"
        "head:        0001_create_tasks\n"
        "pending (1):\n"
        "  0001_create_tasks\n"
    )
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["status"]) == 0
    err = capsys.readouterr().err
    assert "database at: 0001_create_tasks\nhead:        0001_create_tasks\n[✓] up to date\n" in err
    assert re.search(
        r"applied \(newest first\):\n  0001_create_tasks  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  "
        r"by \S+  \d+ ms  ok\n$",
        err,
    )


def test_the_environment_is_chosen_by_name(
    project: Path, target: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("STAGING_DATABASE_URL", target.render_as_string(hide_password=False))
    assert main(["migrate", "--env", "staging"]) == 0
    assert "Environment staging: " in capsys.readouterr().err
    assert version(target) == ["0001"]


def test_a_protected_environment_is_not_migrated_without_a_plan(
    project: Path, target: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", target.render_as_string(hide_password=False))
    assert main(["migrate", "--env", "production"]) == 2
    assert capsys.readouterr().err == (
        "error: migrate is refused: production is protected, and changes only through an "
        "approved plan\n"
        "hint: migrail plan --env production; a reviewer runs migrail approve plan.json; then "
        "migrail apply --plan plan.json\n"
    )
    assert version(target) == []


def test_urls_come_from_the_env_file(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    (project / ".env").write_text(f"DATABASE_URL={target.render_as_string(hide_password=False)}\n")
    assert main(["migrate"]) == 0
    assert version(target) == ["0001"]
    assert "DATABASE_URL" not in os.environ


def test_the_environment_file_wins_over_the_shared_one(
    project: Path, target: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    (project / ".env").write_text("STAGING_DATABASE_URL=postgresql://nowhere.invalid/db\n")
    (project / ".env.staging").write_text(
        f"STAGING_DATABASE_URL={target.render_as_string(hide_password=False)}\n"
    )
    assert main(["migrate", "--env", "staging"]) == 0
    assert version(target) == ["0001"]
    monkeypatch.setenv("STAGING_DATABASE_URL", "postgresql://app@127.0.0.1:1/db")
    assert main(["status", "--env", "staging"]) == 2, "the process environment wins over files"


def test_migrate_sql_names_a_revision_that_needs_a_database(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "backfill",
        "0001",
        'rows = op.get_bind().execute(sa.text("SELECT id FROM tasks")).all()',
    )
    assert main(["migrate", "--sql"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: 0002_backfill cannot be rendered as SQL without a database: AttributeError: "
        "'NoneType' object has no attribute 'all'\n"
        "hint: a data migration that reads from the database: apply it with migrate\n"
    )

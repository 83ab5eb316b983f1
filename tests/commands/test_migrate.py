"""``migrail migrate`` and ``migrail status`` against a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
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


def test_concurrent_migrates_apply_each_revision_once(project: Path, target: URL) -> None:
    write_revision(
        project,
        "0002",
        "slow",
        "0001",
        'op.execute("CREATE TABLE applied (at timestamptz)"); '
        'op.execute("SELECT pg_sleep(1.5)"); '
        'op.execute("INSERT INTO applied VALUES (now())")',
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
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
    outputs = [run.communicate(timeout=60)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert query(target, "SELECT count(*) FROM applied") == [(1,)]
    assert version(target) == ["0002"]


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
    assert capsys.readouterr().err.endswith(
        "database at: 0001_create_tasks\nhead:        0001_create_tasks\n[✓] up to date\n"
    )


def test_the_environment_is_chosen_by_name(
    project: Path, target: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", target.render_as_string(hide_password=False))
    assert main(["migrate", "--env", "production"]) == 0
    assert "Environment production: " in capsys.readouterr().err
    assert version(target) == ["0001"]


def test_urls_come_from_the_env_file(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    (project / ".env").write_text(f"DATABASE_URL={target.render_as_string(hide_password=False)}\n")
    assert main(["migrate"]) == 0
    assert version(target) == ["0001"]

"""agent_armor's models and database setup, on a database migrated by migrail from the repo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from agent_armor.persistence import database
from agent_armor.persistence.schema import Task
from migrail.main import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def test_database(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    monkeypatch.setenv("DATABASE_URL_TEST", database_url.render_as_string(hide_password=False))
    database.get_engine.cache_clear()
    yield database_url
    database.get_engine(test=True).dispose()
    database.get_engine.cache_clear()


def test_tasks_round_trip_through_the_migrated_schema(test_database: URL) -> None:
    assert main(["migrate", "--env", "test", "--project", str(REPO)]) == 0
    with database.get_sessionmaker(test=True)() as session:
        session.add(Task(id="t1", name="scan", status="queued", task_metadata={"retries": 2}))
        session.commit()
    with database.get_sessionmaker(test=True)() as session:
        task = session.scalars(select(Task)).one()
    assert (task.name, task.status, task.owner, task.task_metadata) == (
        "scan",
        "queued",
        None,
        {"retries": 2},
    )
    assert task.created_at.tzinfo is not None
    assert task.created_at == task.updated_at


def test_the_test_url_falls_back_to_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "PROJECT_ROOT", Path("/nonexistent"))
    monkeypatch.setenv("DATABASE_URL", "postgres://app@db:5432/agent_armor")
    assert database.database_url(test=True) == "postgresql+psycopg://app@db:5432/agent_armor"
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(RuntimeError, match="DATABASE_URL_TEST or DATABASE_URL is not set"):
        database.database_url(test=True)


def test_env_test_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env.test").write_text(
        "DATABASE_URL_TEST=postgresql://app@db:5432/agent_armor_test\n"
    )
    monkeypatch.setattr(database, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv(
        "DATABASE_URL_TEST", ""
    )  # registered so that the value from the file is undone
    monkeypatch.delenv("DATABASE_URL_TEST")
    assert database.database_url(test=True) == "postgresql+psycopg://app@db:5432/agent_armor_test"


def test_this_repository_needs_a_second_person_to_approve_a_plan() -> None:
    """The showcase is configured as a team should be: four_eyes on."""
    from migrail.core.config import load_config
    from testing.projects import REPO

    config = load_config(REPO)
    assert config.four_eyes is True
    assert config.environment("production").protected is True


def test_what_a_release_writes_is_not_committed_by_accident() -> None:
    import subprocess

    from testing.projects import REPO

    names = ["plan.json", "plan.md", "plan.approval.json", "report.md"]
    done = subprocess.run(
        ["git", "check-ignore", *names], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.stdout.split() == names


def test_the_models_name_every_kind_of_constraint() -> None:
    """So that ``generate`` never writes ``op.create_unique_constraint(None, ...)`` for them."""
    from sqlalchemy import Column, Table, Text

    from agent_armor.persistence.schema import metadata

    probe = Table(
        "probe", metadata, Column("code", Text, unique=True), Column("id", Text, primary_key=True)
    )
    try:
        assert {type(c).__name__: c.name for c in probe.constraints} == {
            "UniqueConstraint": "uq_probe_code",
            "PrimaryKeyConstraint": "probe_pkey",  # as PostgreSQL names it: the tables have those
        }
    finally:
        metadata.remove(probe)

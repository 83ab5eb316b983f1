"""``migrail pull`` and ``migrail stamp``: a database made by hand adopted, its baseline proven."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from testing.postgres import query, run_sql, version
from testing.projects import HAND_MADE_SCHEMA, unmigrated_project

SECRET = "s3cr3t-pw"


@pytest.fixture
def adopted(tmp_path: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project whose development database was made by hand, with rows in it."""
    run_sql(database_url, HAND_MADE_SCHEMA)
    root = unmigrated_project(tmp_path / "adopted")
    monkeypatch.chdir(root)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    yield root
    for module in [name for name in sys.modules if name == "app" or name.startswith("app.")]:
        del sys.modules[module]
    sys.path[:] = [entry for entry in sys.path if not entry.startswith(str(tmp_path))]


def test_pull_writes_models_and_a_baseline_that_staging_proves_then_stamp_records_it(
    adopted: Path, database_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pull", "--models", "app/models.py"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "[✓] Your models ➜ app/models.py (app.models:metadata)\n" in err
    assert "[✓] Your migration ➜ migrations/versions/0001_baseline.py\n" in err
    assert err.endswith("To record the database as at the baseline: migrail stamp\n")
    assert 'metadata = "app.models:metadata"\n' in (adopted / "pyproject.toml").read_text()
    for written in (
        "migrations/sql/0001_baseline.sql",
        "migrations/migrail.sum",
        "migrations/schema/0001_baseline.sql",
    ):
        assert (adopted / written).is_file(), written
    assert (
        "CREATE TYPE task_state AS ENUM"
        in (adopted / "migrations/sql/0001_baseline.sql").read_text()
    )
    imported = subprocess.run(
        [sys.executable, "-c", "import app.models as m; print(sorted(m.metadata.tables))"],
        cwd=adopted,
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout == "['owners', 'tasks']\n"
    assert version(database_url) == [], "pull alone records nothing in the database"

    assert main(["migrate-staging"]) == 0, capsys.readouterr().err
    assert "[✓] models match" in capsys.readouterr().err

    assert main(["stamp"]) == 0
    assert capsys.readouterr().err.endswith("[✓] Stamped development at 0001_baseline\n")
    assert version(database_url) == ["0001"]
    assert query(database_url, "SELECT revision, plan_id, success FROM migrail.history") == [
        ("0001", "stamped", True)
    ]
    assert query(database_url, "SELECT count(*) FROM tasks") == [(1,)], "nothing was run"
    assert main(["status"]) == 0
    err = capsys.readouterr().err
    assert "database at: 0001_baseline\n" in err
    assert "[✓] up to date\n" in err
    assert "ms, stamped  ok\n" in err
    assert main(["stamp"]) == 2
    assert capsys.readouterr().err.endswith(
        "error: stamping is refused: the database is already at 0001_baseline\n"
        "hint: a database with a revision changes through migrail migrate\n"
    )


def test_pull_stamp_records_the_baseline_in_one_step(
    adopted: Path, database_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pull", "--models", "src/app/models.py", "--stamp"]) == 0
    err = capsys.readouterr().err
    assert "[✓] Your models ➜ src/app/models.py (app.models:metadata)\n" in err
    assert err.endswith("[✓] Stamped development at 0001_baseline\n")
    assert version(database_url) == ["0001"]
    assert main(["status"]) == 0
    assert "[✓] up to date\n" in capsys.readouterr().err


def test_pull_writes_where_the_configured_metadata_says(
    adopted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = adopted / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        text.replace("[tool.migrail]\n", '[tool.migrail]\nmetadata = "app.db:metadata"\n')
    )
    assert main(["pull"]) == 0
    assert "[✓] Your models ➜ app/db.py (app.db:metadata)\n" in capsys.readouterr().err
    assert pyproject.read_text().count("metadata =") == 1


def test_pull_refuses_to_stamp_a_protected_environment_before_writing_anything(
    adopted: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    before = sorted(adopted.rglob("*"))
    assert main(["pull", "--env", "production", "--models", "app/models.py", "--stamp"]) == 2
    assert capsys.readouterr().err == (
        "error: stamping is refused: environment production is protected, and changes only "
        "through an approved plan\n"
        "hint: stamp it through a release plan: migrail plan --env production --stamp, then "
        "approve and apply\n"
    )
    assert sorted(adopted.rglob("*")) == before
    assert version(database_url) == []


def test_stamp_is_refused_on_a_database_that_says_it_is_protected(
    adopted: Path, database_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sql(
        database_url,
        "CREATE SCHEMA migrail; CREATE TABLE migrail.environment (one boolean PRIMARY KEY "
        "DEFAULT true, name text NOT NULL, protected boolean NOT NULL, recorded_at timestamptz "
        "NOT NULL DEFAULT now()); INSERT INTO migrail.environment (name, protected) "
        "VALUES ('production', true)",
    )
    assert main(["pull", "--models", "app/models.py", "--stamp"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: stamping is refused: the database says it is production, a protected "
        "environment (you named it development)\n"
    )
    assert not (adopted / "app").exists()
    assert "metadata" not in (adopted / "pyproject.toml").read_text()


def test_pull_without_sqlacodegen_says_what_to_install(
    adopted: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sqlacodegen.generators", None)  # as when not installed
    assert main(["pull", "--models", "app/models.py"]) == 2
    assert capsys.readouterr().err == (
        "error: pull writes the models with sqlacodegen, which is not installed\n"
        "hint: pip install 'migrail[pull]'\n"
    )
    assert not (adopted / "app").exists()


def test_a_protected_database_is_stamped_through_an_approved_plan(
    adopted: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    assert main(["pull", "--env", "production", "--models", "app/models.py"]) == 0
    capsys.readouterr()
    assert main(["stamp", "--env", "production"]) == 2
    assert "migrail plan --env production --stamp" in capsys.readouterr().err

    monkeypatch.setenv("MIGRAIL_ACTOR", "alice")
    assert main(["plan", "--env", "production", "--stamp"]) == 0
    assert "[✓] planned stamping 0001_baseline for production" in capsys.readouterr().err
    plan_md = (adopted / "plan.md").read_text()
    assert "- **stamp**: records the revision below as applied without running it" in plan_md
    assert "-- Not run: recorded as applied" in plan_md
    monkeypatch.setenv("MIGRAIL_ACTOR", "bob")
    assert main(["approve", "plan.json"]) == 0
    assert version(database_url) == [], "nothing before the approved plan is applied"
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 0
    assert capsys.readouterr().err.endswith(": stamped, nothing run\n")
    assert version(database_url) == ["0001"]
    plan_id = json.loads((adopted / "plan.json").read_text())["plan_id"]
    assert query(
        database_url, "SELECT revision, plan_id, direction, success FROM migrail.history"
    ) == [("0001", plan_id, "stamp", True)]
    assert query(database_url, "SELECT count(*) FROM tasks") == [(1,)], "nothing was run"
    assert main(["status", "--env", "production"]) == 0
    assert "stamped  ok\n" in capsys.readouterr().err
    assert main(["plan", "--env", "production", "--stamp"]) == 2
    assert capsys.readouterr().err == (
        "error: stamping is refused: the database is already at 0001_baseline\n"
        "hint: a database with a revision changes through migrail plan, without --stamp\n"
    )


def test_a_database_that_is_not_at_the_baseline_is_not_stamped(
    adopted: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A stamp claims the schema is there: a table the baseline creates must exist."""
    assert main(["pull", "--models", "app/models.py"]) == 0
    run_sql(database_url, "ALTER TABLE tasks DROP COLUMN priority")
    capsys.readouterr()
    assert main(["stamp"]) == 2
    err = capsys.readouterr().err
    assert "error: stamping is refused: the database is not at 0001_baseline's schema " in err
    assert "+ column tasks.priority" in err
    assert version(database_url) == []

    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    assert main(["plan", "--env", "production", "--stamp"]) == 1
    err = capsys.readouterr().err
    assert "production has drifted from 0001_baseline" in err
    assert "+ column tasks.priority" in err
    assert not (adopted / "plan.json").exists()

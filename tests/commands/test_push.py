"""``migrail push``: development databases made to match the models; refused where it is unsafe."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from migrail.core.urls import libpq_conninfo
from migrail.main import main
from testing.postgres import columns, query, version
from testing.projects import add_priority_column


@pytest.fixture
def development(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> URL:
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    return database_url


def test_push_makes_an_empty_development_database_match_the_models(
    project: Path, development: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push"]) == 0
    err = capsys.readouterr().err
    assert "  + table tasks (7 columns)\n" in err
    assert err.endswith("[✓] Pushed 1 change(s)\n")
    assert "owner" in columns(development, "tasks")
    assert version(development) == [], "push writes no migration history"
    add_priority_column(project)
    sys.modules.pop("tasks_models", None)  # as in a process of its own
    assert main(["push"]) == 0
    assert "  + column tasks.priority (INTEGER)\n" in capsys.readouterr().err
    assert main(["push"]) == 0
    assert capsys.readouterr().err.endswith(
        "[✓] Nothing to push: the database matches the models\n"
    )


def test_losing_data_needs_a_yes_and_is_refused_without_a_terminal(
    project: Path, development: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(libpq_conninfo(development), autocommit=True) as connection:
        connection.execute("CREATE TABLE legacy (id int)")
        connection.execute("INSERT INTO legacy VALUES (1), (2), (3)")
    assert main(["push"]) == 2
    err = capsys.readouterr().err
    assert "Dropping table legacy deletes its 3 rows.\n" in err
    assert err.endswith(
        "error: push would lose data, and there is no terminal to confirm it\n"
        "hint: rerun with --yes if you mean it\n"
    )
    assert query(development, "SELECT count(*) FROM legacy") == [(3,)], "nothing was changed"
    assert main(["push", "--yes"]) == 0
    assert query(development, "SELECT to_regclass('legacy')") == [(None,)]
    with psycopg.connect(libpq_conninfo(development), autocommit=True) as connection:
        connection.execute("ALTER TABLE tasks ADD COLUMN scratch text")
        connection.execute("INSERT INTO tasks (id, name, status) VALUES ('a', 'a', 'todo')")
    capsys.readouterr()
    assert main(["push"]) == 2
    assert "Dropping column tasks.scratch deletes its values in 1 row.\n" in capsys.readouterr().err


def test_push_is_refused_on_a_protected_environment(
    project: Path,
    development: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", development.render_as_string(hide_password=False))
    assert main(["push", "--env", "production"]) == 2
    assert capsys.readouterr().err == (
        "error: push is refused: environment production is protected (protected = true in "
        "[tool.migrail.environments.production] in pyproject.toml)\n"
        "hint: write the change as a revision (migrail generate NAME), then release it: "
        "migrail plan --env production, approve and apply\n"
    )
    pyproject = project / "pyproject.toml"  # no environments table: migrail's defaults apply
    text = pyproject.read_text()
    pyproject.write_text(text[: text.index("[tool.migrail.environments.development]")])
    assert main(["push", "--env", "production"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: push is refused: environment production is protected (migrail's default "
        "environments protect production; a [tool.migrail.environments] table in pyproject.toml "
        "replaces them)\n"
    )


def test_push_is_refused_when_the_database_says_it_is_protected(
    project: Path,
    development: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from migrail.core.config import Environment
    from migrail.postgres.database import connect
    from migrail.postgres.identity import record_identity

    with connect(development) as connection:  # what its first release wrote
        record_identity(connection, Environment("production", "PRODUCTION_DATABASE_URL", True))
    assert main(["push"]) == 2
    assert capsys.readouterr().err == (
        "error: push is refused: the database says it is production, a protected environment "
        "(you named it development)\n"
        "hint: write the change as a revision (migrail generate NAME), then release it: "
        "migrail plan --env production, approve and apply\n"
    )
    assert main(["migrate"]) == 2
    assert (
        "the database says it is production, a protected environment, but was reached as development"
        in capsys.readouterr().err
    )
    # The configuration no longer protects production: the database still does, and says so.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("protected = true\n", ""))
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", development.render_as_string(hide_password=False))
    assert main(["migrate", "--env", "production"]) == 2
    assert capsys.readouterr().err.endswith(
        "error: the database says it is production, a protected environment, and production is "
        "no longer protected in the configuration\n"
        "hint: release through a plan (migrail plan --env production); to lift the protection, "
        "an owner runs: UPDATE migrail.environment SET protected = false\n"
    )


def test_push_is_refused_on_a_database_with_a_history(
    project: Path, development: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["push"]) == 2
    assert capsys.readouterr().err == (
        "error: push is refused: the database has a migration history (at 0001_create_tasks) "
        "that push would fork\n"
        "hint: apply the history instead: migrail migrate\n"
    )


def test_an_enum_column_gets_its_type_and_a_failing_change_leaves_nothing_behind(
    project: Path, development: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push"]) == 0
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text()
        .replace(
            '    Column("owner", Text),\n',
            '    Column("owner", Text),\n    Column("kind", Enum("bug", "chore", name="task_kind")),\n',
        )
        .replace("from sqlalchemy import Column,", "from sqlalchemy import Column, Enum,")
    )
    sys.modules.pop("tasks_models", None)
    assert main(["push"]) == 0, capsys.readouterr().err
    assert query(development, "SELECT enum_range(NULL::task_kind)::text") == [("{bug,chore}",)]
    with psycopg.connect(libpq_conninfo(development), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO tasks (id, name, status, owner) VALUES ('1', 'n', 's', 'someone long')"
        )
    models.write_text(
        models.read_text()
        .replace('Column("owner", Text)', 'Column("owner", String(3))')
        .replace("from sqlalchemy import Column,", "from sqlalchemy import String, Column,")
    )
    sys.modules.pop("tasks_models", None)
    capsys.readouterr()
    assert main(["push", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "error: push failed at ~ column tasks.owner: type" in err
    assert (
        "value too long for type character varying(3) (SQLSTATE 22001); nothing was changed\n"
        in err
    )
    assert query(development, "SELECT owner FROM tasks") == [("someone long",)]

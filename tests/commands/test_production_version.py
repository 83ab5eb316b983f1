"""Production's PostgreSQL version (``pg_version`` in ``[tool.migrail.lint]``): staging says
when it ran on another major version, and fails on it in CI unless allowed; ``plan`` records
the version the database really runs, and warns when pg_version says another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from migrail.postgres.database import major_version
from migrail.postgres.ephemeral import Server
from testing.postgres import query


def _production_is(project: Path, version: str) -> None:
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write(f'\n[tool.migrail.lint]\npg_version = "{version}"\n')


def _other_than(server: Server) -> str:
    """A major version the server does not run."""
    return str(int(major_version(server.version)) + 1)


def test_major_versions_are_read_as_postgresql_spells_them() -> None:
    assert major_version("15.20 (Debian 15.20-0+deb12u1)") == "15"
    assert major_version("16") == "16"
    assert major_version("18.6") == "18"
    assert major_version("9.6.24") == "9.6"


def test_staging_on_another_version_than_production_warns_outside_ci(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    production = _other_than(pg_server)
    _production_is(project, production)
    assert main(["migrate-staging"]) == 0
    staging = major_version(pg_server.version)
    assert (
        f"warning: staging ran on PostgreSQL {staging}, production is {production} (pg_version)\n"
        in capsys.readouterr().err
    )


def test_staging_on_another_version_than_production_fails_in_ci_unless_allowed(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    production = _other_than(pg_server)
    _production_is(project, production)
    staging = major_version(pg_server.version)
    assert main(["migrate-staging", "--report", "staging.md"]) == 1
    err = capsys.readouterr().err
    assert (
        f"error: staging ran on PostgreSQL {staging}, production is {production} (pg_version)\n"
        "hint: run staging on production's version (MIGRAIL_ADMIN_URL to a postgres:<version> "
        "server), or accept the difference: --allow-version-mismatch\n"
    ) in err
    assert "[✓] round trip: down to base and up to head again\n" in err  # the proof itself held
    assert (
        (project / "staging.md")
        .read_text()
        .startswith(
            "## migrate-staging: failed\n\n"
            f"**PostgreSQL version:** staging ran on PostgreSQL {staging}, production is {production} "
            "(pg_version).\n"
        )
    )

    assert main(["migrate-staging", "--allow-version-mismatch"]) == 0
    assert f"warning: staging ran on PostgreSQL {staging}" in capsys.readouterr().err

    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace(production, staging)
    )
    assert main(["migrate-staging"]) == 0
    assert "production is" not in capsys.readouterr().err


@pytest.fixture
def production(project: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch) -> URL:
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("MIGRAIL_ACTOR", "alice")
    return database_url


def test_plan_records_the_version_production_runs_and_warns_when_pg_version_differs(
    project: Path, pg_server: Server, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    said = _other_than(pg_server)
    _production_is(project, said)
    assert main(["plan", "--env", "production"]) == 0
    live = str(query(production, "SHOW server_version")[0][0])
    runs = major_version(live)
    err = capsys.readouterr().err
    assert (
        f"warning: the database runs PostgreSQL {runs}, but pg_version in [tool.migrail.lint] "
        f"says {said}: lint and staging judged the revisions for another version\n"
        f'  set pg_version = "{runs}"\n'
    ) in err
    database = json.loads((project / "plan.json").read_text())["database"]
    assert (database["version"], database["pg_version"]) == (live, said)
    assert (f"- **PostgreSQL version**: the database runs PostgreSQL {runs}, but pg_version") in (
        project / "plan.md"
    ).read_text()


def test_plan_with_the_right_pg_version_records_it_and_says_nothing(
    project: Path, pg_server: Server, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    _production_is(project, major_version(pg_server.version))
    assert main(["plan", "--env", "production"]) == 0
    assert "pg_version" not in capsys.readouterr().err
    database = json.loads((project / "plan.json").read_text())["database"]
    assert database["pg_version"] == major_version(pg_server.version)
    assert "PostgreSQL version" not in (project / "plan.md").read_text()

"""Security: hostile names stay names, passwords stay secret, and production's refusals hold
against every flag, variable and configuration outside production's own definition."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from migrail.core.config import Environment
from migrail.core.urls import libpq_conninfo
from migrail.main import main
from migrail.postgres import cluster
from migrail.postgres.database import connect
from migrail.postgres.ephemeral import Server
from migrail.postgres.identity import record_identity
from testing.postgres import database_names, query, version
from testing.projects import write_revision

HOSTILE = [
    'x"; DROP TABLE canary; --',
    "t;DROP TABLE canary",
    'we\'ird "s"',
    "growth%s",
    "ünï cödé",
]
PASSWORD = "pa55-w0rd-never-shown"


def test_hostile_names_in_revisions_are_names_to_every_command(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A revision creating schemas, tables and columns with hostile names: staging fills them
    with sample rows, migrate applies them, and the canary table outlives it all."""
    write_revision(
        project,
        "0002",
        "hostile",
        "0001",
        f"op.execute(sa.schema.CreateSchema({HOSTILE[2]!r}))\n"
        f"    for schema, name in [(None, n) for n in {HOSTILE!r}] + [({HOSTILE[2]!r}, 'x')]:\n"
        "        op.create_table(name, sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),"
        " sa.Column(name + ' col', sa.Text, nullable=False), schema=schema)",
        f"op.execute(sa.schema.DropSchema({HOSTILE[2]!r}, cascade=True))\n"
        f"    for name in {HOSTILE!r}:\n"
        "        op.drop_table(name)",
    )
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as admin:
        admin.execute("CREATE TABLE canary (alive boolean)")
    code = main(["migrate-staging"])
    err = capsys.readouterr().err
    assert code == 1  # the models lack the tables; what staging made of them is the point
    assert "[✓] round trip: down to base and up to head again" in err, err
    assert all(f"3 in {name}" in err for name in HOSTILE), err  # each got its sample rows
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0
    assert version(database_url) == ["0002"]
    assert query(database_url, "SELECT count(*) FROM canary") == [(0,)]


def test_a_hostile_database_name_is_quoted(
    project: Path, pg_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = 'migrate"; DROP DATABASE postgres; --'
    with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    try:
        url = pg_server.admin_url.set(database=name)
        monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
        assert main(["migrate"]) == 0
        assert version(url) == ["0001"]
        assert "postgres" in database_names(pg_server.admin_url)
    finally:
        with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
            admin.execute(
                psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )


@pytest.fixture(scope="module")
def password_server() -> Iterator[URL]:
    """A private cluster where role ``app`` logs in with PASSWORD (scram), and owns a database."""
    bindir = cluster.find_embedded_bindir() or cluster.find_local_bindir()
    assert bindir is not None
    with cluster.private_cluster(bindir) as running:
        admin = f"postgresql://postgres@/postgres?host={running.socket_dir}"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"CREATE ROLE app LOGIN CREATEDB PASSWORD '{PASSWORD}'")
            connection.execute("CREATE DATABASE agent_armor OWNER app")
            (running.data_dir / "pg_hba.conf").write_text(
                "local all postgres trust\nlocal all all scram-sha-256\n"
            )
            connection.execute("SELECT pg_reload_conf()")
        yield URL.create(
            "postgresql+psycopg",
            username="app",
            password=PASSWORD,
            database="agent_armor",
            query={"host": str(running.socket_dir)},
        )


def test_no_password_in_any_output_log_plan_or_report(
    project: Path, password_server: URL, tmp_path: Path
) -> None:
    """Every command that reaches the database, run as a process with the password in its URLs;
    then every byte it printed and every file under the project is searched for it."""
    url = password_server.render_as_string(hide_password=False)
    admin = password_server.set(database="postgres").render_as_string(hide_password=False)
    env = {
        "DATABASE_URL": url,
        "PRODUCTION_DATABASE_URL": url,
        "MIGRAIL_ADMIN_URL": admin,  # the throwaway databases, on the same server as app
        "MIGRAIL_ACTOR": "alice",
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
    }
    write_revision(
        project, "0002", "note", "0001", 'op.add_column("tasks", sa.Column("note", sa.Text()))'
    )
    commands = [
        ["status"],
        ["migrate", "--sql"],
        ["migrate-staging", "--report", "report.md"],
        ["plan", "--env", "production", "--force"],
        ["approve", "plan.json"],
        ["apply", "--plan", "plan.json"],
        ["status", "--env", "production", "--debug"],
        ["drift", "--env", "production"],
        ["migrate", "--env", "development"],
        ["push", "--env", "development", "--yes"],
    ]
    printed = []
    for arguments in commands:
        actor = {"MIGRAIL_ACTOR": "bob"} if arguments[0] == "approve" else {}
        done = subprocess.run(
            [sys.executable, "-m", "migrail", *arguments],
            cwd=project,
            env={**env, **actor},
            capture_output=True,
            text=True,
            timeout=300,
        )
        printed.append((arguments, done.returncode, done.stdout + done.stderr))
    assert printed[5][1] == 0, printed[5]  # the release went through
    assert "***" in printed[0][2]  # the URL was shown, masked
    leaks = [arguments for arguments, _, text in printed if PASSWORD in text]
    assert leaks == []
    files = [path for path in project.rglob("*") if path.is_file()]
    assert {"plan.json", "plan.md", "report.md"} <= {path.name for path in files}
    assert [path for path in files if PASSWORD.encode() in path.read_bytes()] == []


FLAG_SETS = [[], ["--yes"], ["--debug"], ["--yes", "--debug"], ["--project", "."]]
VARIABLES = [
    {},
    {"MIGRAIL_EPHEMERAL": "server"},
    {"MIGRAIL_KEEP_WARM": "1"},
    {"MIGRAIL_ACTOR": "ci"},
    {"MIGRAIL_PROTECTED": "0", "MIGRAIL_FORCE": "1", "MIGRAIL_ENV": "development"},
    {"DATABASE_URL": "postgresql://app@127.0.0.1:1/x"},
]


@pytest.mark.parametrize(
    ("command", "flags", "variables"),
    [
        (command, flags, variables)
        for command, flags, variables in itertools.product(
            ["push", "migrate"], FLAG_SETS, VARIABLES
        )
        if command == "push" or "--yes" not in flags
    ],
)
def test_production_refusals_hold_against_every_flag_and_variable(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    flags: list[str],
    variables: dict[str, str],
) -> None:
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", "postgresql://app@127.0.0.1:1/prod")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert main([command, "--env", "production", *flags]) == 2
    assert f"error: {command} is refused: " in capsys.readouterr().err


@pytest.mark.parametrize("command", ["push", "migrate"])
def test_production_reached_through_another_environment_is_refused(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """Configuration outside production's own definition: an unprotected alias for its URL,
    and a default environment; the database itself says what it is."""
    with connect(database_url) as connection:
        record_identity(connection, Environment("production", "PRODUCTION_DATABASE_URL", True))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + '\n[tool.migrail.environments.hotfix]\nurl_env = "HOTFIX_DATABASE_URL"\n'
    )
    monkeypatch.setenv("HOTFIX_DATABASE_URL", database_url.render_as_string(hide_password=False))
    flags = ["--yes"] if command == "push" else []
    assert main([command, "--env", "hotfix", *flags]) == 2
    assert "the database says it is production, a protected environment" in (
        capsys.readouterr().err
    )
    assert version(database_url) == []
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.migrail]\n", '[tool.migrail]\ndefault_environment = "production"\n'
        )
    )
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", "postgresql://app@127.0.0.1:1/prod")
    assert main([command, *flags]) == 2  # production by default is production all the same
    assert f"error: {command} is refused: " in capsys.readouterr().err


@pytest.mark.parametrize("variables", VARIABLES)
@pytest.mark.parametrize("flags", [[], ["--debug"], ["--project", "."]])
def test_an_unapproved_plan_is_refused_whatever_the_flags_and_variables(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    variables: dict[str, str],
) -> None:
    from migrail.release.plan import Plan, write_plan

    plan = Plan("production", {"name": "prod"}, [], "0001", [], author="alice")
    write_plan(plan.seal(), project / "plan.json")
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", "postgresql://app@127.0.0.1:1/prod")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert main(["apply", "--plan", "plan.json", *flags]) == 2
    assert "error: apply is refused: plan sha256:" in capsys.readouterr().err

"""The command line as users run it: start-up, exit codes, signals, and the repo's own workflow."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail import __version__
from migrail.postgres.ephemeral import Server
from testing.postgres import run_database, run_leftovers, templates_of
from testing.projects import add_priority_to_task, copy_repository, write_revision


def _migrail(*args: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrail", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,  # type: ignore[call-overload]
    )


def test_version_and_help(tmp_path: Path) -> None:
    assert _migrail("--version", cwd=tmp_path).stdout == f"migrail {__version__}\n"
    usage = _migrail("--help", cwd=tmp_path).stdout
    for command in ("generate", "migrate-staging", "migrate", "status"):
        assert command in usage


def test_start_up_imports_nothing_heavy() -> None:
    """Hooks call migrail on every commit; SQLAlchemy, Alembic and rich load only when used."""
    code = "import sys, migrail.main; print(sorted({'sqlalchemy', 'alembic', 'rich'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_signal_during_staging_exits_cleanly_and_drops_the_database(
    project: Path, pg_server: Server, signum: int, code: int, message: str
) -> None:
    """The signal lands while the run's own database runs the slow revision (seen on the
    server, by the run's application name): a run that never got there fails the test."""
    write_revision(project, "0002", "slow", "0001", 'op.execute("SELECT pg_sleep(60)")')
    application = f"mt_signal_{os.getpid()}_{secrets.token_hex(3)}"
    run = subprocess.Popen(
        [sys.executable, "-m", "migrail", "migrate-staging"],
        cwd=project,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PGAPPNAME": application},
        # As from a terminal: under a shell without job control (a background job, some CI
        # runners) SIGINT is ignored, and the run would rightly ignore it too.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    staging = run_database(pg_server.admin_url, application, run, "SELECT pg_sleep(60)")
    run.send_signal(signum)
    _, err = run.communicate(timeout=30)
    assert run.returncode == code, err
    assert err.startswith("Staging on a throwaway database"), err
    assert err.endswith(
        f"error: {message} during the upgrade of 0002_slow (staging phase: upgrade): stopped "
        "there and rolled back, none of it applied\n"
    ), err
    assert run_leftovers(pg_server.admin_url, staging) == set(), err
    # Its copy of the database at 0001 was not proven: no template of this project was kept.
    assert not templates_of(pg_server.admin_url, project), err


def test_the_repository_workflow_add_a_column_generate_and_prove(
    tmp_path: Path, pg_server: Server
) -> None:
    """The README's everyday workflow, on a copy of this repository's own project."""
    root = copy_repository(tmp_path / "repo")
    add_priority_to_task(root)
    generated = _migrail("generate", "add_priority", cwd=root)
    assert generated.returncode == 0, generated.stderr
    assert (root / "migrations" / "versions" / "0002_add_priority.py").is_file()
    sql = (root / "migrations" / "sql" / "0002_add_priority.sql").read_text()
    assert "ALTER TABLE tasks ADD COLUMN priority INTEGER DEFAULT '0' NOT NULL;" in sql
    staged = _migrail("migrate-staging", cwd=root)
    assert staged.returncode == 0, staged.stderr
    assert "0002_add_priority" in staged.stderr
    assert "[✓] models match the schema at head" in staged.stderr
    (root / "migrations" / "versions" / "0002_add_priority.py").write_text(
        (root / "migrations" / "versions" / "0002_add_priority.py")
        .read_text()
        .replace(
            "def upgrade() -> None:\n", "def upgrade() -> None:\n    op.execute('SELECT 1/0')\n"
        )
    )
    failed = _migrail("migrate-staging", cwd=root)
    assert failed.returncode == 1
    assert (
        "error: upgrade of 0002_add_priority failed: division by zero (SQLSTATE 22012)"
        in failed.stderr
    )


def test_a_revision_imports_a_module_of_the_project_in_every_command(
    project: Path, database_url: URL
) -> None:
    """As ``prepend_sys_path = .`` in alembic.ini: the project root is importable wherever the
    history is loaded, as it was for migrate-staging (which imports the models first) only."""
    (project / "billing_helpers.py").write_text('REFRESH = "SELECT 1"\n')
    write_revision(
        project,
        "0002",
        "refresh",
        "0001",
        "op.execute(billing_helpers.REFRESH)",
        extra="import billing_helpers",
    )
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["DATABASE_URL"] = database_url.render_as_string(hide_password=False)
    command = Path(sys.executable).parent / "migrail"  # as installed: no project on sys.path
    for argv in (["sum", "--update"], ["lint"], ["check"], ["status"], ["migrate"], ["status"]):
        run = subprocess.run(
            [command, *argv], cwd=project, env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, (argv, run.stderr)
    assert "database at: 0002_refresh\n" in run.stderr

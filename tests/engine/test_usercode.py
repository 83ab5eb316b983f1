"""An exit from the project's code (a revision, env.py, the models) is a failure that names where
it happened, never a success, and leaves nothing of the revision applied.

Run as real processes: an exit that escapes migrail ends the process with the code the user's
code chose, which is what these tests must see.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.postgres.ephemeral import Server
from testing.postgres import columns, query, version
from testing.projects import write_revision

# The ways the project's code ends a process, and how migrail names each.
EXITS = {
    "sys.exit()": ("import sys\n    sys.exit()", "SystemExit(None)"),
    "raise SystemExit(0)": ("raise SystemExit(0)", "SystemExit(0)"),
    "sys.exit with a message": ('import sys\n    sys.exit("done")', "SystemExit('done')"),
    "os._exit(0)": ("import os\n    os._exit(0)", "os._exit(0)"),
}
VERDICT = "an exit from user code is a failure, not a success"


def _migrail(project: Path, *arguments: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    completed = subprocess.run(
        [sys.executable, "-m", "migrail", *arguments],
        cwd=project,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return completed.returncode, completed.stderr


def _exiting_revision(project: Path, exit_code: str, *, in_downgrade: bool = False) -> int:
    """0002 adds tasks.note, then exits (in its upgrade, or in its downgrade); the line of the
    exit is returned."""
    add = 'op.add_column("tasks", sa.Column("note", sa.Text()))'
    drop = 'op.drop_column("tasks", "note")'
    if in_downgrade:
        path = write_revision(project, "0002", "exits", "0001", add, f"{drop}\n    {exit_code}")
    else:
        path = write_revision(project, "0002", "exits", "0001", f"{add}\n    {exit_code}", drop)
    last = exit_code.splitlines()[-1].strip()
    lines = path.read_text().splitlines()
    return max(number for number, line in enumerate(lines, 1) if line.strip() == last)


@pytest.mark.parametrize(("code", "named"), EXITS.values(), ids=EXITS.keys())
def test_an_exit_in_a_revision_fails_migrate_and_applies_none_of_it(
    project: Path, database_url: URL, code: str, named: str
) -> None:
    line = _exiting_revision(project, code)
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 1, err
    error = next(line for line in err.splitlines() if line.startswith("error:"))
    assert error == (
        f"error: upgrade of 0002_exits failed: {named} at migrations/versions/0002_exits.py:{line}: "
        f"{VERDICT} (raise an exception to stop a migration)"
    )
    assert "  the database is at 0001_create_tasks" in err
    assert version(database_url) == ["0001"]
    assert "note" not in columns(database_url, "tasks")
    rows = query(database_url, "SELECT revision, success FROM migrail.history ORDER BY id")
    assert rows == [("0001", True), ("0002", False)]
    assert _migrail(project, "status", env={"DATABASE_URL": url})[0] == 0


def test_an_exit_in_a_library_the_revision_calls_is_named_where_it_left_the_project(
    project: Path, database_url: URL
) -> None:
    """A data migration that runs a click command: click ends with SystemExit(0) on success."""
    (project / "tasks_cli.py").write_text(
        "import sys\n\n\ndef backfill():\n    print('backfilled')\n    sys.exit(0)\n"
    )
    _exiting_revision(project, "import tasks_cli\n    tasks_cli.backfill()")
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 1, err
    assert f"error: upgrade of 0002_exits failed: SystemExit(0) at tasks_cli.py:6: {VERDICT}" in err
    assert version(database_url) == ["0001"]


@pytest.mark.parametrize("in_downgrade", [False, True], ids=["upgrade", "downgrade"])
def test_an_exit_in_a_revision_fails_staging(
    project: Path, pg_server: Server, in_downgrade: bool
) -> None:
    line = _exiting_revision(project, "import sys\n    sys.exit(0)", in_downgrade=in_downgrade)
    returncode, err = _migrail(project, "migrate-staging", "--no-cache")
    assert returncode == 1, err
    direction = "downgrade" if in_downgrade else "upgrade"
    assert (
        f"error: {direction} of 0002_exits failed: SystemExit(0) at "
        f"migrations/versions/0002_exits.py:{line}: {VERDICT}"
    ) in err


def test_an_exit_in_env_py_fails_staging_and_names_env_py(project: Path, pg_server: Server) -> None:
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace("run_migrations()", "import sys\nsys.exit(0)"))
    line = env.read_text().splitlines().index("sys.exit(0)") + 1
    returncode, err = _migrail(project, "migrate-staging", "--no-cache")
    assert returncode == 1, err
    assert f"failed: SystemExit(0) at migrations/env.py:{line}: {VERDICT}" in err


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        ("VERSION_TABLE = os.environ['SHOP_VT']\n", "KeyError: 'SHOP_VT' at migrations/env.py:"),
        ("def broken(:\n", "syntax error in env.py: "),
    ],
    ids=["raises", "syntax"],
)
@pytest.mark.parametrize("command", ["migrate", "migrate-staging"])
def test_env_py_failing_before_any_migration_is_named_not_a_revision_nor_a_bug(
    project: Path, database_url: URL, pg_server: Server, command: str, broken: str, said: str
) -> None:
    """Exit 2 naming env.py (and its line): no revision ran, and migrail is not at fault."""
    env = project / "migrations" / "env.py"
    env.write_text("import os\n" + broken + env.read_text())
    url = database_url.render_as_string(hide_password=False)
    arguments = ["--no-cache"] if command == "migrate-staging" else []
    returncode, err = _migrail(project, command, *arguments, env={"DATABASE_URL": url})
    assert returncode == 2, err
    assert "migrations/env.py" in err and said in err, err
    assert "this is a bug in migrail" not in err
    assert "0001_create_tasks" not in err.split("error: ", 1)[-1]
    assert version(database_url) == []


@pytest.mark.parametrize("command", ["migrate-staging", "generate"])
def test_an_exit_in_the_models_module_fails_and_names_it(
    project: Path, pg_server: Server, command: str
) -> None:
    models = project / "tasks_models.py"
    models.write_text(models.read_text() + "\nimport sys\nsys.exit(0)\n")
    lines = len(models.read_text().splitlines())
    arguments = [command, "add_note"] if command == "generate" else [command]
    returncode, err = _migrail(project, *arguments)
    assert returncode == 1, err
    assert err == (
        f"error: importing the models module 'tasks_models': SystemExit(0) at "
        f"tasks_models.py:{lines}: {VERDICT} (raise an exception to stop a migration)\n"
    )
    assert not list((project / "migrations" / "versions").glob("0002_*"))


def test_an_exit_while_the_revision_files_load_fails_and_names_the_file(
    project: Path, database_url: URL
) -> None:
    path = write_revision(project, "0002", "exits", "0001", "pass")
    path.write_text(path.read_text() + "\nimport sys\nsys.exit(0)\n")
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 1, err
    assert err.startswith(
        "error: loading the revision files: SystemExit(0) at migrations/versions/0002_exits.py:"
    )
    assert version(database_url) == []


def test_an_exit_during_an_approved_apply_fails_and_applies_none_of_it(
    project: Path, database_url: URL
) -> None:
    """The revision exits only when it runs at apply (as a data migration reading production's
    rows may): plan, its measurements and the approval pass; the apply must not."""
    line = _exiting_revision(
        project,
        "import os, sys\n"
        '    if os.environ.get("AT_APPLY") and not op.get_context().as_sql:\n'
        "        sys.exit(0)",
    )
    url = database_url.render_as_string(hide_password=False)
    env = {"PRODUCTION_DATABASE_URL": url, "MIGRAIL_ACTOR": "alice"}
    assert _migrail(project, "plan", "--env", "production", env=env)[0] == 0
    assert _migrail(project, "approve", "plan.json", env={**env, "MIGRAIL_ACTOR": "bob"})[0] == 0
    returncode, err = _migrail(
        project, "apply", "--plan", "plan.json", env={**env, "AT_APPLY": "1"}
    )
    assert returncode == 1, err
    assert "error: upgrade of 0001_create_tasks" not in err
    assert version(database_url) == ["0001"]
    assert "note" not in columns(database_url, "tasks")
    assert (
        "error: upgrade of 0002_exits failed: SystemExit(0) at "
        f"migrations/versions/0002_exits.py:{line}: {VERDICT}"
    ) in err


def test_a_revision_that_exits_when_rendered_fails_the_plan_and_migrate_sql(
    project: Path, database_url: URL
) -> None:
    line = _exiting_revision(project, "import sys\n    sys.exit(0)")
    url = database_url.render_as_string(hide_password=False)
    env = {"PRODUCTION_DATABASE_URL": url, "DATABASE_URL": url, "MIGRAIL_ACTOR": "alice"}
    expected = (
        f"error: 0002_exits cannot be rendered as SQL: SystemExit(0) at "
        f"migrations/versions/0002_exits.py:{line}: {VERDICT} (raise an exception to stop a "
        "migration)\n"
    )
    assert _migrail(project, "plan", "--env", "production", env=env) == (1, expected)
    assert not (project / "plan.json").exists()
    assert _migrail(project, "migrate", "--sql", env=env) == (1, expected)
    assert version(database_url) == []


WAYS_PAST_UNWINDING = {
    "posix._exit(0)": ("import posix\n    posix._exit(0)", "os._exit(0)"),
    "os.execv of true": (
        'import os\n    os.execv("/bin/true", ["true"])',
        "os.execv('/bin/true', ...)",
    ),
    "os.execlp of true": ('import os\n    os.execlp("true", "true")', "os.execvp"),
}


@pytest.mark.parametrize(
    ("code", "named"), WAYS_PAST_UNWINDING.values(), ids=WAYS_PAST_UNWINDING.keys()
)
def test_an_exit_that_skips_unwinding_is_a_failure_too(
    project: Path, database_url: URL, code: str, named: str
) -> None:
    line = _exiting_revision(project, code)
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 1, err
    assert "error: upgrade of 0002_exits failed: os." in err
    assert f"at migrations/versions/0002_exits.py:{line}: {VERDICT}" in err
    assert version(database_url) == ["0001"]
    assert "note" not in columns(database_url, "tasks")


def test_a_base_exception_from_a_revision_is_its_failure_not_a_traceback(
    project: Path, database_url: URL
) -> None:
    line = _exiting_revision(project, 'raise BaseException("stop here")')
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 1, err
    assert "Traceback" not in err
    assert (
        "error: upgrade of 0002_exits failed: BaseException: stop here at "
        f"migrations/versions/0002_exits.py:{line}\n"
    ) in err
    assert version(database_url) == ["0001"]


@pytest.mark.parametrize(
    "registered", ["atexit.register(os._exit, 0)", "atexit.register(lambda: os._exit(0))"]
)
def test_an_exit_registered_for_later_cannot_turn_a_failure_into_success(
    project: Path, database_url: URL, registered: str
) -> None:
    """An exit handler that ends the process with 0, then a failure: the run still ends with 1
    (the lambda looks ``os._exit`` up when the handlers run, after the revisions)."""
    _exiting_revision(project, f'import atexit, os\n    {registered}\n    op.execute("SELECT 1/0")')
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 1, err
    assert "Traceback" not in err
    assert "error: upgrade of 0002_exits failed: division by zero" in err


def test_an_exit_from_a_thread_of_the_revision_fails_it(project: Path, database_url: URL) -> None:
    """Refused in the thread, it would end only the thread: the revision fails all the same."""
    line = _exiting_revision(
        project,
        "import os, threading\n"
        "    worker = threading.Thread(target=lambda: os._exit(0))\n"
        "    worker.start()\n"
        "    worker.join()",
    )
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 1, err
    assert (
        "error: upgrade of 0002_exits failed: os._exit(0) in a thread of the project's code at "
        "migrations/versions/0002_exits.py:"
    ) in err, err
    assert line > 0
    assert version(database_url) == ["0001"]
    assert "note" not in columns(database_url, "tasks")


def test_a_child_the_revision_forks_ends_there_and_runs_none_of_migrail(
    project: Path, database_url: URL
) -> None:
    """The child exits with 0 where the revision's code ends; only the parent goes on."""
    _exiting_revision(
        project,
        "import os, sys\n    if os.fork() == 0:\n        sys.exit(0)\n    os.wait()",
    )
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 0, err
    assert err.count("Applied 2 revision(s)") == 1
    assert "error" not in err
    assert version(database_url) == ["0002"]
    assert "note" in columns(database_url, "tasks")


def test_an_exit_in_env_py_after_the_revisions_committed_blames_no_revision(
    project: Path, database_url: URL
) -> None:
    """env.py exits once Alembic is done: every revision is applied and recorded as such."""
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().rstrip("\n") + "\nimport os\nos._exit(0)\n")
    line = len(env.read_text().splitlines())
    url = database_url.render_as_string(hide_password=False)
    returncode, err = _migrail(project, "migrate", env={"DATABASE_URL": url})
    assert returncode == 1, err
    assert "statement: COMMIT" not in err
    assert (
        f"error: upgrade failed after 0001_create_tasks: os._exit(0) at migrations/env.py:{line}: "
        f"{VERDICT}"
    ) in err
    assert version(database_url) == ["0001"]
    assert query(database_url, "SELECT revision, success FROM migrail.history") == [("0001", True)]


def test_an_apply_whose_revision_exits_as_it_is_rendered_says_so(
    project: Path, database_url: URL
) -> None:
    """Not "the SQL differs from the approved": the exit is the revision's failure."""
    line = _exiting_revision(
        project, 'import os, sys\n    if os.environ.get("AT_APPLY"):\n        sys.exit(0)'
    )
    url = database_url.render_as_string(hide_password=False)
    env = {"PRODUCTION_DATABASE_URL": url, "MIGRAIL_ACTOR": "alice"}
    assert _migrail(project, "plan", "--env", "production", env=env)[0] == 0
    assert _migrail(project, "approve", "plan.json", env={**env, "MIGRAIL_ACTOR": "bob"})[0] == 0
    returncode, err = _migrail(
        project, "apply", "--plan", "plan.json", env={**env, "AT_APPLY": "1"}
    )
    assert (returncode, err) == (
        1,
        f"error: 0002_exits cannot be rendered as SQL: SystemExit(0) at "
        f"migrations/versions/0002_exits.py:{line}: {VERDICT} (raise an exception to stop a "
        "migration)\n",
    )
    assert version(database_url) == []

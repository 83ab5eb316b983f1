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

from migrail.core.urls import libpq_conninfo
from migrail.main import main
from migrail.postgres.catalog import schema_facts
from migrail.postgres.database import MIGRATE_LOCK_KEY, connect
from testing.postgres import columns, login_role, query, run_sql, version
from testing.processes import terminated_while_locking
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
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["migrate", "--sql"]) == 0
    assert capsys.readouterr() == (
        "",
        "[✓] Nothing pending: development is at 0001_create_tasks, the head\n",
    )


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


def test_a_waiting_migrate_lets_the_running_one_build_an_index_concurrently(
    project: Path, target: URL
) -> None:
    """CREATE INDEX CONCURRENTLY waits for every older snapshot: a migrate waiting for the lock
    must not hold one, or the two wait for each other until one is killed as a deadlock."""
    run_sql(target, "CREATE TABLE events (id int)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    with psycopg.connect(libpq_conninfo(target), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
        waiting = subprocess.Popen(
            [sys.executable, "-m", "migrail", "migrate"],
            cwd=project,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        lines = iter(waiting.stderr.readline, "")
        assert any(line == "Waiting for another migrate to finish...\n" for line in lines)
        # The lock's holder builds an index as a running migrate would; past deadlock_timeout
        # (1 s) a deadlock would have been detected.
        holder.execute("SET statement_timeout = '30s'")
        holder.execute("CREATE INDEX CONCURRENTLY events_id ON events (id)")
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))
    err = waiting.communicate(timeout=60)[1]
    assert waiting.returncode == 0, err
    assert version(target) == ["0001"]
    assert query(
        target, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_id'::regclass"
    ) == [(True,)]


def test_a_failure_after_an_autocommit_block_says_what_it_left_committed(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """An autocommit block commits what ran before it: the column and the index stay though
    the revision failed and its version is missing, and the report says so."""
    write_revision(
        project,
        "0002",
        "index_then_fail",
        "0001",
        'op.add_column("tasks", sa.Column("prio", sa.Integer()))\n'
        "    with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE INDEX CONCURRENTLY tasks_name ON tasks (name)")\n'
        '    op.execute("SELECT 1/0")',
    )
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert (
        "  0002_index_then_fail had committed part of its work before it failed: what ran "
        "before and inside its autocommit_block() stays in the database, without its version."
    ) in err, err
    assert "the database is at 0001_create_tasks" in err
    assert version(target) == ["0001"]
    assert "prio" in columns(target, "tasks")


def test_a_failure_without_an_autocommit_block_says_nothing_was_committed(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "fail",
        "0001",
        'op.add_column("tasks", sa.Column("prio", sa.Integer()))\n    op.execute("SELECT 1/0")',
    )
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "division by zero" in err
    assert "committed part of its work" not in err
    assert "prio" not in columns(target, "tasks")


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


_ALTERED_BY_HAND = (
    "hint: migrail.history was altered by hand: remove what refuses migrail's rows "
    "(a constraint, a trigger, a rule, a changed column)\n"
)
_REFUSE = (
    "CREATE FUNCTION migrail.refuse() RETURNS trigger LANGUAGE plpgsql AS "
    "$$BEGIN RAISE EXCEPTION 'the ledger is frozen'; END$$; "
)
LEDGERS_ALTERED = [
    (
        "a column dropped",
        "ALTER TABLE migrail.history DROP COLUMN checksum",
        "error: migrail.history has no column checksum, which migrail records (it was altered by "
        "hand)\nhint: add it back: ALTER TABLE migrail.history ADD COLUMN checksum text\n",
    ),
    (
        "a CHECK that rejects the row",
        "ALTER TABLE migrail.history ADD CONSTRAINT only_0001 CHECK (revision = '0001')",
        "error: migrail.history refused the record of revision 0002: new row for relation "
        '"history" violates check constraint "only_0001" (SQLSTATE 23514)\n' + _ALTERED_BY_HAND,
    ),
    (
        "a trigger that raises",
        _REFUSE + "CREATE TRIGGER refuse BEFORE INSERT ON migrail.history "
        "FOR EACH ROW EXECUTE FUNCTION migrail.refuse()",
        "error: migrail.history refused the record of revision 0002: the ledger is frozen "
        "(SQLSTATE P0001)\n" + _ALTERED_BY_HAND,
    ),
    (
        "a deferred trigger that raises at COMMIT",
        _REFUSE + "CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON migrail.history "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION migrail.refuse()",
        "error: migrail.history refused the record of revision 0002: the ledger is frozen "
        "(SQLSTATE P0001)\n" + _ALTERED_BY_HAND,
    ),
    (
        "the table replaced by a view",
        "ALTER TABLE migrail.history RENAME TO history_kept; "
        "CREATE VIEW migrail.history AS SELECT * FROM migrail.history_kept",
        "error: migrail.history is a view, not the table migrail records applied revisions in\n"
        "hint: move it out of the way (rename or drop it), and migrail makes its table again\n",
    ),
]


@pytest.mark.parametrize(
    ("alter", "expected"), [c[1:] for c in LEDGERS_ALTERED], ids=[c[0] for c in LEDGERS_ALTERED]
)
def test_a_ledger_altered_by_hand_is_named_before_anything_is_applied(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str], alter: str, expected: str
) -> None:
    """Not the innocent revision, nor its COMMIT: the revision and its row share a transaction,
    so a row the ledger refuses would take the revision down with it."""
    assert main(["migrate"]) == 0
    run_sql(target, alter)
    write_revision(project, "0002", "add_marker", "0001", 'op.execute("CREATE TABLE marker ()")')
    with connect(target) as connection:
        before = schema_facts(connection)
    capsys.readouterr()
    assert main(["migrate"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("1 pending: 0002_add_marker\n" + expected)
    assert version(target) == ["0001"]
    with connect(target) as connection:
        assert schema_facts(connection) == before


def test_a_ledger_that_refuses_a_row_mid_run_rolls_that_revision_back(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trigger that refuses rows only once the revision ran, which no check up front sees."""
    assert main(["migrate"]) == 0
    run_sql(
        target,
        "CREATE FUNCTION migrail.no_marker() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
        "IF to_regclass('public.marker') IS NOT NULL THEN RAISE EXCEPTION 'not with a marker'; "
        "END IF; RETURN NEW; END$$; CREATE TRIGGER no_marker BEFORE INSERT ON migrail.history "
        "FOR EACH ROW EXECUTE FUNCTION migrail.no_marker()",
    )
    write_revision(project, "0002", "nothing", "0001", "pass")
    write_revision(project, "0003", "add_marker", "0002", 'op.execute("CREATE TABLE marker ()")')
    capsys.readouterr()
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "[✓] 0002_nothing (" in err
    assert err.endswith(
        "error: migrail.history refused the record of revision 0003: not with a marker (SQLSTATE "
        "P0001); 0003_add_marker was rolled back with it, and the database is at 0002_nothing\n"
        + _ALTERED_BY_HAND
    )
    assert version(target) == ["0002"]
    assert query(target, "SELECT to_regclass('marker')") == [(None,)]
    assert query(target, "SELECT revision FROM migrail.history ORDER BY id") == [
        ("0001",),
        ("0002",),
    ]


def test_a_failure_the_ledger_refuses_to_record_is_still_reported(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    run_sql(target, "ALTER TABLE migrail.history ADD CONSTRAINT successes_only CHECK (success)")
    write_revision(project, "0002", "bad_cast", "0001", "op.execute(\"SELECT 'x'::integer\")")
    capsys.readouterr()
    assert main(["migrate"]) == 1
    assert capsys.readouterr().err.endswith(
        'error: upgrade of 0002_bad_cast failed: invalid input syntax for type integer: "x" '
        "(SQLSTATE 22P02)\n"
        "  statement: SELECT 'x'::integer\n"
        "  not recorded: migrail.history refused the record of revision 0002: new row for "
        'relation "history" violates check constraint "successes_only" (SQLSTATE 23514)\n'
        "  the database is at 0001_create_tasks\n"
    )
    assert version(target) == ["0001"]


def test_a_role_that_may_not_create_schema_migrail_is_told_the_sql_before_anything_is_applied(
    project: Path, target: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = target.database
    with login_role(target, "GRANT USAGE, CREATE ON SCHEMA public TO {role}") as (role, as_role):
        monkeypatch.setenv("DATABASE_URL", as_role.render_as_string(hide_password=False))
        assert main(["migrate"]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.endswith(
            f"error: role {role} cannot create schema migrail, where migrail records what it "
            f"applies: it needs CREATE on database {database}\n"
            f"hint: an owner of the database runs once: CREATE SCHEMA migrail AUTHORIZATION "
            f"{role}; (or: GRANT CREATE ON DATABASE {database} TO {role})\n"
        )
        assert version(target) == []
        assert query(target, "SELECT to_regclass('tasks')") == [(None,)]
        run_sql(target, f"CREATE SCHEMA migrail AUTHORIZATION {role}")  # as the hint says
        assert main(["migrate"]) == 0
        assert version(target) == ["0001"]
        assert query(target, "SELECT revision FROM migrail.history") == [("0001",)]


def test_sigterm_cancels_the_running_revision_and_releases_its_locks_at_once(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """As Ctrl-C does: a CI job cancelled mid-revision must not leave the server running it,
    holding its table locked, for up to statement_timeout."""
    assert main(["migrate"]) == 0
    lock = 'op.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")'
    write_revision(
        project, "0002", "slow", "0001", f'{lock}\n    op.execute("SELECT pg_sleep(20)")'
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "migrail", "migrate"],
        cwd=project,
        env=os.environ,
        stderr=subprocess.PIPE,
        text=True,
    )
    released = terminated_while_locking(run, target, "tasks", "pg_sleep(20)")
    _, err = run.communicate(timeout=30)
    assert run.returncode == 143, err
    assert err.endswith(
        "error: terminated during the upgrade of 0002_slow: stopped there and rolled back, none "
        "of it applied\n  the database is at 0001_create_tasks\n"
    ), err
    assert released < 2, "the server went on running the revision, holding its lock"
    assert version(target) == ["0001"]
    rows = query(target, "SELECT revision, success, error FROM migrail.history ORDER BY id")
    assert rows == [("0001", True, None), ("0002", False, "terminated")]
    write_revision(project, "0002", "slow", "0001", lock)
    capsys.readouterr()
    assert main(["migrate"]) == 0, capsys.readouterr().err
    assert version(target) == ["0002"]


@pytest.mark.parametrize(
    ("argv", "table"),
    [
        (["migrate"], "alembic_version"),
        (["migrate", "--sql"], "alembic_version"),
        (["status"], "alembic_version"),
        (["migrate"], "migrail.history"),
        (["status"], "migrail.history"),
    ],
)
def test_a_bookkeeping_table_locked_by_another_session_stops_the_command_at_lock_timeout(
    project: Path, target: URL, argv: list[str], table: str
) -> None:
    """Without a lock_timeout on migrail's own reads and writes, each waited forever, silent."""
    assert main(["migrate"]) == 0
    write_revision(
        project,
        "0002",
        "add_note",
        "0001",
        'op.add_column("tasks", sa.Column("note", sa.Text()))',
        downgrade='op.drop_column("tasks", "note")',
    )
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"', 'migrations = "migrations"\nlock_timeout = "300ms"'
        )
    )
    with psycopg.connect(libpq_conninfo(target), application_name="nightly-report") as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # type: ignore[arg-type]
        run = subprocess.run(
            [sys.executable, "-m", "migrail", *argv],
            cwd=project,
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        pid, user = holder.info.backend_pid, holder.info.user
    assert (run.returncode, run.stdout) == (2, ""), run.stderr
    assert run.stderr.endswith(
        f"error: {argv[0]} waited longer than lock_timeout 300ms for table {table}: process "
        f'{pid} (user {user}, application "nightly-report", idle in transaction) holds an '
        "ACCESS EXCLUSIVE lock on it\n"
        f"hint: run {argv[0]} again once that transaction ends, or end it: "
        f"SELECT pg_terminate_backend({pid})\n"
    ), run.stderr
    assert version(target) == ["0001"]
    assert "note" not in columns(target, "tasks")


def test_a_read_only_session_is_refused_before_anything_is_attempted(
    project: Path, target: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replica, or default_transaction_read_only: was "migrail.history was altered by hand"."""
    url = target.update_query_dict({"options": "-c default_transaction_read_only=on"})
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 2
    assert capsys.readouterr() == (
        "",
        "error: migrate is refused: the database session is read-only: "
        "default_transaction_read_only is on (set by: client)\n"
        "hint: remove -c default_transaction_read_only=on from the URL's options\n",
    )
    assert version(target) == []
    assert query(target, "SELECT to_regnamespace('migrail')") == [(None,)]
    database = target.database
    with login_role(
        target,
        f"GRANT CREATE ON DATABASE {database} TO {{role}}",
        "GRANT CREATE ON SCHEMA public TO {role}",
        "ALTER ROLE {role} SET default_transaction_read_only = on",
    ) as (role, as_role):
        monkeypatch.setenv("DATABASE_URL", as_role.render_as_string(hide_password=False))
        assert main(["migrate"]) == 2
        assert capsys.readouterr() == (
            "",
            "error: migrate is refused: the database session is read-only: "
            "default_transaction_read_only is on (set by: user)\n"
            f"hint: ALTER ROLE {role} RESET default_transaction_read_only (or connect as a "
            "role that may write)\n",
        )
        run_sql(target, f"ALTER ROLE {role} RESET default_transaction_read_only")  # the hint
        assert main(["migrate"]) == 0
        assert version(target) == ["0001"]  # what the role owns goes with it


def test_a_failing_statement_that_sets_a_password_shows_and_records_no_piece_of_it(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """The statement is printed, reported and recorded as it failed: its password is not."""
    pieces = ("S3cr", "ǂX", "Xy☃")
    write_revision(
        project,
        "0002",
        "reporting_role",
        "0001",
        "op.execute(\"CREATE ROLE reporting LOGIN PASSWORD 'S3cr''ǂXy☃' IN ROLE no_such_group\")",
    )
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "  statement: CREATE ROLE reporting LOGIN PASSWORD '***' IN ROLE no_such_group\n" in err
    assert main(["migrate-staging", "--report", "report.md"]) == 1
    err += capsys.readouterr().err + (project / "report.md").read_text()
    recorded = query(target, "SELECT error FROM migrail.history WHERE NOT success")
    assert recorded == [('role "no_such_group" does not exist (SQLSTATE 42704)',)]
    shown = err + str(recorded)
    assert not [piece for piece in pieces if piece in shown], shown
    assert query(target, "SELECT 1 FROM pg_roles WHERE rolname = 'reporting'") == []


def test_a_revision_that_leaves_an_invalid_index_fails_naming_it(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """A unique build that failed, retried with IF NOT EXISTS, looks applied: it is not."""
    from testing.projects import INVALID_INDEX_DOWNGRADE, INVALID_INDEX_UPGRADE

    write_revision(
        project, "0002", "unique_names", "0001", INVALID_INDEX_UPGRADE, INVALID_INDEX_DOWNGRADE
    )
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert (
        "upgrade of 0002_unique_names failed: it leaves INVALID index public.ix_tasks_name "
        "(pg_index.indisvalid is false)"
    ) in err
    assert "DROP INDEX CONCURRENTLY public.ix_tasks_name" in err
    assert version(target) == ["0001"], "its version is not recorded"

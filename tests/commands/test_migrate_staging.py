"""``migrail migrate-staging``: up, models, down, up again, on a database that is always dropped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.postgres import left_behind
from testing.projects import (
    add_priority_column,
    add_priority_with_revision,
    midcommit_history,
    write_revision,
)


def _run(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["migrate-staging"])
    return code, capsys.readouterr().err


def _write_failing_revision(project: Path) -> None:
    """Revision 0002_add_priority, whose upgrade fails: its column type does not exist."""
    write_revision(
        project,
        "0002",
        "add_priority",
        "0001",
        'op.execute("ALTER TABLE tasks ADD COLUMN priority nosuchtype")',
    )


def test_a_sound_history_passes_and_leaves_no_database(
    project: Path,
    pg_server: Server,
    throwaway_names: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _run(capsys)
    assert code == 0
    assert err.startswith("Staging on a throwaway database: server from MIGRAIL_ADMIN_URL")
    assert "│ 0001_create_tasks │" in err
    assert "[✓] models match the schema at head\n" in err
    assert err.endswith("[✓] round trip: down to base and up to head again\n")
    assert left_behind(pg_server.admin_url, throwaway_names) == set()


def test_a_failing_revision_is_named_with_its_statement_and_error(
    project: Path,
    pg_server: Server,
    throwaway_names: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _write_failing_revision(project)
    code, err = _run(capsys)
    assert code == 1
    assert "│ 0002_add_priority │" in err and "upgrade failed" in err
    assert (
        'error: upgrade of 0002_add_priority failed: type "nosuchtype" does not exist '
        "(SQLSTATE 42704)\n"
        "  statement: ALTER TABLE tasks ADD COLUMN priority nosuchtype\n"
        "  the tables held sample rows, as production's do (--no-data runs without them)\n"
        "  the database was at revision 0001_create_tasks when it stopped\n"
    ) in err
    assert "models: not checked (the upgrade failed first)\n" in err
    assert left_behind(pg_server.admin_url, throwaway_names) == set()


@pytest.mark.parametrize(
    ("upgrade", "shown"),
    [
        (
            'raise RuntimeError("cannot reach postgresql://app:s3cr3t@db/x")',
            "RuntimeError: cannot reach postgresql://app:***@db/x\n",
        ),
        (
            "op.execute(\"SELECT 'postgresql://app:s3cr3t@db/x'::int\")",
            'invalid input syntax for type integer: "postgresql://app:***@db/x" '
            "(SQLSTATE 22P02)\n  statement: SELECT 'postgresql://app:***@db/x'::int\n",
        ),
    ],
)
def test_a_failing_revision_never_shows_a_password_its_error_holds(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    upgrade: str,
    shown: str,
) -> None:
    """The revision's own exception, or the database's error and the failing statement, hold
    a URL with its password: the failure names the revision, and masks the password."""
    write_revision(project, "0002", "copy_remote", "0001", upgrade)
    code = main(["migrate-staging", "--report", "report.md"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: upgrade of 0002_copy_remote failed: {shown}" in err
    assert "s3cr3t" not in err
    assert "s3cr3t" not in (project / "report.md").read_text()


def test_models_ahead_of_the_migrations_fail(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_column(project)
    code, err = _run(capsys)
    assert code == 1
    assert (
        "error: the models and the schema at head differ:\n  + column tasks.priority (INTEGER)\n"
        in err
    )
    assert "hint: write the missing revision: migrail generate NAME\n" in err


def test_a_failing_downgrade_reports_where_the_database_stopped(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "seed",
        "0001",
        "op.execute(\"INSERT INTO tasks (id, name, status) VALUES ('t1', 'n', 'new')\")",
        downgrade='raise NotImplementedError("cannot unseed")',
    )
    code, err = _run(capsys)
    assert code == 1
    assert "error: downgrade of 0002_seed failed: NotImplementedError: cannot unseed\n" in err
    assert (
        '  if 0002_seed cannot be undone, say so in its file: irreversible = "why" (the round '
        "trip then stops above it, and migrate --to refuses to go below it)\n" in err
    )
    assert "the database was at revision 0002_seed when it stopped\n" in err


def test_an_irreversible_revision_is_the_floor_of_the_round_trip(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "drop_owner",
        "0001",
        'op.drop_column("tasks", "owner")',
        downgrade='raise NotImplementedError("owners are gone")',
        extra='irreversible = "the owners are deleted for good"',
    )
    write_revision(
        project,
        "0003",
        "add_owner_back",
        "0002",
        'op.add_column("tasks", sa.Column("owner", sa.Text()))',
        downgrade='op.drop_column("tasks", "owner")',
    )
    code, err = _run(capsys)
    assert code == 0, err
    assert "irreversible: the owners are deleted for good" in err
    assert err.endswith(
        "[✓] round trip: down to 0002_drop_owner (the owners are deleted for good) and up to head again\n"
    )


def test_without_models_the_check_is_skipped_and_said_so(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('metadata = "tasks_models:metadata"\n', ""))
    code, err = _run(capsys)
    assert code == 0
    assert "models: check skipped (no [tool.migrail] metadata configured)\n" in err


def test_an_empty_history_has_nothing_to_prove(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in (project / "migrations" / "versions").iterdir():
        path.unlink()
    code, err = _run(capsys)
    assert code == 0
    assert err.startswith("No revisions in ")


def test_a_new_project_without_revisions_or_a_sum_has_nothing_to_prove(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """git keeps no empty folder: a missing one is no revisions yet, where none are recorded."""
    import shutil

    shutil.rmtree(project / "migrations" / "versions")
    (project / "migrations" / "migrail.sum").unlink()
    code, err = _run(capsys)
    assert (code, err) == (0, f"No revisions in {project}/migrations/versions: nothing to prove\n")
    assert main(["sum", "--update"]) == 0
    assert capsys.readouterr().err == "[✓] recorded 0 revision(s) in migrations/migrail.sum\n"


def test_a_revision_with_an_autocommit_block_round_trips(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """CREATE INDEX CONCURRENTLY runs outside a transaction, in the middle of the revision."""
    write_revision(
        project,
        "0002",
        "index_status",
        "0001",
        "with op.get_context().autocommit_block():\n"
        '        op.create_index("tasks_status", "tasks", ["status"], postgresql_concurrently=True)',
        downgrade='op.drop_index("tasks_status", table_name="tasks")',
    )
    write_revision(project, "0003", "after", "0002", 'op.execute("SELECT 1")')
    code, err = _run(capsys)
    assert code == 1  # the models do not have the index; everything else must hold
    assert "error: the models and the schema at head differ:\n  - index tasks_status\n" in err
    for name in ("0002_index_status", "0003_after"):
        row = next(line for line in err.splitlines() if line.startswith(f"│ {name} "))
        assert row.count(" ms ") == 3, row
    assert err.endswith("[✓] round trip: down to base and up to head again\n")


def test_locks_and_rewrites_are_measured_and_classed(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "shorter_names",
        "0001",
        'op.alter_column("tasks", "name", type_=sa.String(20))',
        'op.alter_column("tasks", "name", type_=sa.Text())',
    )
    write_revision(
        project,
        "0003",
        "index_owner",
        "0002",
        "with op.get_context().autocommit_block():\n"
        '        op.create_index("ix_owner", "tasks", ["owner"], postgresql_concurrently=True)',
        'op.drop_index("ix_owner", table_name="tasks")',
    )
    write_revision(
        project,
        "0004",
        "events",
        "0003",
        'op.create_table("events", sa.Column("id", sa.Text(), primary_key=True))',
        'op.drop_table("events")',
    )
    code, err = _run(capsys)
    assert code == 1  # the models lack these; the measurements are the point here
    rows = {
        line.split("│")[1].strip(): line.split("│")[5].strip()
        for line in err.splitlines()
        if line.startswith("│ 000")
    }
    assert rows == {
        "0001_create_tasks": "",
        "0002_shorter_names": "rewrite: ACCESS EXCLUSIVE on tasks",
        "0003_index_owner": "",  # built outside a transaction, without blocking writes
        "0004_events": "",  # a new table: nobody uses it yet
    }
    assert (
        "error: 0002_shorter_names: rewrite of tasks: it rewrites the whole table under ACCESS "
        "EXCLUSIVE: reads and writes wait for as long as that takes\n"
        "  instead: add a new column, backfill it in batches and swap it in"
    ) in err
    assert "0003_index_owner:" not in err and "0004_events:" not in err


def test_from_a_deployed_revision_only_the_newer_ones_are_proven(
    project: Path,
    pg_server: Server,
    throwaway_names: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_priority_with_revision(project)
    code = main(["migrate-staging", "--from", "0001_create_tasks"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "built at 0001_create_tasks (as deployed); proving only what is newer\n" in err
    # tasks was built before the proof began, so the lock on it is a lock on a deployed table
    assert "│ metadata-only: ACCESS EXCLUSIVE on tasks " in err
    assert (
        "1 revision takes a brief ACCESS EXCLUSIVE for metadata-only changes, bounded by "
        "lock_timeout 5s\n"
    ) in err
    assert "│ 0001_create_tasks │" not in err
    assert err.endswith("[✓] round trip: down to 0001_create_tasks and up to head again\n")
    assert left_behind(pg_server.admin_url, throwaway_names) == set()


def test_from_a_revision_whose_successor_fails_names_the_successor(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_failing_revision(project)
    code = main(["migrate-staging", "--from", "0001"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: upgrade of 0002_add_priority failed" in err
    assert "  the database was at revision 0001_create_tasks when it stopped\n" in err


def test_from_an_unknown_revision_or_the_head_is_said_plainly(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate-staging", "--from", "9999_nothing"]) == 2
    err = capsys.readouterr().err
    assert "--from 9999_nothing: no such revision in" in err
    assert "0001_create_tasks" in err
    assert main(["migrate-staging", "--from", "0001"]) == 0
    assert capsys.readouterr().err == "0001_create_tasks is the head: nothing newer to prove\n"


def test_the_markdown_report_has_timings_locks_lint_and_round_trip(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_with_revision(project)
    write_revision(
        project,
        "0003",
        "index_owner",
        "0002",
        'op.create_index("tasks_owner_idx", "tasks", ["owner"])',
        downgrade='op.drop_index("tasks_owner_idx")',
    )
    path = project / "out" / "report.md"
    # the models lack the index, so the run fails, and the report says what would fix it
    assert main(["migrate-staging", "--report", str(path)]) == 1
    assert f"report written to {path}\n" in capsys.readouterr().err
    text = path.read_text()
    assert text.startswith("## migrate-staging: failed, with ")
    assert text.splitlines()[0].endswith(" failing lint finding(s)")
    row = next(line for line in text.splitlines() if line.startswith("| `0002_add_priority`"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert all(cell.endswith(" ms") for cell in cells[1:4]), cells
    assert cells[4] == "metadata-only: ACCESS EXCLUSIVE on tasks"  # a note, not a failure
    assert cells[5] != "not run"  # squawk ran: "clean" or a count of findings
    index_row = next(line for line in text.splitlines() if line.startswith("| `0003_index_owner`"))
    assert index_row.endswith(" failing, 1 other |") and "| 1 failing" in index_row, index_row
    assert "- `0003_index_owner` line " in text
    assert "**require-concurrent-index-creation** (error)" in text
    assert "**Data:** sample rows: 3 in tasks.\n" in text
    assert (
        "**Locks:** 1 error(s).\n"
        "- **write-blocking-index-build** (error) 0003_index_owner: write-blocking-index-build "
        "of tasks: it builds an index under SHARE: writes wait until it is built; instead: "
        "CREATE INDEX CONCURRENTLY"
    ) in text
    assert (
        "- 1 revision takes a brief ACCESS EXCLUSIVE for metadata-only changes, bounded by "
        "lock_timeout 5s\n"
    ) in text
    assert "**Round trip:** passed, down to `base` and up to head again.\n" in text
    assert "```\n- index tasks_owner_idx\n```\n" in text
    assert "DROP INDEX tasks_owner_idx;" in text


def test_the_markdown_report_shows_the_missing_revision_as_operations_and_sql(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_column(project)
    path = project / "report.md"
    assert main(["migrate-staging", "--report", str(path)]) == 1
    text = path.read_text()
    assert text.startswith("## migrate-staging: failed\n")
    assert "**Models:** differ from the schema at head" in text
    assert "+ column tasks.priority (INTEGER)" in text
    assert "ALTER TABLE tasks ADD COLUMN priority INTEGER DEFAULT '0' NOT NULL;" in text


def test_step_roundtrip_names_a_downgrade_that_leaves_something_behind(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "index_owner",
        "0001",
        'op.create_index("tasks_owner_idx", "tasks", ["owner"])',
        downgrade="pass",  # forgets the index
    )
    path = project / "report.md"
    assert main(["migrate-staging", "--step-roundtrip", "--report", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        "error: 0002_index_owner: its downgrade does not restore the schema from before its "
        "upgrade (+ left behind, - removed):\n"
        "  + index CREATE INDEX tasks_owner_idx ON public.tasks USING btree (owner)\n"
    ) in err
    # and what that breaks: the same upgrade, run again
    assert 'upgrade of 0002_index_owner failed: relation "tasks_owner_idx" already exists' in err
    assert (
        "**Step round trip:** `0002_index_owner`'s downgrade does not restore" in path.read_text()
    )


def test_step_roundtrip_names_a_downgrade_that_removes_what_it_never_added(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "noop",
        "0001",
        'op.execute("SELECT 1")',
        downgrade='op.drop_column("tasks", "owner")',
    )
    assert main(["migrate-staging", "--step-roundtrip"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: 0002_noop: its downgrade does not restore the schema from before its upgrade "
        "(+ left behind, - removed):\n"
        "  - column public.tasks.owner text\n"
    ) in err, err


def test_step_roundtrip_passes_a_sound_history_and_skips_irreversible_revisions(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_with_revision(project)
    write_revision(
        project,
        "0003",
        "forget_defaults",
        "0002",
        'op.execute("SELECT 1")',
        downgrade='raise NotImplementedError("no way back")',
        extra='irreversible = "no way back"',
    )
    assert main(["migrate-staging", "--step-roundtrip"]) == 0
    err = capsys.readouterr().err
    assert "step round trip: skipped 0003_forget_defaults (no way back)\n" in err
    assert (
        "[✓] step round trip: 2 downgrade(s) restored the schema; "
        "1 skipped (declared irreversible)\n"
    ) in err


def test_step_roundtrip_still_measures_locks_on_tables_it_undid_and_redid(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "add_labels",
        "0001",
        'op.execute("CREATE TABLE labels (id int)")',
        downgrade='op.execute("DROP TABLE labels")',
    )
    write_revision(
        project,
        "0003",
        "label_names",
        "0002",
        'op.execute("ALTER TABLE labels ADD COLUMN name text")',
        downgrade='op.execute("ALTER TABLE labels DROP COLUMN name")',
    )
    main(["migrate-staging", "--step-roundtrip"])
    err = capsys.readouterr().err
    assert "│ metadata-only: ACCESS EXCLUSIVE on labels " in err
    assert "1 revision takes a brief ACCESS EXCLUSIVE for metadata-only changes" in err


def test_a_failing_build_at_the_deployed_revision_says_so(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "broken", "0001", 'op.execute("SELECT nosuchcolumn")')
    write_revision(project, "0003", "later", "0002", 'op.execute("SELECT 1")')
    assert main(["migrate-staging", "--from", "0002"]) == 1
    err = capsys.readouterr().err
    assert "error: could not build the database at 0002_broken:\n" in err
    assert "error: upgrade of 0002_broken failed" in err


def _add_priority_without_default(project: Path) -> None:
    """tasks.priority NOT NULL without a default, in the models and in revision 0002."""
    add_priority_column(project)
    models = project / "tasks_models.py"
    models.write_text(models.read_text().replace(', server_default="0"', ""))
    write_revision(
        project,
        "0002",
        "add_priority",
        "0001",
        'op.add_column("tasks", sa.Column("priority", sa.Integer(), nullable=False))',
        'op.drop_column("tasks", "priority")',
    )


def test_a_not_null_column_without_default_fails_only_with_data(
    project: Path,
    pg_server: Server,
    throwaway_names: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _add_priority_without_default(project)
    code, err = _run(capsys)
    assert code == 1
    assert "data: sample rows: 3 in tasks\n" in err
    assert (
        'error: upgrade of 0002_add_priority failed: column "priority" of relation "tasks" '
        "contains null values (SQLSTATE 23502)\n"
        "  statement: ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL\n"
        "  the tables held sample rows, as production's do (--no-data runs without them)\n"
        "  the database was at revision 0001_create_tasks when it stopped\n"
    ) in err
    assert left_behind(pg_server.admin_url, throwaway_names) == set()

    # Without rows the upgrade passes, but it still checks every row under ACCESS EXCLUSIVE
    assert main(["migrate-staging", "--no-data"]) == 1
    err = capsys.readouterr().err
    assert "data: none (--no-data): the revisions ran on empty tables\n" in err
    assert "the tables held sample rows" not in err
    assert "error: 0002_add_priority: scan-under-exclusive of tasks: it scans the whole" in err
    assert err.endswith("[✓] round trip: down to base and up to head again\n")


def test_a_table_made_in_an_autocommit_block_gets_rows_before_the_next_revision(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows are looked for only after a revision that may have made a table: one made in an
    autocommit block holds no lock by the revision's end, and still counts."""
    write_revision(
        project,
        "0002",
        "notes",
        "0001",
        "with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE TABLE notes (id int PRIMARY KEY)")\n'
        '    op.execute("SELECT 1")',
        'op.execute("DROP TABLE notes")',
    )
    write_revision(
        project,
        "0003",
        "note_body",
        "0002",
        'op.add_column("notes", sa.Column("body", sa.Text(), nullable=False))',
        'op.drop_column("notes", "body")',
    )
    code, err = _run(capsys)
    assert code == 1
    assert "data: sample rows: 3 in tasks, 3 in notes\n" in err
    assert (
        'error: upgrade of 0003_note_body failed: column "body" of relation "notes" contains '
        "null values (SQLSTATE 23502)\n"
    ) in err


def test_a_unique_index_over_repeated_values_fails_with_data(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "unique_status",
        "0001",
        'op.create_index("ix_status", "tasks", ["status"], unique=True)',
        'op.drop_index("ix_status", table_name="tasks")',
    )
    code, err = _run(capsys)
    assert code == 1
    assert (
        'error: upgrade of 0002_unique_status failed: could not create unique index "ix_status"'
        in err
    )


def test_a_seed_file_gives_its_table_realistic_rows(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Generated owners are words, which the cast to integer refuses; the seed's are numbers."""
    write_revision(
        project,
        "0002",
        "owner_ids",
        "0001",
        'op.alter_column("tasks", "owner", type_=sa.Integer(), postgresql_using="owner::integer")',
        'op.alter_column("tasks", "owner", type_=sa.Text())',
        extra="# migrail: allow rewrite -- tasks holds a few rows",
    )
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text()
        .replace('Column("owner", Text)', 'Column("owner", Integer)')
        .replace("from sqlalchemy import Column,", "from sqlalchemy import Column, Integer,")
    )
    code, err = _run(capsys)
    assert code == 1
    assert 'invalid input syntax for type integer: "owner 1" (SQLSTATE 22P02)' in err

    seeds = project / "migrations" / "seeds"
    seeds.mkdir()
    (seeds / "tasks.sql").write_text(
        "-- 100% realistic: owners are user ids\n"
        "INSERT INTO tasks (id, name, status, owner) VALUES\n"
        "  ('t1', 'write docs', 'pending', '42'), ('t2', 'ship', 'done', NULL);\n"
        "INSERT INTO tasks (id, name, status, owner) VALUES ('t3', 'test', 'pending', '7');\n"
    )
    code, err = _run(capsys)
    assert code == 0, err
    assert "data: sample rows: 3 in tasks (from migrations/seeds/tasks.sql)\n" in err


def test_a_failing_seed_file_is_named_and_rows_are_generated_instead(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = project / "migrations" / "seeds"
    seeds.mkdir()
    (seeds / "tasks.sql").write_text("INSERT INTO tasks (id, nope) VALUES ('t1', 1);\n")
    code, err = _run(capsys)
    assert code == 0, err
    assert "data: sample rows: 3 in tasks\n" in err
    assert (
        "  seed migrations/seeds/tasks.sql failed, rows were generated instead: "
        'column "nope" of relation "tasks" does not exist (SQLSTATE 42703)\n'
    ) in err


def test_a_table_no_row_can_be_made_for_is_named_and_left_empty(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "shapes",
        "0001",
        'op.execute("CREATE TABLE shapes (id int PRIMARY KEY, area tsrange NOT NULL, '
        'CHECK (NOT isempty(area)))")',
        'op.execute("DROP TABLE shapes")',
    )
    code, err = _run(capsys)
    assert code == 1  # the models lack the table; what its rows got is the point here
    assert "data: sample rows: 3 in tasks\n" in err
    assert (
        '  shapes left empty: new row for relation "shapes" violates check constraint '
        '"shapes_area_check" (SQLSTATE 23514)\n'
    ) in err


def test_a_run_stopped_by_an_error_still_writes_its_report(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "out" / "report.md"
    assert main(["migrate-staging", "--from", "9999", "--report", str(path)]) == 2
    assert path.read_text() == (
        "## migrate-staging: error\n\n"
        f"The run stopped: --from 9999: no such revision in {project}/migrations/versions\n\n"
        "Hint: name a revision by its id or file name, e.g. one of: 0001_create_tasks\n"
    )


def test_a_ci_log_shows_whole_revision_names(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Piped, with no COLUMNS (as in CI), the table is not cut at rich's 80 columns."""
    monkeypatch.delenv("COLUMNS")
    slug = "backfill_the_priority_of_every_task_from_its_owner_settings"
    write_revision(project, "0002", slug, "0001", "pass")
    code, err = _run(capsys)
    assert code == 0, err
    [row] = [line for line in err.splitlines() if f"0002_{slug}" in line]
    assert row.startswith(f"│ 0002_{slug} │")
    assert "…" not in err


def test_a_revision_that_commits_part_way_moves_no_other_revisions_label(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """0002 commits part-way (allowed) before an index made concurrently: the lock 0003 takes
    is 0003's, and every revision has its own time in each phase (none served from a cache)."""
    midcommit_history(project)
    rank = project / "migrations" / "versions" / "0004_rank_tasks.py"
    allow = "# migrail: allow write-blocking-index-build -- tasks holds a few rows\n"
    rank.write_text(allow + rank.read_text())
    code = main(["migrate-staging", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 0
    table = [line.split("│") for line in err.splitlines() if line.startswith("│ 0")]
    rows = {cells[1].strip(): [cell.strip() for cell in cells[2:6]] for cells in table}
    assert {name: cells[3] for name, cells in rows.items()} == {
        "0001_create_tasks": "",
        "0002_index_concurrently": "",
        "0003_add_priority": "metadata-only: ACCESS EXCLUSIVE on tasks",
        "0004_rank_tasks": "write-blocking-index-build: SHARE on tasks",
    }
    for name, cells in rows.items():  # upgrade, downgrade, upgrade again
        assert all(re.fullmatch(r"\d+ ms", cell) for cell in cells[:3]), (name, cells)
    assert (
        "allowed: 0004_rank_tasks: write-blocking-index-build of tasks: it builds an index "
        "under SHARE: writes wait until it is built (the revision says why)\n"
        "1 revision takes a brief ACCESS EXCLUSIVE for metadata-only changes, bounded by "
        "lock_timeout 5s\n"
    ) in err
    assert err.endswith("[✓] round trip: down to base and up to head again\n")


def _merged_history(project: Path) -> None:
    """0002 and 0003 branch from 0001 and 0004 merges them (none of it in the models)."""
    write_revision(
        project,
        "0002",
        "left",
        "0001",
        'op.execute("CREATE VIEW open_tasks AS SELECT id FROM tasks")',
        downgrade='op.execute("DROP VIEW open_tasks")',
    )
    write_revision(
        project,
        "0003",
        "right",
        "0001",
        'op.execute("CREATE SEQUENCE task_numbers")',
        downgrade='op.execute("DROP SEQUENCE task_numbers")',
    )
    write_revision(project, "0004", "merge", ("0002", "0003"), "pass")


def test_step_roundtrip_goes_through_a_merge_and_names_a_later_downgrade(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _merged_history(project)
    write_revision(
        project,
        "0005",
        "note_text",
        "0004",
        'op.execute("ALTER TABLE tasks ADD COLUMN note text")',
        downgrade="pass",  # leaves the column behind
    )
    assert main(["migrate-staging", "--step-roundtrip"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: 0005_note_text: its downgrade does not restore the schema from before its "
        "upgrade (+ left behind, - removed):\n"
        "  + column public.tasks.note text\n"
    ) in err, err
    assert "skipped" not in err
    assert "error: step round trip: 1 of 5 downgrades broken\n" in err
    assert "[✓] step round trip" not in err


def test_step_roundtrip_passes_a_sound_history_with_a_merge(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _merged_history(project)
    assert main(["migrate-staging", "--step-roundtrip"]) == 0
    err = capsys.readouterr().err
    assert "skipped" not in err
    assert "[✓] step round trip: every downgrade restored the schema (4 revisions)\n" in err


def test_a_downgrade_that_breaks_a_merge_is_named(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _merged_history(project)
    write_revision(
        project,
        "0004",
        "merge",
        ("0002", "0003"),
        'op.execute("CREATE VIEW task_names AS SELECT name FROM tasks")',
        downgrade="pass",
    )
    assert main(["migrate-staging", "--step-roundtrip"]) == 1
    err = capsys.readouterr().err
    assert "error: 0004_merge: its downgrade does not restore the schema" in err
    assert "  + view public.task_names" in err, err


def test_from_works_on_a_history_with_a_merge_and_one_head(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _merged_history(project)
    write_revision(project, "0005", "after", "0004", 'op.execute("SELECT 1")')
    code = main(["migrate-staging", "--from", "0003"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "built at 0003_right (as deployed); proving only what is newer\n" in err
    assert "│ 0005_after " in err
    # not an ancestor of 0003: proven, and undone on the way down to 0003 too
    assert re.search(r"│ 0002_left +│ +\d+ ms │ +\d+ ms │ +\d+ ms │", err), err
    assert "│ 0003_right " not in err


def test_step_roundtrip_goes_on_after_a_broken_downgrade_and_counts_them(
    project: Path,
    pg_server: Server,
    throwaway_names: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_revision(
        project,
        "0002",
        "index_owner",
        "0001",
        'op.create_index("tasks_owner_idx", "tasks", ["owner"])',
        downgrade="pass",  # leaves the index behind
    )
    write_revision(
        project,
        "0003",
        "labels",
        "0002",
        'op.execute("CREATE TABLE labels (id int)")',
        downgrade='raise NotImplementedError("cannot drop labels")',
    )
    write_revision(
        project,
        "0004",
        "label_names",
        "0003",
        'op.execute("ALTER TABLE labels ADD COLUMN name text")',
        downgrade='op.execute("ALTER TABLE labels DROP COLUMN name")',
    )
    write_revision(
        project,
        "0005",
        "drop_owner",
        "0004",
        'op.execute("SELECT 1")',
        downgrade='op.drop_column("tasks", "owner")',  # removes what it never added
    )
    assert main(["migrate-staging", "--step-roundtrip"]) == 1
    # the rebuilt ones dropped too
    assert left_behind(pg_server.admin_url, throwaway_names) == set()
    err = capsys.readouterr().err
    assert "error: 0002_index_owner: its downgrade does not restore the schema" in err
    assert (
        "error: 0003_labels: downgrade of 0003_labels failed: NotImplementedError: "
        "cannot drop labels\n"
    ) in err, err
    assert "error: 0004_label_names" not in err
    assert "error: 0005_drop_owner: its downgrade does not restore the schema" in err
    assert "  - column public.tasks.owner text\n" in err
    assert "error: step round trip: 3 of 5 downgrades broken\n" in err


def test_a_step_roundtrip_stopped_by_a_failing_upgrade_says_what_it_did_not_reach(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_failing_revision(project)
    write_revision(project, "0003", "later", "0002", 'op.execute("SELECT 1")')
    assert main(["migrate-staging", "--step-roundtrip"]) == 1
    err = capsys.readouterr().err
    assert (
        "step round trip: 1 downgrade(s) restored the schema; 2 not reached (the upgrade failed)\n"
    ) in err
    assert "[✓] step round trip" not in err


def test_a_step_roundtrip_downgrade_runs_under_migrails_settings_not_those_its_upgrade_left(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """An upgrade that sets a short statement_timeout for the session (as linters ask) does not
    cut its own downgrade short: each step runs under migrail's settings, as on its own."""
    write_revision(
        project,
        "0002",
        "short_timeout",
        "0001",
        "op.execute(\"SET statement_timeout = '400ms'\")",
        downgrade='op.execute("SELECT pg_sleep(0.8)")',
    )
    assert main(["migrate-staging", "--step-roundtrip", "--no-data"]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "[✓] step round trip: every downgrade restored the schema (2 revisions)\n" in err, err


def test_the_progress_display_names_the_revision_running_with_its_count(
    project: Path, pg_server: Server
) -> None:
    """On a terminal, while 0002 runs, the bar says so (not the revision that just finished)."""
    import os
    import pty
    import re
    import subprocess
    import sys

    write_revision(project, "0002", "slow", "0001", 'op.execute("SELECT pg_sleep(1.5)")')
    write_revision(project, "0003", "add_note", "0002", "pass")
    controller, terminal = pty.openpty()
    migrail = Path(sys.executable).parent / "migrail"
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    run = subprocess.Popen(
        [str(migrail), "migrate-staging", "--no-cache"],
        cwd=project,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the run is over
            break
        if not chunk:
            break
        seen += chunk
    assert run.wait(timeout=120) == 0, seen.decode(errors="replace")
    os.close(controller)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert "upgrade 2/3: 0002_slow" in text
    assert "upgrade 1/3: 0002_slow" not in text and "upgrade 3/3: 0002_slow" not in text


def test_a_long_historys_table_folds_the_revisions_with_nothing_to_say(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past fifty revisions, a revision gets its row when it has something to say (here a
    rewrite of a table) or is among the newest five; a dim row stands for each run of the
    others, with their count and time. The verdicts under the table are the same."""
    parent = "0001"
    for number in range(2, 61):
        revision = f"{number:04d}"
        body, undo, extra = f'op.execute("SELECT {number}")', "pass", ""
        if number == 30:
            body = 'op.alter_column("tasks", "owner", type_=sa.String(40))'
            undo = 'op.alter_column("tasks", "owner", type_=sa.Text())'
            extra = "# migrail: allow rewrite -- a table of sample rows"
        if number == 40:  # a brief lock: folded too
            body = 'op.add_column("tasks", sa.Column("note", sa.Text()))'
            undo = 'op.drop_column("tasks", "note")'
        write_revision(project, revision, f"step_{number}", parent, body, undo, extra)
        parent = revision
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text()
        .replace('Column("owner", Text)', 'Column("owner", String(40)), Column("note", Text)')
        .replace("from sqlalchemy import Column,", "from sqlalchemy import String, Column,")
    )
    code, err = _run(capsys)
    assert code == 0, err
    rows = [line.split("│")[1].strip() for line in err.splitlines() if line.startswith("│ ")]
    assert rows == [
        "... 29 revisions",
        "0030_step_30",
        "... 25 revisions",
        *[f"00{n}_step_{n}" for n in range(56, 61)],
    ]
    table = [line.split("│") for line in err.splitlines() if line.startswith("│ ")]
    cells = {row[1].strip(): row[5].strip() for row in table}
    assert cells["... 29 revisions"] == ""  # selects, and a table made: nothing locked before
    assert cells["0030_step_30"] == "rewrite: ACCESS EXCLUSIVE on tasks"
    assert cells["... 25 revisions"] == "metadata-only, brief"  # 0040's index
    assert err.endswith("[✓] round trip: down to base and up to head again\n")

"""plan, approve, apply: a protected database changes exactly as a person approved, or not at all."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from migrail.core.urls import libpq_conninfo
from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.git import commit_all, git
from testing.postgres import columns, login_role, query, run_sql, version
from testing.processes import terminated_while_locking
from testing.projects import write_revision


@pytest.fixture
def production(project: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch) -> URL:
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("MIGRAIL_ACTOR", "alice")
    return database_url


def _release(capsys: pytest.CaptureFixture[str], approver: str = "bob") -> tuple[int, str]:
    """plan (as alice), approve (as ``approver``), apply (as alice): exit code and messages."""
    with pytest.MonkeyPatch.context() as as_reviewer:
        assert main(["plan", "--env", "production"]) == 0
        as_reviewer.setenv("MIGRAIL_ACTOR", approver)
        assert main(["approve", "plan.json"]) == 0
    capsys.readouterr()
    code = main(["apply", "--plan", "plan.json"])
    return code, capsys.readouterr().err


def test_plan_approve_apply_records_the_plan_in_the_history(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _release(capsys)
    assert code == 0, err
    assert err.endswith("revision(s)\n") and "[✓] 0001_create_tasks\n" in err
    assert version(production) == ["0001"]
    plan = json.loads((project / "plan.json").read_text())
    assert (plan["environment"], plan["from_revision"], plan["to_revision"]) == (
        "production",
        [],
        "0001",
    )
    assert plan["revisions"][0]["sql"].startswith("SET lock_timeout = '5s';")
    assert plan["revisions"][0]["sql_checksum"].startswith("sha256:")
    assert plan["revisions"][0]["checksum"].startswith("sha256:")
    assert "CREATE TABLE tasks (" in (project / "plan.md").read_text()
    rows = query(production, "SELECT revision, plan_id, applied_by, success FROM migrail.history")
    assert rows == [("0001", plan["plan_id"], "alice", True)]
    assert query(production, "SELECT name, protected FROM migrail.environment") == [
        ("production", True)
    ]


def test_apply_without_an_approval_is_refused(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--env", "production"]) == 0
    plan_id = json.loads((project / "plan.json").read_text())["plan_id"]
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert capsys.readouterr().err == (
        f"error: apply is refused: plan {plan_id[:19]} has no approval\n"
        "hint: a reviewer approves it: migrail approve plan.json\n"
    )
    assert version(production) == []


def test_four_eyes_refuses_a_self_approval(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"', 'migrations = "migrations"\nfour_eyes = true'
        )
    )
    assert main(["plan", "--env", "production"]) == 0
    capsys.readouterr()
    assert main(["approve", "plan.json"]) == 2
    assert capsys.readouterr().err == (
        "error: approval refused: alice planned it, and [tool.migrail] four_eyes asks for someone "
        "else to approve\n"
        "hint: ask a reviewer to run: migrail approve plan.json\n"
    )
    plan_id = json.loads((project / "plan.json").read_text())["plan_id"]
    forged = {"plan_id": plan_id, "approved_by": "alice", "approved_at": "2026-11-27T00:00:00Z"}
    (project / "plan.approval.json").write_text(json.dumps(forged))
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert "apply is refused: alice both planned and approved it" in capsys.readouterr().err
    code, err = _release(capsys, approver="bob")
    assert code == 0, err


def test_a_revision_file_changed_after_approval_is_refused(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--env", "production"]) == 0
    assert main(["approve", "plan.json"]) == 0
    revision = project / "migrations" / "versions" / "0001_create_tasks.py"
    text = revision.read_text()
    revision.write_text(text.replace('        sa.Column("owner", sa.Text(), nullable=True),\n', ""))
    assert revision.read_text() != text
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert capsys.readouterr().err == (
        "error: apply is refused: 0001_create_tasks is not the file that was planned\n"
        "hint: plan again, and have the new plan approved\n"
    )
    assert version(production) == []


def test_an_env_py_changed_after_approval_is_refused(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """env.py runs on the live database, where it can do what its offline rendering does not:
    a change to it that leaves the SQL alike is still not what was approved."""
    assert main(["plan", "--env", "production"]) == 0
    with pytest.MonkeyPatch.context() as as_reviewer:
        as_reviewer.setenv("MIGRAIL_ACTOR", "bob")
        assert main(["approve", "plan.json"]) == 0
    env_py = project / "migrations" / "env.py"
    env_py.write_text(env_py.read_text() + "\n# run something else on the live database\n")
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert capsys.readouterr().err == (
        "error: apply is refused: migrations/env.py changed since the plan\n"
        "hint: plan again, and have the new plan approved\n"
    )
    assert version(production) == []


def test_a_plan_applied_to_another_database_than_the_planned_one_is_refused(
    project: Path,
    production: URL,
    pg_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The variable now points at another database at the same revision, which says nothing
    about what it is: only the name the plan recorded tells them apart."""
    assert main(["plan", "--env", "production"]) == 0
    with pytest.MonkeyPatch.context() as as_reviewer:
        as_reviewer.setenv("MIGRAIL_ACTOR", "bob")
        assert main(["approve", "plan.json"]) == 0
    with pg_server.database() as other:
        monkeypatch.setenv("PRODUCTION_DATABASE_URL", other.render_as_string(hide_password=False))
        capsys.readouterr()
        assert main(["apply", "--plan", "plan.json"]) == 2
        assert capsys.readouterr().err == (
            f"error: apply is refused: the plan was made on database {production.database}, "
            f"and this is {other.database}\n"
            "hint: plan again, against the database you mean to change\n"
        )
        assert version(other) == []
    assert version(production) == []


def test_a_database_that_moved_on_since_the_plan_is_refused(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _release(capsys)
    assert code == 0
    assert main(["apply", "--plan", "plan.json"]) == 2  # the same plan, a second time
    assert capsys.readouterr().err == (
        "error: apply is refused: the database moved on since the plan: it is at "
        "0001_create_tasks, and the plan starts at base\n"
        "hint: plan again\n"
    )


def test_an_applied_revision_edited_afterwards_is_refused(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _release(capsys)[0] == 0
    revision = project / "migrations" / "versions" / "0001_create_tasks.py"
    revision.write_text(revision.read_text() + "\n# tidied up\n")
    write_revision(
        project,
        "0002",
        "add_note",
        "0001",
        'op.add_column("tasks", sa.Column("note", sa.Text()))',
        'op.drop_column("tasks", "note")',
    )
    code, err = _release(capsys)
    assert code == 2
    assert err.startswith(
        "error: apply is refused: 0001_create_tasks was edited after it was applied on "
    )
    assert "hint: restore it as it was applied; change the schema in a new revision\n" in err
    assert "note" not in columns(production, "tasks")


def test_lint_errors_block_the_plan_unless_forced_and_the_plan_says_so(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _release(capsys)[0] == 0
    write_revision(
        project,
        "0002",
        "drop_owner",
        "0001",
        'op.drop_column("tasks", "owner")',
        'op.add_column("tasks", sa.Column("owner", sa.Text()))',
    )
    assert main(["plan", "--env", "production"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: ban-drop-column: migrations/versions/0002_drop_owner.py: Dropping a column may break existing clients.\n"
        in err
    )
    assert main(["plan", "--env", "production", "--force"]) == 0
    plan = json.loads((project / "plan.json").read_text())
    assert plan["forced"] is True
    assert [(f["rule"], f["severity"]) for f in plan["findings"] if f["severity"] == "error"] == [
        ("ban-drop-column", "error")
    ]
    assert "**forced**: planned in spite of lint errors" in (project / "plan.md").read_text()


def test_an_edited_plan_is_refused(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--env", "production"]) == 0
    plan = project / "plan.json"
    plan.write_text(plan.read_text().replace("CREATE TABLE tasks", "CREATE TABLE tasks_evil"))
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert capsys.readouterr().err == (
        "error: plan.json was changed after it was planned (its content no longer matches its id)\n"
        "hint: plan again: migrail plan --env NAME\n"
    )


def test_a_held_lock_makes_apply_give_up_after_its_tries_with_growing_pauses(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each try waits lock_timeout, and the pause before the next one doubles: the budget is
    told by the pauses announced, not by a clock read in the test."""
    assert _release(capsys)[0] == 0
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"',
            'migrations = "migrations"\nlock_timeout = "200ms"\nlock_retries = 2',
        )
    )
    write_revision(
        project,
        "0002",
        "add_note",
        "0001",
        'op.add_column("tasks", sa.Column("note", sa.Text()))',
        'op.drop_column("tasks", "note")',
    )
    with psycopg.connect(libpq_conninfo(production)) as holder:
        holder.execute("LOCK TABLE tasks IN ACCESS SHARE MODE")  # a long read, say
        code, err = _release(capsys)
    assert code == 1
    assert (
        "error: upgrade of 0002_add_note failed: canceling statement due to lock timeout (SQLSTATE 55P03)\n"
        in err
    )
    pauses = [line for line in err.splitlines() if "a lock stayed taken; trying again" in line]
    assert pauses == [
        "  a lock stayed taken; trying again in 0.5 s",
        "  a lock stayed taken; trying again in 1.0 s",
    ]
    assert (
        "  gave up after 3 tries: a lock it needs stayed taken (lock_timeout 200ms); the revision was rolled back\n"
        in err
    )
    assert version(production) == ["0001"]
    assert "note" not in columns(production, "tasks")


def test_the_release_rehearses_end_to_end_on_a_throwaway_database(
    project: Path, pg_server: object, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    assert main(["rehearse"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("Rehearsing a release to production on a throwaway database\n")
    assert "[✓] rehearsal reviewer approved plan sha256:" in err
    assert err.endswith("[✓] the release rehearsal passed: plan, approve and apply\n")
    assert "PRODUCTION_DATABASE_URL" not in os.environ
    assert not list(project.glob("plan*")), "the rehearsal's plan lives in a temporary directory"


def test_two_applies_at_once_apply_each_revision_once(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import subprocess
    import sys

    assert main(["plan", "--env", "production"]) == 0
    with pytest.MonkeyPatch.context() as as_reviewer:
        as_reviewer.setenv("MIGRAIL_ACTOR", "bob")
        assert main(["approve", "plan.json"]) == 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "migrail", "apply", "--plan", "plan.json"],
            cwd=project,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[1] for run in runs]
    assert sorted(run.returncode for run in runs) == [0, 2], outputs
    refused = next(output for run, output in zip(runs, outputs, strict=True) if run.returncode)
    assert "error: apply is refused: " in refused  # checked first, or again under the lock
    assert query(production, "SELECT revision, success FROM migrail.history") == [("0001", True)]
    assert version(production) == ["0001"]


def test_an_apply_that_waited_for_the_lock_checks_the_database_again(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two applies of one plan both pass the first check, then queue for the migrate lock this
    test holds; once it lets go, the one that gets the lock second finds the database moved
    on, and only the check made under the lock can refuse it."""
    import os
    import subprocess
    import sys

    from migrail.postgres.database import MIGRATE_LOCK_KEY

    assert main(["plan", "--env", "production"]) == 0
    with pytest.MonkeyPatch.context() as as_reviewer:
        as_reviewer.setenv("MIGRAIL_ACTOR", "bob")
        assert main(["approve", "plan.json"]) == 0
    with psycopg.connect(libpq_conninfo(production), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
        runs = []
        for _ in range(2):
            run = subprocess.Popen(
                [sys.executable, "-m", "migrail", "apply", "--plan", "plan.json"],
                cwd=project,
                env=os.environ,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert run.stderr is not None
            # Past the first check, and queued for the lock.
            assert run.stderr.readline() == "Waiting for another migrate to finish...\n"
            runs.append(run)
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))
    outputs = [run.communicate(timeout=120)[1] for run in runs]
    assert sorted(run.returncode for run in runs) == [0, 2], outputs
    refused = next(output for run, output in zip(runs, outputs, strict=True) if run.returncode)
    assert refused.endswith(
        "error: apply is refused: another apply changed the database while this one waited: "
        "it is at 0001_create_tasks now\n"
        "hint: plan again\n"
    ), refused
    assert query(production, "SELECT revision, success FROM migrail.history") == [("0001", True)]
    assert version(production) == ["0001"]


def test_drift_is_shown_and_blocks_the_plan_unless_forced(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _release(capsys)[0] == 0
    assert main(["drift", "--env", "production"]) == 0
    assert capsys.readouterr().err == "[✓] production is exactly what 0001_create_tasks implies\n"
    with psycopg.connect(libpq_conninfo(production), autocommit=True) as connection:
        connection.execute("ALTER TABLE tasks ADD COLUMN hotfix text")  # by hand, in production
    drifted = (
        "error: production has drifted from 0001_create_tasks: it differs from the schema its "
        "revision implies (+ the history has it and the database does not; - the reverse):\n"
        "  - column tasks.hotfix (TEXT)\n"
    )
    assert main(["drift", "--env", "production"]) == 1
    assert capsys.readouterr().err == drifted
    assert main(["plan", "--env", "production"]) == 1
    assert capsys.readouterr().err == (
        drifted + "hint: find out who changed it and why; plan anyway with --force\n"
    )
    assert main(["plan", "--env", "production", "--force"]) == 0
    plan = json.loads((project / "plan.json").read_text())
    assert (plan["drift"], plan["forced"]) == (["- column tasks.hotfix (TEXT)"], True)
    assert (
        "## Drift: the database differs from its recorded revision"
        in (project / "plan.md").read_text()
    )


def test_the_plan_shows_the_live_size_of_the_tables_it_touches(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _release(capsys)[0] == 0
    with psycopg.connect(libpq_conninfo(production), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO tasks (id, name, status) SELECT g::text, 'n', 's' FROM generate_series(1, 500) g"
        )
        connection.execute("ANALYZE tasks")
    write_revision(
        project,
        "0002",
        "index_status",
        "0001",
        "with op.get_context().autocommit_block():\n"
        '        op.create_index("ix_status", "tasks", ["status"], postgresql_concurrently=True, if_not_exists=True)',
        'op.drop_index("ix_status", table_name="tasks")',
    )
    assert main(["plan", "--env", "production"]) == 0, capsys.readouterr().err
    plan = json.loads((project / "plan.json").read_text())
    assert plan["tables"]["tasks"]["rows"] == 500
    assert plan["tables"]["tasks"]["bytes"] > 0
    assert "| tasks | 500 | " in (project / "plan.md").read_text()


def test_the_plan_shows_the_locks_and_rewrites_each_revision_takes(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _release(capsys)[0] == 0
    write_revision(
        project,
        "0002",
        "shorter_names",
        "0001",
        'op.alter_column("tasks", "name", type_=sa.String(20))',
        'op.alter_column("tasks", "name", type_=sa.Text())',
    )
    assert main(["plan", "--env", "production", "--force"]) == 0, capsys.readouterr().err
    plan = json.loads((project / "plan.json").read_text())
    measured = "rewrite: ACCESS EXCLUSIVE on tasks"
    assert plan["revisions"][0]["measured"] == measured
    assert (
        f"Measured on a throwaway copy of the schema: **{measured}**"
        in (project / "plan.md").read_text()
    )


def test_sql_changed_after_approval_is_refused_even_with_the_same_files(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--env", "production"]) == 0
    assert main(["approve", "plan.json"]) == 0
    pyproject = project / "pyproject.toml"  # a longer lock_timeout: the SQL says so
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"', 'migrations = "migrations"\nlock_timeout = "1h"'
        )
    )
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert capsys.readouterr().err == (
        "error: apply is refused: the SQL rendered from this checkout is not the SQL that was "
        "approved (0001)\n"
        "hint: plan again, and have the new plan approved\n"
    )
    assert version(production) == []


def test_a_plan_applied_to_a_database_that_says_it_is_something_else_is_refused(
    project: Path,
    production: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _release(capsys)[0] == 0  # the database now says it is production
    monkeypatch.setenv("STAGING_DATABASE_URL", production.render_as_string(hide_password=False))
    write_revision(
        project,
        "0002",
        "add_note",
        "0001",
        'op.add_column("tasks", sa.Column("note", sa.Text()))',
        'op.drop_column("tasks", "note")',
    )
    assert main(["plan", "--env", "staging"]) == 0
    with pytest.MonkeyPatch.context() as as_reviewer:
        as_reviewer.setenv("MIGRAIL_ACTOR", "bob")
        assert main(["approve", "plan.json"]) == 0
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert capsys.readouterr().err == (
        "error: apply is refused: the plan is for staging, and the database says it is production\n"
        "hint: check STAGING_DATABASE_URL: it points at production's database\n"
    )
    assert "note" not in columns(production, "tasks")


def test_a_failed_apply_is_in_the_history_too(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _release(capsys)[0] == 0
    write_revision(project, "0002", "bad", "0001", 'op.execute("SELECT 1/0")')
    code, err = _release(capsys)
    assert code == 1
    assert "error: upgrade of 0002_bad failed: division by zero (SQLSTATE 22012)\n" in err
    plan_id = json.loads((project / "plan.json").read_text())["plan_id"]
    rows = query(production, "SELECT revision, success, plan_id FROM migrail.history ORDER BY id")
    assert rows[1:] == [("0002", False, plan_id)]


def test_staging_proves_what_a_plan_applies_from_the_revision_it_starts_at(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _release(capsys)[0] == 0
    write_revision(
        project,
        "0002",
        "add_priority",
        "0001",
        'op.add_column("tasks", sa.Column("priority", sa.Integer(), nullable=False))',
        'op.drop_column("tasks", "priority")',
    )
    assert main(["plan", "--env", "production", "--force"]) == 0
    capsys.readouterr()
    assert main(["migrate-staging", "--from-plan", "plan.json"]) == 1
    err = capsys.readouterr().err
    assert "built at 0001_create_tasks (as deployed); proving only what is newer\n" in err
    assert "│ 0001_create_tasks │" not in err
    assert 'error: upgrade of 0002_add_priority failed: column "priority"' in err

    write_revision(project, "0003", "later", "0002", "pass")
    assert main(["migrate-staging", "--from-plan", "plan.json"]) == 2
    assert (
        "error: plan.json takes production to 0002_add_priority, but this checkout's head is "
        "0003_later\n"
    ) in capsys.readouterr().err
    assert main(["migrate-staging", "--from-plan", "missing.json"]) == 2
    assert "error: missing.json does not exist\n" in capsys.readouterr().err


def test_a_read_only_role_without_the_ledger_still_plans_and_is_told_the_grant(
    project: Path,
    production: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The release pipeline's plan job reads production with a role made to read the
    application's tables, before migrail's schema existed."""
    assert _release(capsys)[0] == 0
    write_revision(project, "0002", "nothing", "0001", "pass")
    grant = "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
    with login_role(production, grant) as (role, read_only):
        monkeypatch.setenv(
            "PRODUCTION_DATABASE_URL", read_only.render_as_string(hide_password=False)
        )
        fix = (
            f"  an owner runs: GRANT USAGE ON SCHEMA migrail TO {role}; "
            f"GRANT SELECT ON ALL TABLES IN SCHEMA migrail TO {role}\n"
        )
        capsys.readouterr()
        assert main(["status", "--env", "production"]) == 0
        err = capsys.readouterr().err
        assert "database at: 0001_create_tasks\nhead:        0002_nothing\npending (1):\n" in err
        assert err.endswith(
            f"applied: not shown: role {role} cannot read migrail.history (it has no USAGE on "
            f"schema migrail)\n{fix}"
        )

        assert main(["plan", "--env", "production"]) == 0
        err = capsys.readouterr().err
        assert (
            f"the environment the database says it is: not shown: role {role} cannot read "
            f"migrail.environment (it has no USAGE on schema migrail)\n{fix}"
        ) in err
        assert "[✓] planned 0002_nothing for production" in err
        plan = json.loads((project / "plan.json").read_text())
        assert plan["database"]["identity"] == "unknown to the role that planned"

        run_sql(production, fix.split(": ", 1)[1].format(role=role))  # the GRANT, as given
        assert main(["status", "--env", "production"]) == 0
        assert "applied (newest first):\n  0001_create_tasks  " in capsys.readouterr().err
        assert main(["plan", "--env", "production"]) == 0
        plan = json.loads((project / "plan.json").read_text())
        assert plan["database"]["identity"] == "production"


def test_apply_refuses_a_ledger_altered_by_hand_before_applying_anything(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _release(capsys)[0] == 0
    run_sql(
        production,
        "CREATE FUNCTION migrail.refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN RAISE EXCEPTION 'the ledger is frozen'; END$$; CREATE TRIGGER refuse BEFORE "
        "INSERT ON migrail.history FOR EACH ROW EXECUTE FUNCTION migrail.refuse()",
    )
    write_revision(
        project,
        "0002",
        "add_marker",
        "0001",
        'op.execute("CREATE TABLE marker ()")',
        'op.execute("DROP TABLE marker")',
    )
    assert main(["plan", "--env", "production"]) == 0
    with pytest.MonkeyPatch.context() as as_reviewer:
        as_reviewer.setenv("MIGRAIL_ACTOR", "bob")
        assert main(["approve", "plan.json"]) == 0
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert capsys.readouterr() == (
        "",
        "error: migrail.history refused the record of revision 0002: the ledger is frozen "
        "(SQLSTATE P0001)\nhint: migrail.history was altered by hand: remove what refuses "
        "migrail's rows (a constraint, a trigger, a rule, a changed column)\n",
    )
    assert version(production) == ["0001"]
    assert query(production, "SELECT to_regclass('marker')") == [(None,)]


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_a_table_locked_by_another_session_stops_plan_and_drift_at_lock_timeout(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    import os
    import subprocess
    import sys

    assert _release(capsys)[0] == 0
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"', 'migrations = "migrations"\nlock_timeout = "300ms"'
        )
    )
    conninfo = libpq_conninfo(production)
    with psycopg.connect(conninfo, application_name="nightly-report") as holder:
        holder.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "migrail", command, "--env", "production"],
            cwd=project,
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=60,  # a read that waits for the lock without limit fails here
            check=False,
        )
        elapsed = time.monotonic() - started
        pid, user = holder.info.backend_pid, holder.info.user
    assert (run.returncode, run.stdout) == (2, ""), run.stderr
    assert run.stderr == (
        f"error: {command} waited longer than lock_timeout 300ms for table tasks: process {pid} "
        f'(user {user}, application "nightly-report", idle in transaction) holds an ACCESS '
        "EXCLUSIVE lock on it\n"
        f"hint: run {command} again once that transaction ends, or end it: "
        f"SELECT pg_terminate_backend({pid})\n"
    )
    assert elapsed < 20


def test_sigterm_cancels_the_running_revision_of_an_apply_and_releases_its_locks_at_once(
    project: Path,
    production: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os
    import subprocess
    import sys

    assert _release(capsys)[0] == 0
    # Only the production database sleeps: planning applies the revision to a throwaway copy.
    pause = "SELECT pg_sleep(current_setting('test.pause', true)::float)"
    write_revision(
        project,
        "0002",
        "slow",
        "0001",
        "# migrail: allow lock-table -- held on purpose, to be cancelled\n"
        f'    op.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")\n    op.execute("{pause}")',
    )
    assert main(["plan", "--env", "production"]) == 0
    monkeypatch.setenv("MIGRAIL_ACTOR", "bob")
    assert main(["approve", "plan.json"]) == 0
    run_sql(production, f'ALTER DATABASE "{production.database}" SET test.pause = 20')
    run = subprocess.Popen(
        [sys.executable, "-m", "migrail", "apply", "--plan", "plan.json"],
        cwd=project,
        env=os.environ,
        stderr=subprocess.PIPE,
        text=True,
    )
    released = terminated_while_locking(run, production, "tasks", "test.pause")
    _, err = run.communicate(timeout=30)
    assert run.returncode == 143, err
    assert err.endswith(
        "error: terminated during the upgrade of 0002_slow: stopped there and rolled back, none "
        "of it applied\n  the database is at 0001_create_tasks\n"
    ), err
    assert released < 2, "the server went on running the revision, holding its lock"
    assert version(production) == ["0001"]
    run_sql(production, f'ALTER DATABASE "{production.database}" RESET test.pause')
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 0, capsys.readouterr().err
    assert version(production) == ["0002"]


@pytest.mark.parametrize("table", ["alembic_version", "migrail.history"])
def test_a_bookkeeping_table_locked_by_another_session_stops_apply_at_lock_timeout(
    project: Path,
    production: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    table: str,
) -> None:
    import os
    import subprocess
    import sys

    assert _release(capsys)[0] == 0
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
    assert main(["plan", "--env", "production"]) == 0
    monkeypatch.setenv("MIGRAIL_ACTOR", "bob")
    assert main(["approve", "plan.json"]) == 0
    with psycopg.connect(libpq_conninfo(production), application_name="nightly-report") as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # type: ignore[arg-type]
        run = subprocess.run(
            [sys.executable, "-m", "migrail", "apply", "--plan", "plan.json"],
            cwd=project,
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=60,  # without a lock_timeout on its own reads, apply waited forever
            check=False,
        )
        pid, user = holder.info.backend_pid, holder.info.user
    assert (run.returncode, run.stdout) == (2, ""), run.stderr
    assert run.stderr == (
        f"error: apply waited longer than lock_timeout 300ms for table {table}: process {pid} "
        f'(user {user}, application "nightly-report", idle in transaction) holds an ACCESS '
        "EXCLUSIVE lock on it\n"
        f"hint: run apply again once that transaction ends, or end it: "
        f"SELECT pg_terminate_backend({pid})\n"
    )
    assert version(production) == ["0001"]
    assert "note" not in columns(production, "tasks")


def test_apply_on_a_read_only_session_is_refused_before_anything_is_attempted(
    project: Path,
    production: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Planned through a read-only session (as plan may be), then applied through it."""
    url = production.update_query_dict({"options": "-c default_transaction_read_only=on"})
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", url.render_as_string(hide_password=False))
    assert main(["plan", "--env", "production"]) == 0
    monkeypatch.setenv("MIGRAIL_ACTOR", "bob")
    assert main(["approve", "plan.json"]) == 0
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 2
    assert capsys.readouterr() == (
        "",
        "error: apply is refused: the database session is read-only: "
        "default_transaction_read_only is on (set by: client)\n"
        "hint: remove -c default_transaction_read_only=on from the URL's options\n",
    )
    assert version(production) == []
    assert query(production, "SELECT to_regnamespace('migrail')") == [(None,)]


def test_a_plan_the_disk_refuses_is_named_and_not_left_half_written(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk (/dev/full answers every write so): was exit 3."""
    capsys.readouterr()
    assert main(["plan", "--env", "production", "--out", "/dev/full"]) == 2
    assert capsys.readouterr() == (
        "",
        "error: cannot write /dev/full: No space left on device\nhint: nothing was written\n",
    )
    assert not Path("/dev/full.md").exists()


def test_a_plan_in_a_folder_the_user_cannot_write_is_named(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """For real: as root (CI), plan runs as nobody, whom the folder's permissions do stop."""
    import shutil

    from migrail.core.output import failure, make_console
    from testing.users import open_directory, unprivileged

    copy = open_directory() / "tasks_app"
    shutil.copytree(project, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (copy / "ro").mkdir(mode=0o555)
    (copy / "ro").chmod(0o555)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.chdir(copy)
            # What the run imports, imported while still allowed to: a plan, then an error.
            assert main(["plan", "--env", "production", "--out", "warm.json"]) == 0
            failure(make_console(io.StringIO()), "warm-up", "hint")
            capsys.readouterr()
            with unprivileged():
                code = main(["plan", "--env", "production", "--out", "ro/p.json"])
            out, err = capsys.readouterr()
            assert not (copy / "ro" / "p.json").exists()
    finally:
        shutil.rmtree(copy.parent)
    hint = "make it writable, or run as a user who may write it; nothing was written"
    assert (code, out, err) == (
        2,
        "",
        f"error: cannot write ro/p.json: Permission denied\nhint: {hint}\n",
    )


def test_a_plan_names_the_revisions_its_branch_has_not_merged_yet(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """Applied to production from a branch, a revision is released before it is merged."""
    commit_all(project, "released history")
    git(project, "checkout", "-q", "-b", "hotfix")
    write_revision(
        project,
        "0002",
        "add_note",
        "0001",
        'op.add_column("tasks", sa.Column("note", sa.Text()))',
        'op.drop_column("tasks", "note")',
    )
    assert main(["plan", "--env", "production"]) == 0
    plan = json.loads((project / "plan.json").read_text())
    assert plan["unmerged"] == ["0002_add_note"]
    assert (
        "- **not merged yet**: 0002_add_note (once applied here, released all the same: merge "
        "the branch before changing them)\n"
    ) in (project / "plan.md").read_text()

    git(project, "checkout", "-q", "main")
    (project / "migrations" / "versions" / "0002_add_note.py").unlink()
    assert main(["plan", "--env", "production"]) == 0
    assert "unmerged" not in json.loads((project / "plan.json").read_text())


def test_plan_md_says_what_the_database_is_in_a_sentence(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--env", "production"]) == 0
    version_line = query(production, "SHOW server_version")[0][0]
    assert (
        f"- database: `{production.database}` on PostgreSQL {version_line}; it does not say which "
        "environment it is yet (this apply records production)\n"
    ) in (project / "plan.md").read_text()
    assert _release(capsys)[0] == 0
    write_revision(
        project,
        "0002",
        "add_note",
        "0001",
        'op.add_column("tasks", sa.Column("note", sa.Text()))',
        'op.drop_column("tasks", "note")',
    )
    assert main(["plan", "--env", "production"]) == 0
    assert (
        f"`{production.database}` on PostgreSQL {version_line}; it says it is production\n"
        in (project / "plan.md").read_text()
    )


def test_the_plan_records_every_finding_warnings_too_and_only_errors_force_it(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """The approver sees what lint saw: a warning is in the plan, and does not stop it."""
    write_revision(
        project,
        "0002",
        "add_count",
        "0001",
        'op.add_column("tasks", sa.Column("visits", sa.Integer()))',
        'op.drop_column("tasks", "visits")',
    )
    assert main(["lint"]) == 0
    assert "warning prefer-bigint-over-int" in capsys.readouterr().err
    assert main(["plan", "--env", "production"]) == 0
    plan = json.loads((project / "plan.json").read_text())
    assert plan["forced"] is False
    assert ("prefer-bigint-over-int", "warning") in {
        (f["rule"], f["severity"]) for f in plan["findings"]
    }
    plan_md = (project / "plan.md").read_text()
    assert "- warning `prefer-bigint-over-int` in migrations/versions/0002_add_count.py:" in plan_md
    assert "**forced**" not in plan_md

"""``migrail migrate --to REV``: up or down to one revision, on a real database."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from migrail.release.ledger import DIRECTION
from testing.postgres import columns, login_role, query, run_sql, version
from testing.projects import write_revision


@pytest.fixture
def target(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> URL:
    """The development database of the test project, reached through DATABASE_URL."""
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    return database_url


@pytest.fixture
def three(project: Path) -> Path:
    """0001_create_tasks, then two revisions that add a column each and drop it going down."""
    for revision, column, parent in (("0002", "priority", "0001"), ("0003", "due", "0002")):
        write_revision(
            project,
            revision,
            f"add_{column}",
            parent,
            f'op.add_column("tasks", sa.Column("{column}", sa.Integer()))',
            f'op.drop_column("tasks", "{column}")',
        )
    return project


def _history(url: URL) -> list[tuple[object, ...]]:
    return query(url, "SELECT revision, direction, success FROM migrail.history ORDER BY id")


def test_up_to_a_middle_revision_applies_only_up_to_it(
    three: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--to", "0002_add_priority"]) == 0
    err = capsys.readouterr().err
    assert "2 pending: 0001_create_tasks, 0002_add_priority\n" in err
    assert err.endswith("[✓] Applied 2 revision(s); the database is at 0002_add_priority\n")
    assert version(target) == ["0002"]
    assert "due" not in columns(target, "tasks")
    assert main(["migrate", "--to", "+1"]) == 0
    assert version(target) == ["0003"]
    assert main(["migrate", "--to", "head"]) == 0
    assert capsys.readouterr().err.endswith("[✓] Up to date at 0003_add_due\n")
    assert _history(target) == [
        ("0001", "upgrade", True),
        ("0002", "upgrade", True),
        ("0003", "upgrade", True),
    ]


def test_down_by_one_then_to_base_undoes_and_records_each_revision(
    three: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["migrate", "--to", "-1", "--yes"]) == 0
    err = capsys.readouterr().err
    assert "1 to undo, newest first: 0003_add_due\n" in err
    assert (
        "This loses data: what these revisions added (tables, columns) goes with its rows\n" in err
    )
    assert "[✓] 0003_add_due (" in err
    assert err.endswith("[✓] Undid 1 revision(s); the database is at 0002_add_priority\n")
    assert version(target) == ["0002"]
    assert "due" not in columns(target, "tasks")
    assert main(["migrate", "--to", "base", "--yes"]) == 0
    err = capsys.readouterr().err
    assert "2 to undo, newest first: 0002_add_priority, 0001_create_tasks\n" in err
    assert err.endswith("[✓] Undid 2 revision(s); the database is at base\n")
    assert version(target) == []
    assert query(target, "SELECT to_regclass('tasks')") == [(None,)]
    assert _history(target)[3:] == [
        ("0003", "downgrade", True),
        ("0002", "downgrade", True),
        ("0001", "downgrade", True),
    ]


def test_an_irreversible_revision_is_refused_by_name_before_anything_is_undone(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "drop_owner",
        "0001",
        'op.drop_column("tasks", "owner")',
        extra='irreversible = "drops tasks.owner; its data cannot be restored"',
    )
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["migrate", "--to", "base", "--yes"]) == 2
    assert capsys.readouterr().err == (
        "error: migrate --to is refused: 0002_drop_owner cannot be undone: drops tasks.owner; "
        "its data cannot be restored\n"
        "hint: go down no further than it: migrail migrate --to 0002_drop_owner\n"
    )
    assert version(target) == ["0002"]


def test_going_down_without_a_terminal_needs_yes(
    three: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["migrate", "--to", "0001"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "2 to undo, newest first: 0003_add_due, 0002_add_priority\n" in err
    assert err.endswith(
        "error: migrate --to would undo revisions and lose data, and there is no terminal to "
        "confirm it\n"
        "hint: rerun with --yes if you mean it\n"
    )
    assert version(target) == ["0003"]


def test_a_protected_environment_is_refused(
    three: Path, target: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", target.render_as_string(hide_password=False))
    assert main(["migrate", "--env", "production", "--to", "0001", "--yes"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: migrate is refused: production is protected, and changes only through an "
        "approved plan\n"
    )
    assert version(target) == []


def test_an_unknown_revision_is_named_with_the_known_ones(
    three: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--to", "0009"]) == 2
    assert capsys.readouterr().err == (
        "error: migrate --to 0009: no such revision (known: base, 0001_create_tasks, "
        "0002_add_priority, 0003_add_due, head)\n"
        "hint: name a revision by its id, a unique prefix of it, or its file name; or -1/+1 to "
        "move one revision down or up\n"
    )
    assert version(target) == []


def test_sql_to_a_middle_revision_prints_only_up_to_it_and_refuses_undoing(
    three: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--sql", "--to", "0002"]) == 0
    out, err = capsys.readouterr()
    assert "CREATE TABLE tasks (" in out
    assert "ALTER TABLE tasks ADD COLUMN priority INTEGER" in out
    assert "due" not in out
    assert out.rstrip().endswith("COMMIT;"), out
    assert err == ""
    assert version(target) == []
    assert main(["migrate", "--to", "0002"]) == 0
    capsys.readouterr()
    assert main(["migrate", "--sql", "--to", "+1"]) == 0
    out = capsys.readouterr().out
    assert "ADD COLUMN due" in out and "priority" not in out and "CREATE TABLE" not in out
    assert main(["migrate", "--sql", "--to", "0002"]) == 0
    assert capsys.readouterr() == (
        "",
        "[✓] Nothing pending: development is at 0002_add_priority, where --to 0002 leads\n",
    )
    assert main(["migrate", "--sql", "--to", "0001"]) == 2
    assert capsys.readouterr().err == (
        "error: migrate --sql --to 0001 would undo revisions: --sql prints upgrades only\n"
        "hint: to read a downgrade's SQL: alembic downgrade --sql FROM:TO\n"
    )
    assert version(target) == ["0002"]


def test_a_prefix_of_several_ids_is_named_ambiguous_with_them(
    three: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "000" begins all three ids: saying "no such revision" would send one looking for a typo."""
    assert main(["migrate", "--to", "000"]) == 2
    assert capsys.readouterr().err == (
        "error: migrate --to 000: 3 revisions' ids begin with it: 0001_create_tasks, "
        "0002_add_priority, 0003_add_due\n"
        "hint: give more of the id, or the revision's file name\n"
    )
    assert version(target) == []
    assert main(["migrate", "--to", "0002"]) == 0
    assert version(target) == ["0002"]


def test_a_failing_downgrade_leaves_the_database_at_the_last_completed_revision(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "add_priority",
        "0001",
        'op.add_column("tasks", sa.Column("priority", sa.Integer()))',
        "op.execute(\"SELECT 'x'::integer\")",
    )
    write_revision(
        project,
        "0003",
        "add_due",
        "0002",
        'op.add_column("tasks", sa.Column("due", sa.Integer()))',
        'op.drop_column("tasks", "due")',
    )
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["migrate", "--to", "base", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "[✓] 0003_add_due (" in err
    assert (
        'error: downgrade of 0002_add_priority failed: invalid input syntax for type integer: "x" '
        "(SQLSTATE 22P02)\n"
        "  statement: SELECT 'x'::integer\n"
        "  the database is at 0002_add_priority\n"
    ) in err
    assert version(target) == ["0002"]
    assert "priority" in columns(target, "tasks") and "due" not in columns(target, "tasks")
    assert _history(target)[3:] == [("0003", "downgrade", True), ("0002", "downgrade", False)]
    capsys.readouterr()
    assert main(["status"]) == 0
    shown = capsys.readouterr().err
    assert re.search(r"  0002_add_priority  .*  FAILED to undo: invalid input syntax", shown)
    assert re.search(r"  0003_add_due  .* ms  undone\n", shown)
    assert re.search(r"  0003_add_due  .* ms  ok\n", shown)


def test_a_ledger_made_before_directions_is_given_the_column(
    three: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--to", "0002"]) == 0
    run_sql(target, "ALTER TABLE migrail.history DROP COLUMN direction")
    assert main(["migrate", "--to", "0001", "--yes"]) == 0
    assert _history(target) == [
        ("0001", "upgrade", True),
        ("0002", "upgrade", True),
        ("0002", "downgrade", True),
    ]


def test_a_ledger_without_directions_this_role_may_not_alter_still_records_upgrades_only(
    three: Path, target: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sql(
        target,
        "CREATE SCHEMA migrail; CREATE TABLE migrail.history (id bigint GENERATED ALWAYS AS "
        "IDENTITY PRIMARY KEY, revision text NOT NULL, checksum text NOT NULL, plan_id text, "
        "applied_by text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms "
        "integer NOT NULL, success boolean NOT NULL, error text)",
    )
    grants = (
        "GRANT USAGE, CREATE ON SCHEMA public TO {role}",
        "GRANT USAGE, CREATE ON SCHEMA migrail TO {role}",
        "GRANT SELECT, INSERT ON migrail.history TO {role}",
    )
    with login_role(target, *grants) as (_, as_role):
        monkeypatch.setenv("DATABASE_URL", as_role.render_as_string(hide_password=False))
        assert main(["migrate", "--to", "0002"]) == 0
        assert version(target) == ["0002"]
        capsys.readouterr()
        assert main(["migrate", "--to", "-1", "--yes"]) == 2
        assert capsys.readouterr().err.endswith(
            "error: migrail.history has no column direction, and this role may not add it: a "
            "revision undone could not be recorded as such\n"
            "hint: an owner of migrail.history runs: ALTER TABLE migrail.history ADD COLUMN "
            "direction text NOT NULL DEFAULT 'upgrade'\n"
        )
        assert version(target) == ["0002"]
        run_sql(target, f"ALTER TABLE migrail.history ADD COLUMN {' '.join(DIRECTION)}")
        assert main(["migrate", "--to", "-1", "--yes"]) == 0
        assert _history(target) == [
            ("0001", "upgrade", True),
            ("0002", "upgrade", True),
            ("0002", "downgrade", True),
        ]


def _plan_approve_apply(capsys: pytest.CaptureFixture[str], *to: str) -> tuple[int, str]:
    """plan (as alice, ``to``: --to REV), approve (as bob), apply: exit code and messages."""
    with pytest.MonkeyPatch.context() as as_reviewer:
        assert main(["plan", "--env", "production", *to]) == 0
        as_reviewer.setenv("MIGRAIL_ACTOR", "bob")
        assert main(["approve", "plan.json"]) == 0
    capsys.readouterr()
    code = main(["apply", "--plan", "plan.json"])
    return code, capsys.readouterr().err


def test_a_protected_database_goes_down_through_an_approved_plan(
    three: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("MIGRAIL_ACTOR", "alice")
    assert _plan_approve_apply(capsys)[0] == 0
    assert version(database_url) == ["0003"]
    code, err = _plan_approve_apply(capsys, "--to", "0001")
    assert code == 0, err
    assert version(database_url) == ["0001"]
    assert "priority" not in columns(database_url, "tasks")
    plan = json.loads((three / "plan.json").read_text())
    assert plan["direction"] == "downgrade"
    assert plan["from_revision"] == ["0003"] and plan["to_revision"] == "0001"
    assert [revision["name"] for revision in plan["revisions"]] == [
        "0003_add_due",
        "0002_add_priority",
    ]
    assert "ALTER TABLE tasks DROP COLUMN due;" in plan["revisions"][0]["sql"]
    assert "**downgrade**" in (three / "plan.md").read_text()
    rows = query(
        database_url,
        "SELECT revision, direction, plan_id FROM migrail.history WHERE direction = 'downgrade'"
        " ORDER BY id",
    )
    assert rows == [("0003", "downgrade", plan["plan_id"]), ("0002", "downgrade", plan["plan_id"])]


def test_a_plan_down_through_an_irreversible_revision_is_refused(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_revision(
        project,
        "0002",
        "add_legacy",
        "0001",
        'op.add_column("tasks", sa.Column("legacy", sa.Integer()))',
        extra='irreversible = "its backfill cannot be told apart from real data"',
    )
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("MIGRAIL_ACTOR", "alice")
    assert _plan_approve_apply(capsys)[0] == 0
    assert main(["plan", "--env", "production", "--to", "base"]) == 2
    assert capsys.readouterr().err == (
        "error: plan --to is refused: 0002_add_legacy cannot be undone: its backfill cannot "
        "be told apart from real data\n"
        "hint: go down no further than it: migrail plan --to 0002_add_legacy\n"
    )
    assert version(database_url) == ["0002"]


def test_a_database_at_one_branch_of_a_merge_gets_the_other_named_as_it_runs(
    project: Path, target: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alembic applies the other branch too; each step is named as the revision it really is."""
    write_revision(
        project,
        "0002",
        "left",
        "0001",
        'op.execute("CREATE TABLE left_t ()")',
        'op.execute("DROP TABLE left_t")',
    )
    write_revision(
        project,
        "0003",
        "right",
        "0001",
        'op.execute("CREATE TABLE right_t ()")',
        'op.execute("DROP TABLE right_t")',
    )
    write_revision(project, "0004", "merge", ("0002", "0003"), "pass")
    assert main(["migrate", "--to", "0003"]) == 0
    assert version(target) == ["0003"]
    capsys.readouterr()
    assert main(["migrate"]) == 0
    err = capsys.readouterr().err
    assert "2 pending: 0002_left, 0004_merge" in err
    assert "[✓] 0002_left (" in err and "[✓] 0004_merge (" in err
    assert "Applied 2 revision(s); the database is at 0004_merge" in err
    assert version(target) == ["0004"]
    assert query(target, "SELECT to_regclass('left_t') IS NOT NULL") == [(True,)]

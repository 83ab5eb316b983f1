"""The lock policy: what staging measures each revision doing to a table that existed before it,
classed, judged by severity, and fixed or accepted in the revision; and the static alarm a
measurement clears."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.projects import write_revision

NOTE = "bounded by lock_timeout 5s\n"


def _without_models(project: Path) -> None:
    """No models: the runs below fail for the lock policy alone, never for a missing revision."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('metadata = "tasks_models:metadata"\n', ""))


def _staging(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["migrate-staging", "--no-cache", *args])
    return code, capsys.readouterr().err


def _add_number(project: Path) -> None:
    """0002: a nullable int column on tasks, a change of the catalog alone."""
    write_revision(
        project,
        "0002",
        "add_number",
        "0001",
        'op.add_column("tasks", sa.Column("number", sa.Integer()))',
        'op.drop_column("tasks", "number")',
    )


def test_a_type_change_that_rewrites_the_table_fails_and_says_what_to_do(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_models(project)
    _add_number(project)
    write_revision(
        project,
        "0003",
        "bigger_number",
        "0002",
        'op.alter_column("tasks", "number", type_=sa.BigInteger())',
        'op.alter_column("tasks", "number", type_=sa.Integer())',
    )
    for _ in range(2):  # the template cache keeps nothing a lock error would then skip
        code = main(["migrate-staging"])
        err = capsys.readouterr().err
        assert "│ rewrite: ACCESS EXCLUSIVE on tasks " in err, err
        assert code == 1
    assert (
        "error: 0003_bigger_number: rewrite of tasks: it rewrites the whole table under ACCESS "
        "EXCLUSIVE: reads and writes wait for as long as that takes\n"
        "  instead: add a new column, backfill it in batches and swap it in, in later revisions "
    ) in err
    assert (
        "hint: write the safe form, or accept it in the revision: "
        "# migrail: allow rewrite -- why it is safe here\n"
    ) in err
    assert err.endswith("[✓] round trip: down to base and up to head again\n")


def test_set_not_null_on_a_table_with_rows_is_a_scan_under_access_exclusive(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "name_optional",
        "0001",
        'op.alter_column("tasks", "name", nullable=True)',
        'op.alter_column("tasks", "name", nullable=False)',
    )
    write_revision(
        project,
        "0003",
        "name_required",
        "0002",
        'op.alter_column("tasks", "name", nullable=False)',
        'op.alter_column("tasks", "name", nullable=True)',
    )
    code, err = _staging(capsys)
    assert code == 1
    assert "data: sample rows: 3 in tasks\n" in err
    assert "│ 0002_name_optional │" in err and "0002_name_optional:" not in err
    assert (
        "error: 0003_name_required: scan-under-exclusive of tasks: it scans the whole table "
        "under ACCESS EXCLUSIVE: reads and writes wait for as long as that takes\n"
        "  instead: add the constraint NOT VALID, then VALIDATE it in a later revision "
    ) in err
    assert f"1 revision takes a brief ACCESS EXCLUSIVE for metadata-only changes, {NOTE}" in err


def test_a_plain_create_index_blocks_writes_while_it_builds(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_models(project)
    write_revision(
        project,
        "0002",
        "index_owner",
        "0001",
        'op.create_index("ix_tasks_owner", "tasks", ["owner"])',
        'op.drop_index("ix_tasks_owner", table_name="tasks")',
    )
    code, err = _staging(capsys)
    assert code == 1
    assert "│ write-blocking-index-build: SHARE on tasks " in err
    assert (
        "error: 0002_index_owner: write-blocking-index-build of tasks: it builds an index under "
        "SHARE: writes wait until it is built\n"
        "  instead: CREATE INDEX CONCURRENTLY in an autocommit block "
    ) in err


def test_nullable_columns_are_said_once_and_pass(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_models(project)
    previous = "0001"
    for number, column in enumerate(("colour", "size", "weight"), start=2):
        revision = f"000{number}"
        write_revision(
            project,
            revision,
            f"add_{column}",
            previous,
            f'op.add_column("tasks", sa.Column("{column}", sa.Text()))',
            f'op.drop_column("tasks", "{column}")',
        )
        previous = revision
    code, err = _staging(capsys)
    assert code == 0, err
    assert err.count("│ metadata-only: ACCESS EXCLUSIVE on tasks ") == 3
    lines = [line for line in err.splitlines() if "ACCESS EXCLUSIVE" in line and "│" not in line]
    assert lines == [
        "3 revisions take a brief ACCESS EXCLUSIVE for metadata-only changes, "
        "bounded by lock_timeout 5s"
    ]


def test_an_allow_comment_with_a_reason_accepts_a_class_and_one_without_does_not(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_models(project)
    write_revision(
        project,
        "0002",
        "index_owner",
        "0001",
        "# migrail: allow write-blocking-index-build\n"
        '    op.create_index("ix_tasks_owner", "tasks", ["owner"])',
        'op.drop_index("ix_tasks_owner", table_name="tasks")',
    )
    code, err = _staging(capsys)
    assert code == 1
    assert "error: 0002_index_owner: write-blocking-index-build of tasks" in err

    path = project / "migrations" / "versions" / "0002_index_owner.py"
    allow = "allow write-blocking-index-build -- tasks stays under 1,000 rows"
    path.write_text(path.read_text().replace("allow write-blocking-index-build", allow))
    code, err = _staging(capsys)
    assert code == 0, err
    assert (
        "allowed: 0002_index_owner: write-blocking-index-build of tasks: it builds an index "
        "under SHARE: writes wait until it is built (the revision says why)\n"
    ) in err
    main(["lint"])  # lint leaves the class to staging: not an unused suppression
    assert "unused-suppression" not in capsys.readouterr().err


def test_the_locks_table_sets_a_class_severity(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_models(project)
    write_revision(
        project,
        "0002",
        "index_owner",
        "0001",
        'op.create_index("ix_tasks_owner", "tasks", ["owner"])',
        'op.drop_index("ix_tasks_owner", table_name="tasks")',
    )
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text + '\n[tool.migrail.locks]\nwrite-blocking-index-build = "warning"\n')
    code, err = _staging(capsys)
    assert code == 0, err
    assert "warning: 0002_index_owner: write-blocking-index-build of tasks" in err

    pyproject.write_text(text + '\n[tool.migrail.locks]\nrewrite = "loud"\n')
    assert main(["migrate-staging"]) == 2
    assert (
        "[tool.migrail.locks] rewrite must be one of error, warning, note, off, not 'loud'"
        in capsys.readouterr().err
    )


def _widen_code(project: Path) -> None:
    """0002 adds a varchar(20) column, 0003 widens it: squawk's changing-column-type."""
    write_revision(
        project,
        "0002",
        "add_code",
        "0001",
        'op.add_column("tasks", sa.Column("code", sa.String(20)))',
        'op.drop_column("tasks", "code")',
    )
    write_revision(
        project,
        "0003",
        "wider_code",
        "0002",
        'op.alter_column("tasks", "code", type_=sa.String(50))',
        'op.alter_column("tasks", "code", type_=sa.String(20))',
    )


def test_a_varchar_widening_measured_without_rewrite_is_only_a_note_in_the_report(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_models(project)
    _widen_code(project)
    report = project / "report.md"
    code, err = _staging(capsys, "--report", str(report))
    assert code == 0, err
    assert "│ metadata-only: ACCESS EXCLUSIVE on tasks " in err
    widening = [
        line
        for line in report.read_text().splitlines()
        if "`0003_wider_code`" in line and "changing-column-type" in line
    ]
    assert len(widening) == 1, report.read_text()
    assert "**changing-column-type** (note) " in widening[0]
    assert widening[0].endswith(
        "(measured in staging: no rewrite and no scan of the table, so a note)"
    )


def test_widening_an_indexed_varchar_builds_no_index(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL makes the index anew in the catalog on the same files: nothing is built, so
    it is metadata-only, not a write-blocking index build. A type change that does rebuild the
    index (varchar to integer) is still one, with its rewrite."""
    _without_models(project)
    _widen_code(project)
    write_revision(
        project,
        "0004",
        "index_code",
        "0003",
        "with op.get_context().autocommit_block():\n"
        '        op.create_index("tasks_code", "tasks", ["code"], postgresql_concurrently=True)',
        'op.drop_index("tasks_code")',
    )
    write_revision(
        project,
        "0005",
        "widen_indexed_code",
        "0004",
        'op.alter_column("tasks", "code", type_=sa.String(80))',
        'op.alter_column("tasks", "code", type_=sa.String(50))',
    )
    write_revision(
        project,
        "0006",
        "code_as_number",
        "0005",
        'op.alter_column("tasks", "code", type_=sa.Integer(), postgresql_using="length(code)")',
        'op.alter_column("tasks", "code", type_=sa.String(80))',
    )
    code, err = _staging(capsys)
    [widened] = [line for line in err.splitlines() if line.startswith("│ 0005_widen_indexed")]
    assert "│ metadata-only: ACCESS EXCLUSIVE on tasks " in widened, err
    assert "0005_widen_indexed_code: write-blocking-index-build" not in err
    [retyped] = [line for line in err.splitlines() if line.startswith("│ 0006_code_as_number")]
    assert "rewrite: ACCESS EXCLUSIVE on tasks" in retyped, err
    assert code == 1


def test_a_varchar_widening_measured_without_rewrite_is_only_a_note_in_the_plan(
    project: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGING_DATABASE_URL", database_url.render_as_string(hide_password=False))
    _widen_code(project)
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text()
        .replace("Column, DateTime,", "Column, DateTime, String,")
        .replace(
            '    Column("owner", Text),\n',
            '    Column("owner", Text),\n    Column("code", String(50)),\n',
        )
    )
    assert main(["migrate", "--env", "staging", "--to", "0002"]) == 0
    assert main(["plan", "--env", "staging", "--force"]) == 0  # squawk's prefer-text-field
    plan = json.loads((project / "plan.json").read_text())
    [finding] = [f for f in plan["findings"] if f["rule"] == "changing-column-type"]
    assert finding["severity"] == "note"
    assert plan["revisions"][0]["measured"] == "metadata-only: ACCESS EXCLUSIVE on tasks"
    assert "**metadata-only: ACCESS EXCLUSIVE on tasks**" in (project / "plan.md").read_text()


def test_an_exclusive_lock_held_for_seconds_is_not_called_brief(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A nullable ADD COLUMN, then a second of other work in the same transaction: the ACCESS
    EXCLUSIVE lock is held until COMMIT, so it is a warning with how long, not a brief note."""
    _without_models(project)
    write_revision(
        project,
        "0002",
        "add_number_then_wait",
        "0001",
        'op.add_column("tasks", sa.Column("number", sa.Integer()))\n'
        '    op.execute("SELECT pg_sleep(1.1)")',
        'op.drop_column("tasks", "number")',
    )
    code, err = _staging(capsys)
    assert code == 0, err
    assert (
        "warning: 0002_add_number_then_wait: exclusive-held-long of tasks: it holds ACCESS "
        "EXCLUSIVE until its transaction ends, 1."
    ) in err, err
    assert "│ exclusive-held-long: ACCESS EXCLUSIVE on tasks " in err
    assert "a brief ACCESS EXCLUSIVE" not in err

    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.migrail.locks]\nexclusive-held-long = "error"\n'
    )
    code, err = _staging(capsys)
    assert code == 1, err
    assert "  instead: keep the lock's transaction short: the ALTER in a revision of its own" in err

"""A revision file named without its id (Alembic's date-based ``file_template``) is shown with
its id wherever output names it: the id is what people search logs and the history for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from testing.git import commit_all, git
from testing.projects import NAMES_WITHOUT_IDS, UNDATED_TEMPLATE, date_named_history, write_revision

CREATE = "2024-01-02-0304_create_tasks (1975ea83b712)"
NOTE = "2024-02-03-0405_note_tasks (a1b2c3d4e5f6)"
TAG = "2024-03-04-0506_tag_tasks (0f1e2d3c4b5a)"
NOTE_FILE = "2024-06-01-0900_add_note.py"
TAG_FILE = "2024-06-02-0900_add_tag.py"


@pytest.fixture
def undated(project: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test project named by a date-based template without ids, its development and
    production databases the test's own."""
    date_named_history(project, naming="", template=UNDATED_TEMPLATE, names=NAMES_WITHOUT_IDS)
    url = database_url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", url)
    return project


def test_status_migrate_and_a_failure_name_each_revision_with_its_id(
    undated: Path, database_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    assert capsys.readouterr().err.split("\n")[1:] == [
        "database at: base",
        f"head:        {TAG}",
        "pending (3):",
        f"  {CREATE}",
        f"  {NOTE}",
        f"  {TAG}",
        "",
    ]
    assert main(["migrate"]) == 0
    err = capsys.readouterr().err
    assert f"3 pending: {CREATE}, {NOTE}, {TAG}\n" in err
    assert re.search(rf"\[✓\] {re.escape(TAG)} \(\d+ ms\)\n", err)
    assert err.endswith(f"[✓] Applied 3 revision(s); the database is at {TAG}\n")
    write_revision(
        undated,
        "ffff00001111",
        "broken",
        "0f1e2d3c4b5a",
        'op.execute("SELECT * FROM missing")',
        file_name="2024-05-06-0708_broken.py",
    )
    assert main(["migrate"]) == 1
    assert capsys.readouterr().err.split("\n")[1:] == [
        "1 pending: 2024-05-06-0708_broken (ffff00001111)",
        'error: upgrade of 2024-05-06-0708_broken (ffff00001111) failed: relation "missing" '
        "does not exist (SQLSTATE 42P01)",
        "  statement: SELECT * FROM missing",
        f"  the database is at {TAG}",
        "",
    ]


def test_lint_names_each_revision_with_its_id(
    undated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint"]) == 1  # the first revision's SQL file says 0001 in a comment: stale
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if not line.startswith(" ")][:3] == [
        CREATE,
        NOTE,
        TAG,
    ]


def test_the_staging_summary_and_the_plan_name_each_revision_with_its_id(
    undated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate-staging"]) == 0
    rows = [line for line in capsys.readouterr().err.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == [CREATE, NOTE, TAG]
    assert main(["plan", "--env", "production", "--force"]) == 0
    assert capsys.readouterr().err.startswith(f"[✓] planned {CREATE}, {NOTE}, {TAG} for production")
    headings = [
        line for line in (undated / "plan.md").read_text().splitlines() if line.startswith("###")
    ]
    assert headings == [f"### {CREATE}", f"### {NOTE}", f"### {TAG}"]


def test_rebase_names_each_moved_revision_with_its_id(
    undated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sum", "--update"]) == 0
    commit_all(undated, "released")
    git(undated, "checkout", "-q", "-b", "feature")
    write_revision(undated, "bbbb00000001", "add_note", "0f1e2d3c4b5a", "pass", file_name=NOTE_FILE)
    commit_all(undated, "feature: note")
    git(undated, "checkout", "-q", "main")
    write_revision(undated, "cccc00000001", "add_tag", "0f1e2d3c4b5a", "pass", file_name=TAG_FILE)
    commit_all(undated, "main: tag")
    git(undated, "checkout", "-q", "feature")
    git(undated, "merge", "-q", "main")
    capsys.readouterr()
    assert main(["check", "--only", "single-head"]) == 1
    assert capsys.readouterr().err == (
        "error: single-head/multiple-heads: the history has 2 heads: "
        "2024-06-01-0900_add_note (bbbb00000001), 2024-06-02-0900_add_tag (cccc00000001)\n"
        "hint: move this branch's new revisions after the other branch's head: "
        "migrail rebase --onto main\n"
        f"  the branches from {TAG}:\n"
        "    2024-06-01-0900_add_note (bbbb00000001)\n"
        "    2024-06-02-0900_add_tag (cccc00000001)\n"
    )
    assert main(["rebase", "--onto", "main"]) == 0
    assert capsys.readouterr().err.startswith(
        "[✓] 2024-06-01-0900_add_note (bbbb00000001) ➜ 2024-06-01-0900_add_note (bbbb00000001) "
        "(after cccc00000001)\n"
    )


def test_the_lint_hook_names_the_revision_with_its_id(
    undated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--only", "lint"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: lint/stale-sql-file: migrations/versions/2024-01-02-0304_create_tasks.py "
        "(1975ea83b712): migrations/sql/2024-01-02-0304_create_tasks.sql no longer says what the "
        "revision runs"
    )

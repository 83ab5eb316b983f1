"""``migrail check`` and ``migrail sum``: one head, released revisions intact, staged or on disk."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from migrail.history.tree import StagedTree, parse_batch
from migrail.main import main
from testing.git import commit_all, git
from testing.projects import write_revision


def test_a_sound_history_passes(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert (
        capsys.readouterr().err
        == "[✓] single-head, immutable, schema-sync, lint: the history is sound\n"
    )


def test_two_heads_are_named_with_their_branches(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "add_a", "0001", "pass")
    write_revision(project, "0003", "add_b", "0002", "pass")
    write_revision(project, "0004", "add_c", "0001", "pass")
    assert main(["check", "--only", "single-head"]) == 1
    assert capsys.readouterr().err == (
        "error: single-head/multiple-heads: the history has 2 heads: 0003_add_b, 0004_add_c\n"
        "hint: move this branch's new revisions after the other branch's head: "
        "migrail rebase --onto main\n"
        "  the branches from 0001_create_tasks:\n"
        "    0002_add_a -> 0003_add_b\n"
        "    0004_add_c\n"
    )


def test_a_second_head_in_a_long_history_is_named_in_a_few_lines(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(2, 301):
        write_revision(project, f"{number:04d}", f"step_{number}", f"{number - 1:04d}", "pass")
    write_revision(project, "0301", "old_branch", "0005", "pass")
    assert main(["check", "--only", "single-head"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: single-head/multiple-heads: the history has 2 heads: 0300_step_300, "
        "0301_old_branch\n"
        "hint: move this branch's new revisions after the other branch's head: "
        "migrail rebase --onto main\n"
        "  the branches from 0005_step_5:\n"
        "    0006_step_6 -> 0007_step_7 -> 0008_step_8 -> (291 more) -> 0300_step_300\n"
        "    0301_old_branch\n"
    )
    assert len(err) < 500


def test_editing_a_recorded_revision_fails_until_the_sum_is_refreshed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    revision = project / "migrations" / "versions" / "0001_create_tasks.py"
    revision.write_text(revision.read_text() + "\n# edited\n")
    assert main(["check", "--only", "immutable"]) == 1
    assert capsys.readouterr().err == (
        "error: immutable/changed: 0001_create_tasks.py was changed after it was recorded in "
        "migrail.sum\n"
        "hint: a released revision stays as it is: restore it; if the change is deliberate, "
        "record it: migrail sum --update --force\n"
    )
    assert main(["sum", "--update", "--force"]) == 0
    assert main(["sum"]) == 0


def test_generate_records_its_revision(
    project: Path, pg_server: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.projects import add_priority_column

    add_priority_column(project)
    assert main(["generate", "add_priority"]) == 0
    assert "0002_add_priority.py sha256:" in (project / "migrations" / "migrail.sum").read_text()
    assert main(["check"]) == 0


def test_staged_judges_the_index_not_the_disk(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(project)
    write_revision(project, "0002", "on_disk_only", "0001", "pass")  # a second head? not staged
    assert main(["check", "--staged", "--only", "single-head"]) == 0
    revision = project / "migrations" / "versions" / "0001_create_tasks.py"
    revision.write_text(revision.read_text() + "\n# edited, staged\n")
    git(project, "add", str(revision))
    revision.write_text(revision.read_text().replace("# edited, staged", ""))  # unstaged undo
    capsys.readouterr()
    assert main(["check", "--staged", "--only", "immutable"]) == 1
    assert "immutable/changed: 0001_create_tasks.py" in capsys.readouterr().err


def test_staged_tree_reads_many_files_in_one_batch(project: Path) -> None:
    commit_all(project)
    tree = StagedTree(project)
    files = tree.revisions(project / "migrations" / "versions")
    assert [path.name for path in files] == ["0001_create_tasks.py"]
    assert tree.read(project / "migrations" / "nope.sql") is None
    assert parse_batch(b"abc blob 3\nxyz\n:f missing\n", 2) == [b"xyz", None]


def test_an_unknown_check_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--only", "single-head,heads"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown check(s): heads\nhint: checks: single-head, immutable, schema-sync, lint\n"
    )


def test_a_model_change_without_migration_shows_the_schema_diff(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.projects import add_priority_column

    add_priority_column(project)
    assert main(["check", "--only", "schema-sync"]) == 1
    assert capsys.readouterr().err == (
        "error: schema-sync/models-changed: the models differ from the schema at head:\n"
        "--- snapshot 0001_create_tasks\n"
        "+++ models\n"
        "@@ -5,2 +5,3 @@\n"
        "     owner TEXT,\n"
        "+    priority INTEGER DEFAULT '0' NOT NULL,\n"
        "     metadata JSONB,\n"
        "hint: write the migration: migrail generate NAME\n"
    )
    # A project whose noxfile has the session is pointed to it.
    (project / "noxfile.py").write_text(
        "import nox\n\n\n@nox.session\ndef generate(session):\n"
        '    session.run("migrail", "generate", *session.posargs)\n'
    )
    assert main(["check", "--only", "schema-sync"]) == 1
    assert capsys.readouterr().err.endswith("hint: write the migration: nox -s generate -- NAME\n")


def test_generate_writes_the_snapshot_and_a_data_migration_passes(
    project: Path, pg_server: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.projects import add_priority_column

    add_priority_column(project)
    assert main(["generate", "add_priority"]) == 0
    snapshot = project / "migrations" / "schema" / "0002_add_priority.sql"
    assert "priority INTEGER DEFAULT '0' NOT NULL" in snapshot.read_text()
    write_revision(
        project,
        "0003",
        "backfill",
        "0002",
        'op.execute("UPDATE tasks SET priority = 1 WHERE priority = 0")',
    )
    assert main(["sum", "--update"]) == 0
    assert main(["check"]) == 0, capsys.readouterr().err


def test_schema_sync_judges_the_staged_models(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.projects import add_priority_column

    commit_all(project)
    add_priority_column(project)  # changed on disk, not staged
    assert main(["check", "--staged", "--only", "schema-sync"]) == 0
    git(project, "add", "tasks_models.py")
    assert main(["check", "--staged", "--only", "schema-sync"]) == 1
    assert "schema-sync/models-changed" in capsys.readouterr().err


def test_without_models_there_is_nothing_to_keep_in_sync(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('metadata = "tasks_models:metadata"\n', ""))
    assert main(["check", "--only", "schema-sync"]) == 0


def test_lint_judges_only_the_revisions_this_commit_changes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "drop_owner", "0001", 'op.drop_column("tasks", "owner")')
    assert main(["sum", "--update"]) == 0
    commit_all(project)  # released, with its finding
    write_revision(
        project, "0003", "index_status", "0002", 'op.create_index("ix", "tasks", ["status"])'
    )
    git(project, "add", "-A")
    capsys.readouterr()
    assert main(["check", "--staged", "--only", "lint"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: lint/require-concurrent-index-creation: migrations/versions/0003_index_status.py:12: "
        in err
    )
    assert "ban-drop-column" not in err
    assert main(["check", "--only", "lint"]) == 1
    assert "lint/ban-drop-column" in capsys.readouterr().err


def test_staged_lint_imports_no_older_revision_and_finds_what_the_full_check_finds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "drop_owner", "0001", 'op.drop_column("tasks", "owner")')
    imported = project.parent / "0002-imported"  # what importing the older revision leaves
    older = project / "migrations" / "versions" / "0002_drop_owner.py"
    older.write_text(older.read_text() + f"\nopen({str(imported)!r}, 'a').close()\n")
    assert main(["sum", "--update"]) == 0
    commit_all(project)
    write_revision(
        project, "0003", "index_status", "0002", 'op.create_index("ix", "tasks", ["status"])'
    )
    git(project, "add", "-A")
    imported.unlink(missing_ok=True)
    capsys.readouterr()

    assert main(["check", "--staged", "--only", "lint"]) == 1
    staged = capsys.readouterr().err
    assert not imported.exists()
    assert main(["check", "--only", "lint"]) == 1
    full = capsys.readouterr().err
    assert imported.exists()

    def about_0003(err: str) -> list[str]:
        return [line for line in err.splitlines() if "0003_index_status" in line]

    assert about_0003(staged) == about_0003(full)
    assert [line.split(":")[1] for line in about_0003(staged)] == [
        " lint/require-concurrent-index-creation",
        " lint/empty-downgrade",
    ]


def test_staged_lint_ignores_revision_files_that_are_not_added(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(project)
    write_revision(project, "0002", "ready", "0001", 'op.execute("SELECT 1")')
    git(project, "add", "-A")
    write_revision(project, "0003", "work_in_progress", "0001", "pass")  # a second head, unstaged
    assert main(["check", "--staged", "--only", "lint"]) == 0, capsys.readouterr().err


def test_an_empty_revision_does_not_bless_a_model_change(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.projects import add_priority_column

    add_priority_column(project)
    assert main(["generate", "--empty", "data_fix"]) == 0
    assert not (project / "migrations" / "schema" / "0002_data_fix.sql").exists()
    capsys.readouterr()
    assert main(["check", "--only", "schema-sync"]) == 1
    assert "schema-sync/models-changed" in capsys.readouterr().err


def test_snapshot_writes_the_heads_schema_from_the_models(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = project / "migrations" / "schema" / "0001_create_tasks.sql"
    snapshot.unlink()
    assert main(["check", "--only", "schema-sync"]) == 1
    assert "schema-sync/no-snapshot" in capsys.readouterr().err
    assert main(["snapshot"]) == 0
    assert capsys.readouterr().err == "[✓] wrote migrations/schema/0001_create_tasks.sql\n"
    assert re.match(
        r"-- models sha256:[0-9a-f]{64}\n\nCREATE TABLE tasks \(\n", snapshot.read_text()
    )


def test_unchanged_model_files_pass_without_being_imported(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = project / "tasks_models.py"
    assert main(["snapshot"]) == 0
    models.write_text(models.read_text() + "\nraise RuntimeError('imported')\n")
    sys.modules.pop("tasks_models", None)  # as in a process of its own, like every hook run
    assert main(["check", "--only", "schema-sync"]) == 2  # changed files: imported, and it raises
    models.write_text(models.read_text().replace("\nraise RuntimeError('imported')\n", ""))
    assert main(["check", "--only", "schema-sync"]) == 0  # the same bytes: not imported at all


def test_a_missing_sum_says_how_to_start_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "migrations" / "migrail.sum").unlink()
    assert main(["check", "--only", "immutable"]) == 1
    assert capsys.readouterr().err == (
        "error: immutable/no-sum: migrations/migrail.sum does not exist\n"
        "hint: record the history as it stands: migrail sum --update\n"
    )

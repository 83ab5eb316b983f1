"""``migrail rebase``: two branches each add a revision; after the merge, one head again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.git import commit_all, git
from testing.projects import write_revision


def _add_column(project: Path, name: str) -> None:
    sys.modules.pop("tasks_models", None)  # each generate runs in a process of its own in real life
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text().replace(
            '    Column("owner", Text),\n',
            f'    Column("owner", Text),\n    Column("{name}", Text),\n',
        )
    )


def test_the_branch_revisions_move_after_main_and_the_history_proves(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(project, "released")
    git(project, "checkout", "-q", "-b", "feature")
    _add_column(project, "note")
    assert main(["generate", "add_note"]) == 0
    commit_all(project, "feature: note")
    git(project, "checkout", "-q", "main")
    _add_column(project, "tag")
    assert main(["generate", "add_tag"]) == 0
    commit_all(project, "main: tag")
    git(project, "checkout", "-q", "feature")
    merge = git(project, "merge", "main", check=False)
    assert "CONFLICT (content): Merge conflict in migrations/migrail.sum" in merge
    assert "CONFLICT (content): Merge conflict in tasks_models.py" in merge
    models = project / "tasks_models.py"  # both columns, as a developer resolves it
    models.write_text(
        "\n".join(
            line
            for line in models.read_text().splitlines()
            if not line.startswith(("<<<", "===", ">>>"))
        )
        + "\n"
    )
    sys.modules.pop("tasks_models", None)
    capsys.readouterr()
    assert main(["check", "--only", "single-head"]) == 1  # two revisions numbered 0002

    assert main(["rebase", "--onto", "main"]) == 0
    err = capsys.readouterr().err
    assert "[✓] 0002_add_note ➜ 0003_add_note (after 0002)\n" in err
    versions = project / "migrations" / "versions"
    assert sorted(path.name for path in versions.glob("*.py")) == [
        "0001_create_tasks.py",
        "0002_add_tag.py",
        "0003_add_note.py",
    ]
    moved = (versions / "0003_add_note.py").read_text()
    assert "revision: str = '0003'" in moved
    assert "down_revision: str | Sequence[str] | None = '0002'" in moved
    assert "Revision ID: 0003\nRevises: 0002\n" in moved
    assert (project / "migrations" / "schema" / "0003_add_note.sql").is_file()
    assert not (project / "migrations" / "schema" / "0002_add_note.sql").exists()
    sql = (project / "migrations" / "sql" / "0003_add_note.sql").read_text()
    assert (
        "UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002';"
        in sql
    )
    assert main(["check"]) == 0, capsys.readouterr().err
    assert main(["migrate-staging"]) == 0, capsys.readouterr().err


def test_nothing_new_on_this_branch(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit_all(project)
    assert main(["rebase"]) == 0
    assert (
        capsys.readouterr().err
        == "No revision is new on this branch against main: nothing to move\n"
    )


def test_an_unknown_branch_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit_all(project)
    assert main(["rebase", "--onto", "trunk"]) == 2
    assert capsys.readouterr().err == (
        "error: 'trunk' is not a branch or commit with migrations/versions\n"
        "hint: name the branch to rebase onto: --onto main\n"
    )


def test_rebasing_before_merging_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(project, "released")
    git(project, "checkout", "-q", "-b", "feature")
    write_revision(project, "0002", "add_a", "0001", "pass")
    commit_all(project, "feature")
    git(project, "checkout", "-q", "main")
    write_revision(project, "0002", "add_b", "0001", "pass")
    commit_all(project, "main")
    git(project, "checkout", "-q", "feature")
    assert main(["rebase", "--onto", "main"]) == 2
    assert capsys.readouterr().err == (
        "error: main has revisions this checkout does not: 0002_add_b.py\n"
        "hint: merge it first (git merge main), then: migrail rebase --onto main\n"
    )


def test_several_revisions_and_timestamp_ids_move_in_order(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"', 'migrations = "migrations"\nrevision_naming = "timestamp"'
        )
    )
    commit_all(project, "released")
    git(project, "checkout", "-q", "-b", "feature")
    write_revision(project, "20260101_000000", "early", "0001", "pass")
    write_revision(project, "20260101_000001", "early_too", "20260101_000000", "pass")
    commit_all(project, "feature")
    git(project, "checkout", "-q", "main")
    write_revision(project, "20260301_000000", "later", "0001", "pass")
    assert main(["sum", "--update"]) == 0
    commit_all(project, "main")
    git(project, "checkout", "-q", "feature")
    git(project, "merge", "-q", "main", "--no-edit")
    assert main(["rebase", "--onto", "main"]) == 0
    err = capsys.readouterr().err
    assert "[✓] 20260101_000000_early ➜ 20260301_000001_early (after 20260301_000000)\n" in err
    assert (
        "[✓] 20260101_000001_early_too ➜ 20260301_000002_early_too (after 20260301_000001)\n" in err
    )
    assert main(["check", "--only", "single-head,immutable"]) == 0, capsys.readouterr().err


def test_a_parent_tuple_over_several_lines_is_rewritten_whole() -> None:
    from migrail.history.rebase import _set

    text = 'revision: str = "0002"\ndown_revision = (\n    "0001",\n)\nbranch_labels = None\n'
    assert _set(text, "down_revision", "'0009'") == (
        "revision: str = \"0002\"\ndown_revision = '0009'\nbranch_labels = None\n"
    )

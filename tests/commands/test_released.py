"""Released or not: revisions on the base branch stay as recorded, this branch's are drafts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.history.sums import parse_sum
from migrail.main import main
from testing.git import commit_all, git
from testing.postgres import run_sql
from testing.projects import forge_sum_line, write_revision

SUM_UPDATED = (
    "error: immutable/sum-updated: migrations/migrail.sum updated for unreleased revision(s): "
    "0002_add_note.py\n"
    "hint: git add migrations/migrail.sum and commit again\n"
)


@pytest.fixture
def branch(project: Path) -> Path:
    """The project released on main (0001), and a feature branch that adds 0002."""
    commit_all(project, "released history")
    git(project, "checkout", "-q", "-b", "feature")
    write_revision(project, "0002", "add_note", "0001", "pass")
    assert main(["sum", "--update"]) == 0
    commit_all(project, "feature: add note")
    return project


def _recorded(project: Path) -> dict[str, str]:
    return parse_sum((project / "migrations" / "migrail.sum").read_text())[0]


def test_an_unreleased_revision_is_edited_and_deleted_and_the_sum_follows(
    branch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    revision = branch / "migrations" / "versions" / "0002_add_note.py"
    revision.write_text(revision.read_text() + "\n# edited\n")
    capsys.readouterr()
    assert main(["check", "--only", "immutable"]) == 1
    assert capsys.readouterr().err == SUM_UPDATED
    assert main(["check", "--only", "immutable"]) == 0
    capsys.readouterr()
    revision.unlink()
    assert main(["check", "--only", "immutable"]) == 1
    assert capsys.readouterr().err == SUM_UPDATED
    assert main(["check", "--only", "immutable"]) == 0
    assert sorted(_recorded(branch)) == ["0001_create_tasks.py"]


def test_an_edit_to_a_released_revision_is_refused_and_sum_update_refuses_it_too(
    branch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    revision = branch / "migrations" / "versions" / "0001_create_tasks.py"
    revision.write_text(revision.read_text() + "\n# edited\n")
    capsys.readouterr()
    assert main(["check", "--only", "immutable"]) == 1
    assert capsys.readouterr().err == (
        "error: immutable/changed: 0001_create_tasks.py was changed after it was recorded in "
        "migrail.sum\n"
        "hint: a released revision stays as it is: restore it; if the change is deliberate, "
        "record it: migrail sum --update --force\n"
    )
    before = _recorded(branch)
    assert main(["sum", "--update"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        "error: released revision(s) changed since recorded in migrail.sum: 0001_create_tasks.py\n"
    )
    assert _recorded(branch) == before
    assert main(["sum", "--update", "--force"]) == 0
    assert "released revision(s) recorded anew (--force): 0001_create_tasks.py" in (
        capsys.readouterr().err
    )
    assert main(["check", "--only", "immutable"]) == 0


def test_the_base_branch_can_be_configured(
    branch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a base branch of its own (``trunk``, where 0002 is too), 0002 is released."""
    git(branch, "branch", "trunk")
    pyproject = branch / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.migrail]\n", '[tool.migrail]\nbase_branch = "trunk"\n')
    )
    revision = branch / "migrations" / "versions" / "0002_add_note.py"
    revision.write_text(revision.read_text() + "\n# edited\n")
    capsys.readouterr()
    assert main(["check", "--only", "immutable"]) == 1
    assert "error: immutable/changed: 0002_add_note.py was changed" in capsys.readouterr().err


def test_the_remotes_default_branch_is_the_base_before_main(
    branch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clone of a project whose default branch is ``develop`` (which has 0002) records it as
    origin/HEAD: 0002 is released there, though ``main`` lacks it."""
    git(branch, "update-ref", "refs/remotes/origin/develop", "HEAD")
    git(branch, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/develop")
    revision = branch / "migrations" / "versions" / "0002_add_note.py"
    revision.write_text(revision.read_text() + "\n# edited\n")
    capsys.readouterr()
    assert main(["check", "--only", "immutable"]) == 1
    assert "error: immutable/changed: 0002_add_note.py was changed" in capsys.readouterr().err
    git(branch, "symbolic-ref", "--delete", "refs/remotes/origin/HEAD")
    main(["check", "--only", "immutable"])  # main is the base again: 0002 a draft there
    assert "was changed" not in capsys.readouterr().err


def test_drop_removes_an_unreleased_revision_with_its_sql_snapshot_and_sum_line(
    branch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = branch / "migrations"
    (migrations / "sql" / "0002_add_note.sql").write_text("SELECT 1;\n")
    (migrations / "schema" / "0002_add_note.sql").write_text("-- schema\n")
    capsys.readouterr()
    assert main(["drop", "0002"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "[✓] removed migrations/versions/0002_add_note.py",
        "[✓] removed migrations/sql/0002_add_note.sql",
        "[✓] removed migrations/schema/0002_add_note.sql",
        "[✓] updated migrations/migrail.sum",
    ]
    assert not (migrations / "versions" / "0002_add_note.py").exists()
    assert not (migrations / "sql" / "0002_add_note.sql").exists()
    assert not (migrations / "schema" / "0002_add_note.sql").exists()
    assert sorted(_recorded(branch)) == ["0001_create_tasks.py"]
    assert main(["check", "--only", "single-head,immutable"]) == 0


def test_drop_refuses_a_released_revision_and_one_others_build_on(
    branch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(branch, "0003", "add_tag", "0002", "pass")
    assert main(["sum", "--update"]) == 0
    files = sorted(p.name for p in (branch / "migrations").rglob("*") if p.is_file())
    capsys.readouterr()
    assert main(["drop", "0001_create_tasks"]) == 2
    assert capsys.readouterr().err == (
        "error: 0001_create_tasks is released (it is on main), so it may have run somewhere\n"
        "hint: undo it with a new revision instead: migrail generate NAME\n"
    )
    assert main(["drop", "0002"]) == 2
    assert capsys.readouterr().err == (
        "error: 0002_add_note cannot be dropped: 0003_add_tag build(s) on it\n"
        "hint: drop those first, newest first: migrail drop 0003_add_tag\n"
    )
    assert sorted(p.name for p in (branch / "migrations").rglob("*") if p.is_file()) == files


def test_a_lint_error_in_a_released_revision_is_a_note_in_a_new_one_a_failure(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "drop_owner", "0001", 'op.drop_column("tasks", "owner")')
    assert main(["sum", "--update"]) == 0
    assert main(["lint", "--fix-sql"]) == 1
    commit_all(project, "released, with its finding")
    git(project, "checkout", "-q", "-b", "feature")
    capsys.readouterr()
    assert main(["check", "--only", "lint"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("note: lint/ban-drop-column: migrations/versions/0002_drop_owner.py:12: ")
    assert err.endswith("(released)\n[✓] lint: the history is sound\n")
    assert main(["lint"]) == 0  # as check: the baseline is shown, and fails nothing
    err = capsys.readouterr().err
    assert "  baseline ban-drop-column  migrations/versions/0002_drop_owner.py:12\n" in err
    assert err.endswith(
        "0 error(s), 0 warning(s) in 2 revision(s) linted, and 2 in released revisions (the "
        "baseline: shown, not failing)\n"
    )
    write_revision(project, "0003", "drop_title", "0002", 'op.drop_column("tasks", "title")')
    assert main(["check", "--only", "lint"]) == 1
    err = capsys.readouterr().err
    assert "note: lint/ban-drop-column: migrations/versions/0002_drop_owner.py:12: " in err
    assert "error: lint/ban-drop-column: migrations/versions/0003_drop_title.py:12: " in err


def test_sql_files_are_asked_only_of_revisions_not_released(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An adopted history has no migrations/sql: its released revisions are not each a warning."""
    write_revision(project, "0002", "add_note", "0001", "pass")
    for path in (project / "migrations" / "sql").glob("*.sql"):
        path.unlink()
    commit_all(project, "released history, without SQL files")
    git(project, "checkout", "-q", "-b", "feature")
    write_revision(project, "0003", "add_tag", "0002", "pass")
    capsys.readouterr()
    assert main(["lint"]) == 0
    err = capsys.readouterr().err
    assert "warning missing-sql-file  migrations/versions/0003_add_tag.py" in err
    assert err.count("warning missing-sql-file") == 1

    sql = project / "migrations" / "sql"
    assert main(["lint", "--fix-sql"]) == 0  # the new revision's file; no released one's
    err = capsys.readouterr().err
    assert sorted(path.name for path in sql.glob("*.sql")) == ["0003_add_tag.sql"]
    assert (
        "2 released revisions without a SQL file left so (released revisions need none): "
        "--fix-sql --all-sql writes them too\n"
    ) in err
    assert main(["lint", "--all-sql"]) == 2
    assert "error: --all-sql goes with --fix-sql\n" in capsys.readouterr().err
    assert main(["lint", "--fix-sql", "--all-sql"]) == 0
    assert sorted(path.name for path in sql.glob("*.sql")) == [
        "0001_create_tasks.sql",
        "0002_add_note.sql",
        "0003_add_tag.sql",
    ]


def test_drop_refuses_a_draft_that_a_protected_environment_already_ran(
    branch: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Applied from its branch (a hotfix), a revision is released before git knows it."""
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    run_sql(
        database_url,
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
        "INSERT INTO alembic_version VALUES ('0002')",
    )
    files = sorted(p.name for p in (branch / "migrations").rglob("*") if p.is_file())
    capsys.readouterr()
    assert main(["drop", "0002"]) == 2
    assert capsys.readouterr().err == (
        "error: 0002_add_note is applied to production (a protected environment), so it is "
        "released although its branch is not merged\n"
        "hint: undo it with a new revision instead: migrail generate NAME\n"
    )
    assert sorted(p.name for p in (branch / "migrations").rglob("*") if p.is_file()) == files

    run_sql(database_url, "UPDATE alembic_version SET version_num = '0001'")
    assert main(["drop", "0002"]) == 0
    assert not (branch / "migrations" / "versions" / "0002_add_note.py").exists()


def test_drop_says_when_a_protected_environment_cannot_be_asked(
    branch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", "postgresql://app:s3cret@127.0.0.1:1/prod?connect_timeout=2"
    )
    capsys.readouterr()
    assert main(["drop", "0002"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(
        "warning: could not ask production whether 0002_add_note ran there: cannot connect to "
        "postgresql://app:***@127.0.0.1:1/prod"
    )
    assert "s3cret" not in err
    assert "[✓] removed migrations/versions/0002_add_note.py\n" in err


def test_a_released_revision_edited_with_the_sum_forged_to_match_is_still_refused(
    branch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sum can be edited along with the revision; the base branch cannot."""
    revision = branch / "migrations" / "versions" / "0001_create_tasks.py"
    revision.write_text(revision.read_text() + "\nop.execute('DELETE FROM tasks')\n")
    forge_sum_line(branch, "0001_create_tasks.py", revision.read_bytes())
    capsys.readouterr()
    assert main(["check", "--only", "immutable"]) == 1
    changed = (
        "error: immutable/changed: 0001_create_tasks.py differs from the version released on "
        "main, whatever migrail.sum records\n"
        "hint: a released revision stays as it is: restore it; if the change is deliberate, "
        "record it: migrail sum --update --force\n"
    )
    assert capsys.readouterr().err == changed
    assert main(["sum"]) == 1
    assert capsys.readouterr().err == changed
    assert main(["sum", "--update"]) == 2  # nor is it recorded as it stands without --force
    assert "changed since recorded in migrail.sum: 0001_create_tasks.py\n" in (
        capsys.readouterr().err
    )

    revision.unlink()
    forge_sum_line(branch, "0001_create_tasks.py", None)
    assert main(["check", "--only", "immutable"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: immutable/removed: 0001_create_tasks.py is released on main but was removed\n"
    )


def test_a_deliberate_change_to_a_released_revision_is_marked_in_the_sum_and_noted(
    branch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    revision = branch / "migrations" / "versions" / "0001_create_tasks.py"
    released = "sha256:" + hashlib.sha256(revision.read_bytes()).hexdigest()
    revision.write_text(revision.read_text() + "\n# a comment, on purpose\n")
    assert main(["sum", "--update", "--force"]) == 0
    now = "sha256:" + hashlib.sha256(revision.read_bytes()).hexdigest()
    line = f"0001_create_tasks.py {now}+released-as:{released}\n"
    assert line in (branch / "migrations" / "migrail.sum").read_text()
    capsys.readouterr()
    assert main(["check", "--only", "immutable"]) == 0
    assert capsys.readouterr().err == (
        "note: immutable/changed-released: 0001_create_tasks.py differs from the version "
        "released on main: recorded as deliberate in migrations/migrail.sum (migrail sum "
        "--update --force)\n"
        "[✓] immutable: the history is sound\n"
    )
    assert main(["sum", "--update"]) == 0  # recorded once, it stays recorded
    assert line in (branch / "migrations" / "migrail.sum").read_text()

    revision.write_text(revision.read_text() + "# and one more, not recorded\n")
    forge_sum_line(branch, "0001_create_tasks.py", revision.read_bytes())  # the mark binds content
    assert main(["check", "--only", "immutable"]) == 1
    assert "error: immutable/changed: 0001_create_tasks.py differs" in capsys.readouterr().err

    revision.unlink()
    assert main(["sum", "--update", "--force"]) == 0
    assert f"0001_create_tasks.py removed+released-as:{released}\n" in (
        (branch / "migrations" / "migrail.sum").read_text()
    )
    capsys.readouterr()
    assert main(["check", "--only", "immutable"]) == 0
    assert "note: immutable/changed-released: 0001_create_tasks.py" in capsys.readouterr().err

    commit_all(branch, "0001 removed, deliberately")  # merged: released as it is now
    git(branch, "checkout", "-q", "main")
    git(branch, "merge", "-q", "--ff-only", "feature")
    capsys.readouterr()
    assert main(["check", "--only", "immutable"]) == 0
    assert "note:" not in capsys.readouterr().err

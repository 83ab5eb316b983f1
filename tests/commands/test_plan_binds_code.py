"""A plan is bound to the code it was made from: the commit, and the work tree's changes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from testing.git import commit_all, git
from testing.postgres import query, run_sql, version
from testing.projects import write_revision

HELPER = "def run(bind):\n    pass\n"
ONLY_ONLINE = (
    "from alembic import op\n\n\n"
    "def run(bind):\n"
    "    if not op.get_context().as_sql:\n"
    '        bind.exec_driver_sql("DELETE FROM tasks")\n'
)
HINT = (
    "hint: commit the code and plan again (have the new plan approved); in CI, apply runs on a "
    "clean checkout of the commit that was planned and approved\n"
)


@pytest.fixture
def production(project: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    """Production at 0001 with a row in tasks; the project committed with 0002, which calls a
    helper of the application's (``tasks_backfill``) that does nothing. The first release's
    plan files are committed too, as a team that keeps its plans would: a new plan changes them,
    and that is no change to the code."""
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("MIGRAIL_ACTOR", "alice")
    assert main(["plan", "--env", "production"]) == 0
    assert main(["approve", "plan.json"]) == 0
    assert main(["apply", "--plan", "plan.json"]) == 0
    run_sql(database_url, "INSERT INTO tasks (id, name, status) VALUES ('1', 'keep me', 'open')")
    (project / "tasks_backfill.py").write_text(HELPER)
    write_revision(
        project,
        "0002",
        "backfill",
        "0001",
        "import tasks_backfill; tasks_backfill.run(op.get_bind())",
    )
    commit_all(project, "0002 and its helper")
    yield database_url
    sys.modules.pop("tasks_backfill", None)


def _plan_and_approve(project: Path) -> dict[str, object]:
    assert main(["plan", "--env", "production"]) == 0
    with pytest.MonkeyPatch.context() as as_reviewer:
        as_reviewer.setenv("MIGRAIL_ACTOR", "bob")
        assert main(["approve", "plan.json"]) == 0
    plan: dict[str, object] = json.loads((project / "plan.json").read_text())
    return plan


def _apply(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    sys.modules.pop("tasks_backfill", None)  # as a new process would, apply imports it afresh
    capsys.readouterr()
    code = main(["apply", "--plan", "plan.json"])
    return code, capsys.readouterr().err


def test_a_helper_edited_after_approval_without_a_commit_is_refused(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    commit = git(project, "rev-parse", "HEAD").strip()
    plan = _plan_and_approve(project)
    (project / "tasks_backfill.py").write_text(ONLY_ONLINE)
    code, err = _apply(capsys)
    assert query(production, "SELECT name FROM tasks") == [("keep me",)]
    assert version(production) == ["0001"]
    assert (code, err) == (
        2,
        "error: apply is refused: the work tree differs from the one planned (it was planned "
        "with a clean work tree); git status:\n"
        "   M tasks_backfill.py\n" + HINT,
    )
    assert plan["code"] == {"commit": commit}
    assert f"- code: commit `{commit}` (apply runs only on that commit)\n" in (
        (project / "plan.md").read_text()
    )

    git(project, "add", "tasks_backfill.py")  # staged is no better
    assert _apply(capsys)[1].endswith("git status:\n  M  tasks_backfill.py\n" + HINT)
    git(project, "commit", "-q", "--no-verify", "-m", "helper edited")
    code, err = _apply(capsys)
    assert (code, err) == (
        2,
        f"error: apply is refused: the checkout is at commit {git(project, 'rev-parse', 'HEAD')[:12]}, "
        f"and the plan was made from {commit[:12]}\n"
        f"hint: check out {commit[:12]}, or " + HINT.removeprefix("hint: "),
    )
    assert query(production, "SELECT name FROM tasks") == [("keep me",)]

    git(project, "checkout", "-q", commit)  # the planned commit: the plan's own files are no change
    code, err = _apply(capsys)
    assert code == 0, err
    assert version(production) == ["0002"]
    assert query(production, "SELECT name FROM tasks") == [("keep me",)]


def test_an_untracked_python_file_counts_as_a_change(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    _plan_and_approve(project)
    (project / "notes.txt").write_text("not code\n")
    (project / "tasks_backfill").mkdir()  # a package, imported before the module of its name
    (project / "tasks_backfill" / "__init__.py").write_text(ONLY_ONLINE)
    code, err = _apply(capsys)
    assert code == 2
    assert "git status:\n  ?? tasks_backfill/__init__.py\n" in err
    assert "notes.txt" not in err
    assert query(production, "SELECT name FROM tasks") == [("keep me",)]


def test_an_edit_hidden_from_git_status_is_seen_all_the_same(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    _plan_and_approve(project)
    git(project, "update-index", "--assume-unchanged", "tasks_backfill.py")
    (project / "tasks_backfill.py").write_text(ONLY_ONLINE)
    assert (  # all that git status sees: the plan's own files
        git(project, "status", "--porcelain") == " M plan.approval.json\n M plan.json\n M plan.md\n"
    )
    code, err = _apply(capsys)
    assert query(production, "SELECT name FROM tasks") == [("keep me",)]
    assert (code, err) == (
        2,
        "error: apply is refused: the work tree differs from the one planned (it was planned "
        "with a clean work tree); git status:\n"
        "   M tasks_backfill.py (hidden from git status: assume-unchanged or skip-worktree)\n"
        + HINT,
    )


def test_a_plan_made_from_uncommitted_changes_says_so_and_binds_them(
    project: Path, production: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "tasks_backfill.py").write_text(HELPER + "# reviewed nowhere\n")
    plan = _plan_and_approve(project)
    code_record = plan["code"]
    assert isinstance(code_record, dict)
    assert code_record["changes"] == [" M tasks_backfill.py"]
    assert str(code_record["digest"]).startswith("sha256:")
    summary = (project / "plan.md").read_text()
    assert (
        "- **made from uncommitted changes**: the code that runs is not a commit anyone "
        "reviewed; apply refuses unless the work tree is byte for byte as it was:\n"
        "  - ` M tasks_backfill.py`\n"
    ) in summary

    (project / "tasks_backfill.py").write_text(ONLY_ONLINE)
    code, err = _apply(capsys)
    assert (code, err) == (
        2,
        "error: apply is refused: the work tree differs from the one planned (it was planned "
        "with uncommitted changes of its own); git status:\n"
        "   M tasks_backfill.py\n" + HINT,
    )
    assert query(production, "SELECT name FROM tasks") == [("keep me",)]

    (project / "tasks_backfill.py").write_text(HELPER + "# reviewed nowhere\n")
    code, err = _apply(capsys)
    assert code == 0, err
    assert version(production) == ["0002"]


def test_outside_git_the_plan_says_the_code_is_not_bound(
    project: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    assert main(["plan", "--env", "production"]) == 0
    assert "code" not in json.loads((project / "plan.json").read_text())
    assert (
        "- code: **not bound**: not made in a git checkout, so apply checks only the revision "
        "files, env.py and the SQL, not the code they import\n"
    ) in (project / "plan.md").read_text()

"""The published hooks, run by the real pre-commit in another repository, on real commits.

The hook repository is a snapshot of this working tree (so the hooks under test are the ones on
disk), consumed with ``repo: <path>`` and ``rev: <sha>`` as any other repository would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from testing.git import commit_all, git
from testing.projects import REPO, forge_sum_line, write_revision


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("hook-repo")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    commit_all(root, "hooks")
    return root, git(root, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the session: the hook environment is installed once."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def consumer(
    project: Path,
    hook_repo: tuple[Path, str],
    pre_commit_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """The test project as a git repository that uses the hooks, installed into .git/hooks."""
    path, rev = hook_repo
    (project / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        f"  - repo: {path}\n"
        f"    rev: {rev}\n"
        "    hooks:\n"
        "      - id: migrail-single-head\n"
        "      - id: migrail-immutable\n"
        "      - id: migrail-schema-sync\n"
        "      - id: migrail-lint\n"
    )
    monkeypatch.setenv("PRE_COMMIT_HOME", str(pre_commit_home))
    commit_all(project, "released history")
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=project,
        check=True,
        capture_output=True,
    )
    yield project


def _commit(project: Path, message: str) -> tuple[int, str]:
    """``git commit`` with the hooks, as a developer makes it: exit code and what it printed."""
    git(project, "add", "-A")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-m", message],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def _hook_line(output: str, name: str) -> str:
    """pre-commit's status line of one hook: ``name....Passed`` (dots squeezed out)."""
    line = next(line for line in output.splitlines() if line.startswith(name))
    return line.replace(".", " ").split()[-1]


def test_editing_a_released_revision_is_rejected(consumer: Path) -> None:
    revision = consumer / "migrations" / "versions" / "0001_create_tasks.py"
    revision.write_text(revision.read_text().replace("def upgrade", "# tweaked\ndef upgrade"))
    code, output = _commit(consumer, "tweak a released revision")
    assert code == 1
    assert _hook_line(output, "migrail released revisions are unchanged") == "Failed"
    assert (
        "immutable/changed: 0001_create_tasks.py was changed after it was recorded in migrail.sum"
        in output
    )
    assert (
        "hint: a released revision stays as it is: restore it; if the change is deliberate, "
        "record it: migrail sum --update --force" in output
    )


def test_a_released_revision_edited_with_a_forged_sum_is_rejected(consumer: Path) -> None:
    """The sum line and total rewritten by hand to match: the base branch still tells."""
    git(consumer, "checkout", "-q", "-b", "feature")
    revision = consumer / "migrations" / "versions" / "0001_create_tasks.py"
    revision.write_text(revision.read_text().replace("def upgrade", "# tweaked\ndef upgrade"))
    forge_sum_line(consumer, "0001_create_tasks.py", revision.read_bytes())
    code, output = _commit(consumer, "tweak a released revision, and its sum line")
    assert code == 1
    assert _hook_line(output, "migrail released revisions are unchanged") == "Failed"
    assert (
        "immutable/changed: 0001_create_tasks.py differs from the version released on main, "
        "whatever migrail.sum records" in output
    )


def test_the_hook_records_a_new_revision_in_the_sum_and_asks_to_add_it(consumer: Path) -> None:
    write_revision(
        consumer,
        "0002",
        "add_note",
        "0001",
        'op.add_column("tasks", sa.Column("note", sa.Text()))',
        'op.drop_column("tasks", "note")',
    )
    code, output = _commit(consumer, "an unrecorded revision")
    assert code == 1
    assert _hook_line(output, "migrail released revisions are unchanged") == "Failed"
    assert (
        "immutable/sum-updated: migrations/migrail.sum updated for unreleased revision(s): "
        "0002_add_note.py\nhint: git add migrations/migrail.sum and commit again" in output
    )
    code, output = _commit(consumer, "a recorded revision")
    assert code == 0, output
    assert _hook_line(output, "migrail single head") == "Passed"


def test_an_unreleased_revision_is_edited_and_deleted_without_a_sum_error(
    consumer: Path,
) -> None:
    git(consumer, "checkout", "-q", "-b", "feature")
    path = write_revision(consumer, "0002", "add_note", "0001", "pass")
    assert _commit(consumer, "a new revision")[0] == 1  # the hook writes its sum line
    assert _commit(consumer, "a new revision")[0] == 0
    path.write_text(path.read_text().replace("pass", 'op.execute("SELECT 1")', 1))
    code, output = _commit(consumer, "the new revision, edited")
    assert code == 1
    assert "immutable/changed" not in output
    assert "immutable/sum-updated: migrations/migrail.sum updated for unreleased" in output
    code, output = _commit(consumer, "the new revision, edited")
    assert code == 0, output
    path.unlink()
    code, output = _commit(consumer, "the new revision, deleted")
    assert code == 1
    assert "immutable/removed" not in output
    assert "immutable/sum-updated: migrations/migrail.sum updated for unreleased" in output
    code, output = _commit(consumer, "the new revision, deleted")
    assert code == 0, output
    assert "0002_add_note.py" not in (consumer / "migrations" / "migrail.sum").read_text()


def test_two_branches_conflict_in_the_sum_fail_single_head_and_pass_after_rebase(
    consumer: Path,
) -> None:
    from migrail.main import main

    git(consumer, "checkout", "-q", "-b", "feature")
    write_revision(consumer, "0002", "add_note", "0001", "pass")
    assert main(["sum", "--update"]) == 0
    assert _commit(consumer, "feature: add note")[0] == 0
    git(consumer, "checkout", "-q", "main")
    write_revision(consumer, "0002", "add_tag", "0001", "pass")
    assert main(["sum", "--update"]) == 0
    assert _commit(consumer, "main: add tag")[0] == 0
    merge = subprocess.run(
        ["git", "merge", "feature"], cwd=consumer, capture_output=True, text=True, check=False
    )
    assert merge.returncode != 0
    assert "CONFLICT (content): Merge conflict in migrations/migrail.sum" in merge.stdout
    assert main(["sum", "--update"]) == 0  # resolved by recording both
    code, output = _commit(consumer, "merge feature")
    assert code == 1
    assert _hook_line(output, "migrail single head") == "Failed"
    assert (
        "single-head/duplicate-id: revision 0002 is declared by 0002_add_note.py, 0002_add_tag.py"
        in output
    )
    assert main(["rebase", "--onto", "main"]) == 0
    code, output = _commit(consumer, "merge feature, its revision after main's")
    assert code == 0, output
    assert _hook_line(output, "migrail single head") == "Passed"


def test_a_model_change_needs_its_migration_in_the_same_commit(
    consumer: Path, pg_server: object
) -> None:
    from migrail.main import main
    from testing.projects import add_priority_column

    add_priority_column(consumer)
    code, output = _commit(consumer, "a model change alone")
    assert code == 1
    assert _hook_line(output, "migrail models match the migrations") == "Failed"
    assert "schema-sync/models-changed: the models differ from the schema at head:" in output
    assert "+    priority INTEGER DEFAULT '0' NOT NULL," in output
    assert "hint: write the migration: migrail generate NAME" in output
    assert main(["generate", "add_priority"]) == 0
    code, output = _commit(consumer, "the model change with its migration")
    assert code == 0, output
    assert _hook_line(output, "migrail models match the migrations") == "Passed"


def test_an_unsafe_revision_is_rejected_until_its_finding_is_answered(consumer: Path) -> None:
    from migrail.main import main

    path = write_revision(
        consumer,
        "0002",
        "drop_legacy",
        "0001",
        'op.drop_column("tasks", "metadata")',
        'op.add_column("tasks", sa.Column("metadata", sa.JSON()))',
    )
    assert main(["sum", "--update"]) == 0
    assert main(["lint", "--fix-sql"]) == 1
    code, output = _commit(consumer, "drop a column")
    assert code == 1
    assert _hook_line(output, "migrail lint") == "Failed"
    assert "lint/ban-drop-column: migrations/versions/0002_drop_legacy.py:12: " in output
    path.write_text(
        path.read_text().replace(
            "    op.drop_column",
            "    # migrail: allow ban-drop-column -- no release reads it since 4.2\n    op.drop_column",
        )
    )
    assert main(["sum", "--update"]) == 0
    code, output = _commit(consumer, "drop a column nobody reads")
    assert code == 0, output


def test_deleting_a_released_revision_is_rejected(consumer: Path) -> None:
    git(consumer, "rm", "-q", "migrations/versions/0001_create_tasks.py")
    code, output = _commit(consumer, "delete a released revision")
    assert code == 1
    assert _hook_line(output, "migrail released revisions are unchanged") == "Failed"
    assert (
        "immutable/removed: 0001_create_tasks.py is recorded in migrail.sum but was removed"
        in output
    )


def test_an_adopted_alembic_project_commits_a_generated_revision_through_the_hooks(
    tmp_path: Path,
    database_url: URL,
    hook_repo: tuple[Path, str],
    pre_commit_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stock ``alembic init`` project (dated file names, its own env.py), adopted with
    ``migrail init``: a model change and its generated revision pass every hook, a model change
    alone does not, and the plain ``alembic`` command still reads the history."""
    from migrail.main import main
    from testing.alembic_projects import alembic, alembic_project

    project = alembic_project(tmp_path / "app", "generic", database_url)
    monkeypatch.chdir(project)
    monkeypatch.setenv("PRE_COMMIT_HOME", str(pre_commit_home))
    monkeypatch.syspath_prepend(str(project))
    git(project, "init", "-q", "-b", "main")
    assert main(["init"]) == 0
    path, rev = hook_repo
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {path}\n    rev: {rev}\n    hooks:\n"
        + "".join(
            f"      - id: migrail-{hook}\n"
            for hook in ("single-head", "immutable", "schema-sync", "lint")
        )
    )
    commit_all(project, "adopted")
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"], cwd=project, check=True, timeout=120
    )
    git(project, "checkout", "-q", "-b", "add-email")

    models = project / "app_models.py"
    email = 'Column("name", Text), Column("email", Text)'
    models.write_text(models.read_text().replace('Column("name", Text)', email))
    code, output = _commit(project, "a model change alone")
    assert code == 1
    assert _hook_line(output, "migrail models match the migrations") == "Failed"

    sys.modules.pop("app_models", None)  # as in a new process
    assert main(["generate", "add_email"]) == 0
    code, output = _commit(project, "add email, with its migration")
    assert code == 0, output
    for name in (
        "migrail single head",
        "migrail released revisions are unchanged",
        "migrail models match the migrations",
        "migrail lint",
    ):
        assert _hook_line(output, name) == "Passed", output
    history = alembic(project, "history")
    assert history.returncode == 0, history.stderr
    assert "(head), add email\n" in history.stdout
    sys.modules.pop("app_models", None)


def test_the_hooks_read_revisions_in_subfolders(
    tmp_path: Path,
    database_url: URL,
    hook_repo: tuple[Path, str],
    pre_commit_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A history kept in a folder per year (``file_template`` with a folder part): a second
    head and an edit of a released revision, both in subfolders, fail their hooks."""
    from migrail.history.graph import read_header
    from migrail.main import main
    from testing.nested_projects import revision_files, versions, yearly_project

    project = yearly_project(tmp_path / "app", database_url)
    monkeypatch.chdir(project)
    monkeypatch.setenv("PRE_COMMIT_HOME", str(pre_commit_home))
    monkeypatch.syspath_prepend(str(project))
    git(project, "init", "-q", "-b", "main")
    assert main(["init"]) == 0
    sys.modules.pop("app_models", None)
    path, rev = hook_repo
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {path}\n    rev: {rev}\n    hooks:\n"
        + "".join(f"      - id: migrail-{hook}\n" for hook in ("single-head", "immutable"))
    )
    commit_all(project, "adopted")
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"], cwd=project, check=True, timeout=120
    )
    git(project, "checkout", "-q", "-b", "feature")
    first, _ = revision_files(project)
    parent = read_header(versions(project) / first).revision
    fork = write_revision(
        project, "f0f0f0f0f0f0", "fork", parent, "pass", file_name="2025/2025_09_10_f0f0_fork.py"
    )
    code, output = _commit(project, "a second head, in 2025/")
    assert code == 1
    assert _hook_line(output, "migrail single head") == "Failed"
    assert "single-head/multiple-heads: the history has 2 heads: " in output

    fork.unlink()
    released = versions(project) / first
    released.write_text(released.read_text().replace("def upgrade", "# tweaked\ndef upgrade"))
    code, output = _commit(project, "an edit of a released revision, in 2024/")
    assert code == 1
    assert _hook_line(output, "migrail released revisions are unchanged") == "Failed"
    assert f"immutable/changed: {first} was changed after it was recorded in migrail.sum" in output
    sys.modules.pop("app_models", None)

"""``migrate-staging`` by default undoes and redoes, on its own, each revision the branch adds
(not on the base branch): a broken downgrade on a branch fails the default run, while the
released revisions cost no step of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.git import commit_all, git
from testing.projects import write_revision

SAFE_CORPUS = Path(__file__).parents[1] / "fixtures" / "lint_corpus" / "safe"

LEFT_BEHIND = (
    "error: 0002_add_due: its downgrade does not restore the schema from before its upgrade "
    "(+ left behind, - removed):\n"
    "  + column public.tasks.due date\n"
)


def _add_due(project: Path) -> None:
    """Revision 0002, whose downgrade forgets the column its upgrade added."""
    write_revision(
        project,
        "0002",
        "add_due",
        "0001",
        'op.add_column("tasks", sa.Column("due", sa.Date()))',
        downgrade="pass",
    )


@pytest.fixture
def project(project: Path) -> Path:
    """The tasks project without models: its revisions here change no model."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('metadata = "tasks_models:metadata"\n', ""))
    return project


def _run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    code = main(["migrate-staging", "--no-data", *arguments])
    return code, capsys.readouterr().err


def test_a_broken_downgrade_on_a_branch_fails_the_default_run(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(project)
    git(project, "checkout", "-q", "-b", "feature")
    _add_due(project)
    commit_all(project, "add due")
    code, err = _run(capsys)
    assert code == 1, err
    assert LEFT_BEHIND in err
    assert (
        "error: step round trip: the revision this branch adds (not on main): "
        "1 of 1 downgrades broken\n"
    ) in err


def test_the_same_history_on_main_passes_without_stepping_released_revisions(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_due(project)
    commit_all(project)
    code, err = _run(capsys)
    assert code == 0, err
    assert "step round trip: none: this branch adds no revision to main\n" in err
    assert "[✓] step round trip" not in err
    assert "its downgrade does not restore" not in err


def test_only_what_the_branch_adds_is_stepped_and_named(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """The released revision's broken downgrade is left alone (it was proven when it was
    added); the branch's two sound ones are stepped, and the success line says so."""
    _add_due(project)
    commit_all(project)
    git(project, "checkout", "-q", "-b", "feature")
    write_revision(
        project,
        "0003",
        "add_done",
        "0002",
        'op.add_column("tasks", sa.Column("done", sa.Boolean()))',
        downgrade='op.drop_column("tasks", "done")',
    )
    write_revision(
        project,
        "0004",
        "add_labels",
        "0003",
        'op.create_table("labels", sa.Column("id", sa.Integer(), primary_key=True))',
        downgrade='op.drop_table("labels")',
    )
    code, err = _run(capsys)
    assert code == 0, err
    assert (
        "[✓] step round trip: the 2 revisions this branch adds (not on main): "
        "every downgrade restored the schema\n"
    ) in err
    assert "error" not in err


def test_the_default_can_be_turned_off(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(project)
    git(project, "checkout", "-q", "-b", "feature")
    _add_due(project)
    code, err = _run(capsys, "--no-step-roundtrip")
    assert code == 0, err
    assert "step round trip: off (--no-step-roundtrip)\n" in err
    assert "[✓] step round trip" not in err


def test_outside_git_no_revision_is_stepped_and_that_is_said_once(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_due(project)
    code, err = _run(capsys)
    assert code == 0, err
    said = (
        "step round trip: not run: outside a git repository, or without a base branch, every "
        "revision counts as released (--step-roundtrip runs it on all)\n"
    )
    assert err.count(said) == 1
    assert "[✓] step round trip" not in err
    code, err = _run(capsys, "--step-roundtrip")
    assert (code, LEFT_BEHIND in err) == (1, True)


def test_a_branch_run_starts_from_the_base_branch_template(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run on main keeps its head as a template; the branch's run copies it and steps only
    its own revision."""
    _add_due(project)
    commit_all(project)
    assert _run(capsys)[0] == 0
    git(project, "checkout", "-q", "-b", "feature")
    write_revision(
        project,
        "0003",
        "drop_due",
        "0002",
        'op.drop_column("tasks", "due")',
        downgrade='op.add_column("tasks", sa.Column("due", sa.Text()))',  # not a date any more
    )
    code, err = _run(capsys)
    assert code == 1, err
    assert (
        "template cache: starting from a copy of the database at 0002_add_due, proven by an "
        "earlier run and unchanged since\n"
    ) in err
    assert (
        "error: 0003_drop_due: its downgrade does not restore the schema from before its upgrade "
        "(+ left behind, - removed):\n"
        "  + column public.tasks.due text\n"
        "  - column public.tasks.due date\n"
    ) in err
    assert "│ 0001_create_tasks" not in err and "│ 0002_add_due" not in err  # not run again


@pytest.mark.parametrize("case", ["foreign-key-not-valid", "not-null-via-check"])
def test_a_validated_constraint_needs_no_downgrade_to_unvalidate_it(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """The safe forms (a constraint added NOT VALID, validated by the next revision; a NOT NULL
    set through a validated CHECK) pass the step round trip: PostgreSQL cannot make a
    constraint NOT VALID again, and a downgrade need not."""
    commit_all(project)
    git(project, "checkout", "-q", "-b", "feature")
    for revision in (SAFE_CORPUS / case).glob("*.py"):
        shutil.copy(revision, project / "migrations" / "versions" / revision.name)
    code, err = _run(capsys)
    assert code == 0, err
    assert "[✓] step round trip: the " in err
    code, err = _run(capsys, "--step-roundtrip")
    assert code == 0, err
    assert "[✓] step round trip: every downgrade restored the schema (" in err

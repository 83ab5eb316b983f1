"""A warm run with nothing new answers from the receipt an earlier run recorded: the same answer
as the full run, without importing SQLAlchemy, and never after a change to an input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrail.main import main
from testing.projects import (
    REPO,
    add_priority_column,
    add_priority_with_revision,
    write_revision,
)

ANSWERED = "template cache: nothing changed since a run proved this history at "
# A run in its own process, which says whether it imported SQLAlchemy or Alembic.
FAST_RUN = (
    "import sys\n"
    "from migrail.main import main\n"
    "code = main(['migrate-staging'])\n"
    "heavy = sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules)\n"
    "sys.stderr.write(f'imported: {heavy}\\n')\n"
    "sys.exit(code)\n"
)


def _in_process(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    code = main(["migrate-staging", *arguments])
    return code, capsys.readouterr().err


def _in_own_process(project: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", FAST_RUN],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": f"{project}{os.pathsep}{REPO / 'src'}"},
    )
    return done.returncode, done.stderr


def _verdict(err: str) -> list[str]:
    """The answer's lines: from the data line on, without what only the full run prints (the
    report's path) or only the receipt (its first line)."""
    lines = err.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    return [line for line in lines[start:] if not line.startswith(("report written", "imported"))]


def _outcome(err: str) -> list[str]:
    """What the answer says of the models, and its errors: the same after any run over the same
    files, whatever the cache held before it (which decides how much a run proves itself)."""
    return [line for line in err.splitlines() if line.startswith(("[✓] models", "error:"))]


def test_nothing_new_is_answered_from_the_receipt_as_the_full_run_answers(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_with_revision(project)
    assert _in_process(capsys)[0] == 0  # cold: proves and keeps the templates
    code, full = _in_process(capsys)  # warm, from the template at head: records its answer
    assert code == 0, full
    assert ANSWERED not in full and "starting from a copy of the database at 0002" in full

    code, fast = _in_own_process(project)
    assert code == 0, fast
    assert fast.startswith(ANSWERED + "0002_add_priority on "), fast
    assert "imported: []" in fast, "the receipt is read without SQLAlchemy or Alembic"
    assert _verdict(fast) == _verdict(full)
    assert "[✓] models match the schema at head" in _verdict(fast)

    code, forced = _in_process(capsys, "--no-cache")  # the full run, from base, says the same
    assert code == 0 and ANSWERED not in forced
    assert "[✓] models match the schema at head" in forced


@pytest.mark.parametrize("change", ["model", "revision", "seed"])
def test_after_a_change_the_answer_is_the_full_runs(
    change: str, project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever changed, the run that follows is a full one, and answers as a run that cannot
    use a receipt (``--report`` never does) answers."""
    add_priority_with_revision(project)
    assert _in_process(capsys)[0] == 0
    assert _in_process(capsys)[0] == 0
    assert _in_process(capsys)[1].startswith(ANSWERED)  # the receipt is there
    if change == "model":  # a column the revisions do not add
        text = (project / "tasks_models.py").read_text()
        (project / "tasks_models.py").write_text(
            text.replace(
                '    Column("owner", Text),\n',
                '    Column("owner", Text),\n    Column("note", Text),\n',
            )
        )
        sys.modules.pop("tasks_models", None)  # these runs share a process: load them again
    elif change == "revision":  # the head revision does one more thing
        write_revision(
            project,
            "0002",
            "add_priority",
            "0001",
            'op.add_column("tasks", sa.Column("priority", sa.Integer(), nullable=False, '
            'server_default="0"))\n    op.execute("SELECT 2")',
            downgrade='op.drop_column("tasks", "priority")',
        )
    else:
        seeds = project / "migrations" / "seeds"
        seeds.mkdir()
        (seeds / "tasks.sql").write_text(
            "INSERT INTO tasks (id, name, status, owner) VALUES ('t1', 'write docs', 'pending', '42');\n"
        )
    code, after = _in_process(capsys)
    assert ANSWERED not in after
    full_code, full = _in_process(capsys, "--report", "report.md")
    assert (code, _outcome(after)) == (full_code, _outcome(full))
    if change == "model":
        assert code == 1 and "the models and the schema at head differ:" in after, after
    else:
        assert code == 0, after
    if change == "seed":
        assert "data: sample rows: 1 in tasks (from migrations/seeds/tasks.sql)" in after, after


def test_a_failing_answer_is_never_recorded(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model the history does not build fails every run in full, with its differences."""
    add_priority_column(project)  # in the models, in no revision
    for _ in range(3):
        code, err = _in_process(capsys)
        assert code == 1 and ANSWERED not in err
        assert "priority" in err


def test_what_the_branch_adds_is_an_input_though_no_file_changed(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The step round trip takes the revisions the base branch lacks: once the base branch has
    them, the same files give another answer, which a receipt must not hide."""
    from testing.git import commit_all, git

    commit_all(project)  # main: 0001
    git(project, "checkout", "-q", "-b", "feature")
    add_priority_with_revision(project)
    commit_all(project, "add priority")
    assert _in_process(capsys)[0] == 0
    assert _in_process(capsys)[0] == 0
    code, err = _in_process(capsys)
    assert code == 0 and err.startswith(ANSWERED)
    assert (
        "[✓] step round trip: the revision this branch adds (not on main): every downgrade "
        "restored the schema\n"
    ) in err, err

    git(project, "checkout", "-q", "main")
    git(project, "merge", "-q", "--ff-only", "feature")
    git(project, "checkout", "-q", "feature")  # the same files, now released
    code, err = _in_process(capsys)
    assert code == 0 and ANSWERED not in err
    assert "step round trip: none: this branch adds no revision to main" in err, err


def test_a_receipt_counts_only_on_the_cluster_the_full_run_would_choose(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The receipt names the extensions that chose its server; with ones no source has, the
    full run would choose none, so the receipt is not served and the full run says why."""
    import json

    from migrail.postgres.warm import running_warm_clusters
    from migrail.postgres.wire import query_rows

    add_priority_with_revision(project)
    assert _in_process(capsys)[0] == 0
    assert _in_process(capsys)[0] == 0
    assert _in_process(capsys)[1].startswith(ANSWERED)
    (directory,) = running_warm_clusters()
    rows = query_rows(
        directory,
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
        " WHERE shobj_description(oid, 'pg_database') LIKE '%\"receipt\": {%'",
    )
    assert len(rows) == 1
    name, comment = rows[0]
    about = json.loads(str(comment))
    about["receipt"]["extensions"] = {"no_such_extension": "0002_add_priority.py"}
    text = json.dumps(about).replace("'", "''")
    query_rows(directory, f"COMMENT ON DATABASE \"{name}\" IS '{text}'")
    code, err = _in_process(capsys)
    assert ANSWERED not in err
    assert code == 0, err  # the files create no extension: the full run proves them

"""``generate`` with no model change answers from the receipt an earlier warm run recorded: the
answer the full run gives (nothing written, the same last line), without importing SQLAlchemy or
Alembic; and never after a change to what that answer stands on (a model, a revision file, a
variable the history reads): then the full run answers, as a run with no template would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from migrail.core.config import load_config
from migrail.main import main
from migrail.staging import generate_receipt
from testing.projects import (
    REPO,
    add_model_column,
    add_named_column,
    add_priority_column,
    write_revision,
)

ANSWERED = "template cache: nothing changed since a run compared the models with this history at "
NO_CHANGES = "No schema changes, nothing to migrate\n"
FAST_RUN = (
    "import sys\n"
    "from migrail.main import main\n"
    "code = main(['generate', 'nothing'])\n"
    "heavy = sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules)\n"
    "sys.stderr.write(f'imported: {heavy}\\n')\n"
    "sys.exit(code)\n"
)


def _run(capsys: pytest.CaptureFixture[str], name: str = "nothing") -> tuple[int, str]:
    code = main(["generate", name])
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


def _written(
    project: Path, capsys: pytest.CaptureFixture[str], full: bool = False
) -> tuple[str, dict[str, str]]:
    """Run ``generate nothing`` (named as the receipt's run was): its messages from the changes
    on, and the files it wrote (without the line that dates a revision), after which the
    project is put back as it was. ``full``: the run must not answer from a receipt (which
    the messages returned no longer show)."""
    before = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()}
    code, err = _run(capsys)
    assert code == 0, err
    assert not full or ANSWERED not in err, err
    written = {}
    for path in sorted(project.rglob("*")):
        if path.is_file() and path not in before and "__pycache__" not in path.parts:
            text = re.sub(r"Create Date: .*\n", "", path.read_text())
            written[path.relative_to(project).as_posix()] = text
            path.unlink()
    for path, content in before.items():
        path.write_bytes(content)
    sys.modules.pop("tasks_models", None)  # these runs share a process: load them again
    return _verdict(err), written


def _verdict(err: str) -> str:
    """What a run said, without the lines that say how it got there (which server, which
    template, which receipt)."""
    how = ("Comparing models with head", "template cache:")
    return "".join(line for line in err.splitlines(True) if not line.startswith(how))


def _without_warm_cluster(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, dict[str, str]]:
    """What ``_written`` gives on a private cluster: no template, no receipt, every revision
    run (the answer of a run that can use neither)."""
    with monkeypatch.context() as unwarmed:
        unwarmed.delenv("MIGRAIL_KEEP_WARM")
        return _written(project, capsys)


def test_no_change_is_answered_from_the_receipt_as_the_full_run_answers(
    project: Path, warm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(project.rglob("*"))
    code, replayed = _run(capsys)  # replays the history, keeps it at head, records its answer
    assert code == 0 and replayed.endswith(NO_CHANGES) and ANSWERED not in replayed

    code, fast = _in_own_process(project)
    assert code == 0, fast
    assert re.fullmatch(
        re.escape(ANSWERED)
        + r"0001_create_tasks on \S+ \S+: its answer stands\n"
        + re.escape(NO_CHANGES + "imported: []\n"),
        fast,
    ), fast
    assert sorted(project.rglob("*")) == files  # nothing written, as by the full run

    code, other = _run(capsys, "another name")  # no hook of env.py's sees the name
    assert code == 0 and other.startswith(ANSWERED) and other.endswith(NO_CHANGES)
    monkeypatch.delenv("MIGRAIL_KEEP_WARM")  # no template, no receipt: the same answer
    code, cold = _run(capsys)
    assert code == 0 and ANSWERED not in cold and cold.endswith(NO_CHANGES)
    assert sorted(project.rglob("*")) == files


def _change(project: Path, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if change == "model":  # a column no revision adds
        add_priority_column(project)
    elif change == "revision":  # the first revision creates a column the models lack
        path = project / "migrations" / "versions" / "0001_create_tasks.py"
        owner = '        sa.Column("owner", sa.Text(), nullable=True),\n'
        extra = '        sa.Column("extra", sa.Integer(), nullable=True),\n'
        path.write_text(path.read_text().replace(owner, owner + extra))
    elif change == "variable":  # a variable revision 0002 reads: set, it adds a column
        monkeypatch.setenv("EXTRA_COLUMN", "1")  # the models lack
    else:  # sample rows of its own for the table: the schema is the same
        seeds = project / "migrations" / "seeds"
        seeds.mkdir()
        (seeds / "tasks.sql").write_text(
            "INSERT INTO tasks (id, name, status, owner) VALUES ('t1', 'docs', 'pending', '42');\n"
        )
    sys.modules.pop("tasks_models", None)


@pytest.mark.parametrize("change", ["model", "revision", "variable"])
def test_after_a_change_the_full_run_answers_as_a_run_without_templates(
    change: str,
    project: Path,
    warm: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The receipt checked here was recorded by a run from the template at head, which runs
    no revision: the variables revision 0002 read are those the template records, which the
    run read again to see that they still hold."""
    monkeypatch.delenv("EXTRA_COLUMN", raising=False)
    write_revision(
        project,
        "0002",
        "maybe_extra",
        "0001",
        'if __import__("os").environ.get("EXTRA_COLUMN"):\n'
        '        op.add_column("tasks", sa.Column("extra", sa.Integer()))',
    )
    with monkeypatch.context() as other_inputs:  # its receipt is another key's
        other_inputs.setenv("MIGRAIL_UNRELATED", "1")
        assert _run(capsys)[0] == 0  # replays, keeps the template at head
    code, err = _run(capsys)  # from the template at head: runs no revision, records its answer
    assert code == 0 and "starting from a copy of the database at 0002_maybe_extra" in err, err
    assert _run(capsys)[1].startswith(ANSWERED)

    _change(project, change, monkeypatch)
    said, written = _written(project, capsys, full=True)
    assert (said, written) == _without_warm_cluster(project, monkeypatch, capsys)
    expected = "priority" if change == "model" else "extra"
    assert any(expected in text for text in written.values()), written


HOOKED_ENV = '''from alembic import context

from tasks_models import metadata


def name_it(context, revision, directives):
    """A project's own hook: it sees the new revision's message and id."""


context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    process_revision_directives=name_it,
)
with context.begin_transaction():
    context.run_migrations()
'''


def test_a_hook_of_env_py_sees_the_name_so_only_that_name_is_answered(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """env.py's ``process_revision_directives`` could write a revision from the name alone: a
    run recorded under one name answers that name only, and another runs in full."""
    (project / "migrations" / "env.py").write_text(HOOKED_ENV)
    assert _run(capsys)[0] == 0  # replays the history, keeps it at head, records its answer
    code, again = _run(capsys)
    assert code == 0 and again.startswith(ANSWERED) and again.endswith(NO_CHANGES)
    code, other = _run(capsys, "another name")
    assert code == 0 and ANSWERED not in other
    assert "template cache: starting from a copy of the database at 0001_create_tasks\n" in other
    assert other.endswith(NO_CHANGES)


def test_a_timestamp_id_is_answered_too_where_no_hook_sees_it(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ids that are the time (new on every run), the receipt answers too when no hook of
    env.py's sees the id: the comparison alone decides."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"\n',
            'migrations = "migrations"\nrevision_naming = "timestamp"\n',
        )
    )
    assert _run(capsys)[0] == 0
    code, again = _run(capsys, "another name")
    assert code == 0 and again.startswith(ANSWERED) and again.endswith(NO_CHANGES)


@pytest.mark.parametrize("change", ["model", "revision", "seed"])
def test_migrate_staging_s_model_check_answers_generate_as_the_full_run(
    change: str,
    project: Path,
    warm: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """migrate-staging compares the models with the head: where they match, generate says so
    from its receipt, the answer a generate without templates or receipts gives; after a
    change, what migrate-staging found decides again (a mismatch records nothing, and the
    full generate writes the revision)."""
    assert main(["migrate-staging"]) == 0
    capsys.readouterr()
    files = sorted(project.rglob("*"))
    code, fast = _run(capsys, "any name")
    assert code == 0 and fast.startswith(ANSWERED) and fast.endswith(NO_CHANGES), fast
    assert sorted(project.rglob("*")) == files
    assert (_verdict(fast), {}) == _without_warm_cluster(project, monkeypatch, capsys)

    _change(project, change, monkeypatch)
    staged = main(["migrate-staging"])
    assert staged == (0 if change == "seed" else 1), capsys.readouterr().err
    capsys.readouterr()
    said, written = _written(project, capsys)
    assert (said, written) == _without_warm_cluster(project, monkeypatch, capsys)
    if change == "seed":
        assert (said, written) == (NO_CHANGES, {})
    else:
        expected = "priority" if change == "model" else "extra"
        assert any(expected in text for text in written.values()), written


def test_an_sql_file_of_no_revision_is_refused_from_the_receipt_as_by_the_full_run(
    project: Path, warm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """migrate-staging does not look at the SQL files generate writes: where one is numbered
    like the next revision and belongs to none, generate refuses it before any answer, from
    migrate-staging's receipt as without one."""
    (project / "migrations" / "sql" / "0002_gone.sql").write_text("SELECT 1;\n")
    assert main(["migrate-staging"]) == 0
    capsys.readouterr()
    config = load_config(project)
    keys = generate_receipt.receipt_keys(config, "nothing")
    assert keys is not None and generate_receipt.recorded_answer(config, keys) is not None
    fast = _run(capsys)
    with monkeypatch.context() as unwarmed:
        unwarmed.delenv("MIGRAIL_KEEP_WARM")
        full = _run(capsys)
    assert fast == full
    assert full[0] == 2
    assert "migrations/sql/0002_gone.sql belongs to no revision" in full[1], full[1]


def test_a_module_the_models_import_from_beside_them_is_an_input_of_the_receipt(
    project: Path, warm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The models may import a module of the project that is not their own package (a
    ``task_columns.py`` beside ``tasks_models.py``): a change to it changes the models as much
    as an edit of theirs does; generate writes a revision for it, and migrate-staging finds the
    difference, as their full runs do."""
    (project / "task_columns.py").write_text("EXTRA = False\n")
    add_model_column(
        project / "tasks_models.py",
        '*([Column("priority", Text)] if __import__("task_columns").EXTRA else [])',
    )
    assert main(["migrate-staging"]) == 0
    capsys.readouterr()
    assert _run(capsys)[1].startswith(ANSWERED)

    (project / "task_columns.py").write_text("EXTRA = True\n")
    sys.modules.pop("task_columns", None)
    sys.modules.pop("tasks_models", None)
    said, written = _written(project, capsys, full=True)
    assert any("priority" in text for text in written.values()), said
    sys.modules.pop("task_columns", None)
    assert main(["migrate-staging"]) == 1
    assert "column tasks.priority" in capsys.readouterr().err


def test_a_module_the_models_import_from_outside_the_project_is_an_input_of_the_receipt(
    project: Path,
    tmp_path: Path,
    warm: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A package of the repository outside the project (installed with ``pip install -e``, or
    on ``PYTHONPATH``, as a monorepo's shared models are) changes the models as much as a
    module of the project does: after its change, generate and migrate-staging answer as their
    full runs, never "nothing changed"."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "shared_columns.py").write_text("EXTRA = False\n")
    monkeypatch.syspath_prepend(str(shared))
    add_model_column(
        project / "tasks_models.py",
        '*([Column("priority", Text)] if __import__("shared_columns").EXTRA else [])',
    )
    assert main(["migrate-staging"]) == 0
    capsys.readouterr()
    assert _run(capsys)[1].startswith(ANSWERED)

    (shared / "shared_columns.py").write_text("EXTRA = True\n")
    sys.modules.pop("shared_columns", None)
    sys.modules.pop("tasks_models", None)
    said, written = _written(project, capsys, full=True)
    assert any("priority" in text for text in written.values()), said
    sys.modules.pop("shared_columns", None)
    sys.modules.pop("tasks_models", None)
    assert main(["migrate-staging"]) == 1
    assert "column tasks.priority" in capsys.readouterr().err


def test_a_module_a_revision_imports_is_an_input_of_generates_templates(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0002 names its column after a constant of the project outside migrations/: once that
    changes, no template built with the old value serves generate, which writes the revision
    the full run writes."""
    consts = project / "app_consts.py"
    consts.write_text('COLUMN = "note"\n')
    add_named_column(project, '__import__("app_consts").COLUMN')
    assert main(["migrate-staging"]) == 0
    capsys.readouterr()
    assert _run(capsys)[1].startswith(ANSWERED)
    consts.write_text('COLUMN = "remark"\n')
    sys.modules.pop("app_consts", None)
    said, written = _written(project, capsys, full=True)
    assert "template cache: starting from" not in said, said
    assert any("remark" in text and "note" in text for text in written.values()), said

"""The fast paths of migrate-staging (a warm run served from a template, or from a receipt)
give the answer the full run gives (``--no-cache``: every revision proven from base): the same
exit code and the same verdict lines, before and after a change to a model, a revision or a seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from migrail.main import main
from testing.git import commit_all, git
from testing.projects import (
    add_model_column,
    add_named_column,
    add_priority_with_revision,
    write_revision,
)

ANSWERED = "template cache: nothing changed since a run proved this history at "


def _run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    code = main(["migrate-staging", *arguments])
    return code, capsys.readouterr().err


def _answer(err: str) -> list[str]:
    """The verdict: its lines from the data line on, without the report's path (only a run with
    ``--report`` prints it)."""
    lines = err.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    return [line for line in lines[start:] if not line.startswith("report written")]


def _history(project: Path, shape: str = "line") -> None:
    """main: 0001 and 0002 (a brief lock of a live table) and 0003 (a rewrite of it, released:
    the baseline); the branch ``feature`` adds 0004. With the shape ``branches``, main also has
    0003a beside 0003 (both after 0002), and 0003b merging them, which 0004 follows."""
    add_priority_with_revision(project)
    if shape == "branches":
        write_revision(project, "0003a", "beside", "0002", 'op.execute("SELECT 3")')
        write_revision(project, "0003b", "merge", ("0003", "0003a"), "pass")
    write_revision(
        project,
        "0003",
        "status_varchar",
        "0002",
        'op.alter_column("tasks", "status", type_=sa.String(20))',
        downgrade='op.alter_column("tasks", "status", type_=sa.Text())',
    )
    models = project / "tasks_models.py"
    text = models.read_text().replace('Column("status", Text,', 'Column("status", String(20),')
    models.write_text(
        text.replace("from sqlalchemy import Column,", "from sqlalchemy import String, Column,")
    )
    commit_all(project)
    git(project, "checkout", "-q", "-b", "feature")
    _fourth(project, shape)
    commit_all(project, "fourth")


def _fourth(project: Path, shape: str, body: str = 'op.execute("SELECT 4")') -> None:
    parent = "0003b" if shape == "branches" else "0003"
    write_revision(project, "0004", "fourth", parent, body)


def _change(project: Path, change: str, shape: str = "line") -> None:
    if change == "model":  # a column no revision adds
        add_model_column(project / "tasks_models.py", 'Column("note", Text)')
        sys.modules.pop("tasks_models", None)  # these runs share a process: load them again
    elif change == "revision":  # the branch's revision does something else
        _fourth(project, shape, 'op.execute("SELECT 44")')
    else:
        seeds = project / "migrations" / "seeds"
        seeds.mkdir()
        (seeds / "tasks.sql").write_text(
            "INSERT INTO tasks (id, name, status, owner) VALUES ('t1', 'docs', 'pending', '42');\n"
        )


def test_nothing_new_answers_as_the_full_run(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Served from the template at head, then from the receipt: the full run's answer, its
    lines about the released revisions' locks and the round trip down to base included."""
    _history(project)
    cold = _run(capsys)
    assert cold[0] == 0, cold[1]
    template = _run(capsys)
    assert "starting from a copy of the database at 0004_fourth" in template[1]
    receipt = _run(capsys)
    assert receipt[1].startswith(ANSWERED)
    full = _run(capsys, "--no-cache")
    answer = (full[0], _answer(full[1]))
    assert (cold[0], _answer(cold[1])) == answer
    assert (template[0], _answer(template[1])) == answer
    assert (receipt[0], _answer(receipt[1])) == answer
    assert answer == (
        0,
        [
            "data: sample rows: 3 in tasks",
            "baseline: 0003_status_varchar: rewrite of tasks: it rewrites the whole table under "
            "ACCESS EXCLUSIVE: reads and writes wait for as long as that takes (released: not "
            "failing)",
            "1 revision takes a brief ACCESS EXCLUSIVE for metadata-only changes, bounded by "
            "lock_timeout 5s",
            "[✓] step round trip: the revision this branch adds (not on main): every downgrade "
            "restored the schema",
            "[✓] models match the schema at head",
            "[✓] round trip: down to base and up to head again",
        ],
    )


@pytest.mark.parametrize("shape", ["line", "branches"])
@pytest.mark.parametrize("change", ["model", "revision", "seed"])
def test_after_a_change_the_fast_path_answers_as_the_full_path(
    change: str, shape: str, project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the change, each run served from what the cache holds (a template below the
    change, the template at head, the receipt) answers as ``--no-cache`` and ``--report``; a
    history with branches as a line does."""
    _history(project, shape)
    assert _run(capsys)[0] == 0
    assert _run(capsys)[0] == 0
    assert _run(capsys)[1].startswith(ANSWERED)
    _change(project, change, shape)
    fast = [_run(capsys) for _ in range(3)]
    full = _run(capsys, "--no-cache")
    report = _run(capsys, "--report", "report.md")
    answer = (full[0], _answer(full[1]))
    assert (report[0], _answer(report[1])) == answer
    for code, err in fast:
        assert (code, _answer(err)) == answer, err
    if change == "revision":  # the first from the template before the changed revision
        before = "0003b_merge" if shape == "branches" else "0003_status_varchar"
        assert f"starting from a copy of the database at {before}," in fast[0][1]
    if change == "model":  # every run from the template at head; a failure has no receipt
        assert all("copy of the database at 0004_fourth" in err for _, err in fast)
        assert answer[0] == 1 and "error: the models and the schema at head differ:" in answer[1]
        assert any("tasks.note" in line for line in answer[1]), answer
    else:
        assert fast[1][1].find("copy of the database at 0004_fourth") > 0, fast[1][1]
        assert fast[2][1].startswith(ANSWERED), fast[2][1]
        assert answer[0] == 0
    if change == "seed":
        assert answer[1][0] == "data: sample rows: 1 in tasks (from migrations/seeds/tasks.sql)"


def test_a_round_trip_no_earlier_run_went_down_is_said_as_it_went(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one line that may differ, and why: when the run that made the template stopped at
    an irreversible revision after it (since made reversible), no run undid the revisions the
    template holds, and the run served from it says how far down its round trip went; the full
    run goes down to base. The verdict and every other line agree."""
    _history(project)
    write_revision(
        project, "0004", "fourth", "0003", 'op.execute("SELECT 4")', extra='irreversible = "why"'
    )
    assert _run(capsys)[0] == 0
    write_revision(project, "0004", "fourth", "0003", 'op.execute("SELECT 4")')
    fast = _run(capsys)
    assert "starting from a copy of the database at 0003_status_varchar" in fast[1]
    full = _run(capsys, "--no-cache")
    assert fast[0] == full[0] == 0
    assert _answer(fast[1])[:-1] == _answer(full[1])[:-1]
    assert _answer(full[1])[-1] == "[✓] round trip: down to base and up to head again"
    assert _answer(fast[1])[-1] == (
        "[✓] round trip: down to 0003_status_varchar (the run that made its template went no "
        "lower, and none since) and up to head again"
    )


def test_a_variable_a_revision_reads_is_part_of_what_a_fast_answer_stands_on(
    project: Path, warm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """0002 adds a column the models lack only when EXTRA_COLUMN is set: unset, the history
    passes and its answer is recorded (receipt and templates); set, neither the receipt nor a
    template made without it may answer: the full run's failure is the answer."""
    monkeypatch.delenv("EXTRA_COLUMN", raising=False)
    write_revision(
        project,
        "0002",
        "maybe_extra",
        "0001",
        'if __import__("os").environ.get("EXTRA_COLUMN"):\n'
        '        op.add_column("tasks", sa.Column("extra", sa.Integer()))',
        'if __import__("os").getenv("EXTRA_COLUMN"):\n        op.drop_column("tasks", "extra")',
    )
    for _ in range(3):  # cold; from the template at head, recording its answer; the receipt
        code, err = _run(capsys)
        assert code == 0, err
    assert ANSWERED in err
    monkeypatch.setenv("EXTRA_COLUMN", "1")
    code, err = _run(capsys)
    assert ANSWERED not in err
    assert "template cache: starting from" not in err, err
    assert "error: the models and the schema at head differ:\n  - column tasks.extra" in err, err
    assert code == 1
    assert _run(capsys, "--no-cache")[0] == 1  # the full run's answer
    monkeypatch.delenv("EXTRA_COLUMN")
    code, err = _run(capsys)
    assert code == 0, err


# Where the project's code reads EXTRA_COLUMN, other than in upgrade(): 0002's upgrade, downgrade,
# header lines and what the models module gains (the revision adds column extra when it is set).
READ_ELSEWHERE = {
    "as the revision is imported": (
        'if EXTRA:\n        op.add_column("tasks", sa.Column("extra", sa.Integer()))',
        'if EXTRA:\n        op.drop_column("tasks", "extra")',
        'EXTRA = __import__("os").environ.get("EXTRA_COLUMN")',
        "",
    ),
    "in a worker thread the revision starts": (
        "with ThreadPoolExecutor(1) as pool:\n"
        '        extra = pool.submit(os.environ.get, "EXTRA_COLUMN").result()\n'
        "    if extra:\n"
        '        op.add_column("tasks", sa.Column("extra", sa.Integer()))',
        "pass",
        "import os\nfrom concurrent.futures import ThreadPoolExecutor",
        "",
    ),
    # Started as the models were imported, running before the revision began: still theirs.
    "in a worker the models module started": (
        "from tasks_models import POOL\n"
        '    if POOL.submit(os.environ.get, "EXTRA_COLUMN").result():\n'
        '        op.add_column("tasks", sa.Column("extra", sa.Integer()))',
        "pass",
        "import os",
        "\nfrom concurrent.futures import ThreadPoolExecutor\n\n"
        "POOL = ThreadPoolExecutor(1)\nPOOL.submit(int).result()\n",
    ),
}


@pytest.mark.parametrize("where", list(READ_ELSEWHERE))
def test_a_variable_the_project_reads_elsewhere_counts_too(
    project: Path,
    warm: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """Read at the top of the revision's file, or in a thread of the project's own: the same
    dependence. Set, neither receipt nor template answers: the full run's failure does."""
    upgrade, downgrade, extra, models_code = READ_ELSEWHERE[where]
    monkeypatch.delenv("EXTRA_COLUMN", raising=False)
    models = project / "tasks_models.py"
    models.write_text(models.read_text() + models_code)
    write_revision(project, "0002", "maybe_extra", "0001", upgrade, downgrade, extra=extra)
    for _ in range(3):  # cold; from the template at head, recording its answer; the receipt
        code, err = _run(capsys)
        assert code == 0, err
    assert ANSWERED in err
    monkeypatch.setenv("EXTRA_COLUMN", "1")
    assert _run(capsys, "--no-cache")[0] == 1  # the full run's answer
    code, err = _run(capsys)
    assert ANSWERED not in err
    assert "error: the models and the schema at head differ:\n  - column tasks.extra" in err, err
    assert code == 1


def test_what_migrail_itself_reads_of_the_environment_is_no_part_of_the_answer(
    project: Path, warm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The terminal's size and kind, the driver's settings, migrail's own variables: read by
    migrail and its libraries while the history runs, not by the project's code. Changed,
    the receipt still answers, as it answers a run in a wider terminal or in CI."""
    add_priority_with_revision(project)
    for _ in range(3):  # cold; from the template at head, recording its answer; the receipt
        code, err = _run(capsys)
        assert code == 0, err
    assert ANSWERED in err
    monkeypatch.setenv("COLUMNS", "97")
    monkeypatch.setenv("LINES", "31")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("PSYCOPG_WAIT_FUNC", "wait_select")
    code, err = _run(capsys)
    assert code == 0, err
    assert ANSWERED in err


def test_a_stricter_lock_policy_judges_what_the_template_holds_too(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The locks measured of the revisions a template holds are judged by today's policy: made
    an error, the brief lock 0002 takes (released, so the baseline's) is said as the full run
    says it, no longer counted as a note."""
    _history(project)
    assert _run(capsys)[0] == 0
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.migrail.locks]\nmetadata-only = "error"\n'
    )
    fast = _run(capsys)
    assert "starting from a copy of the database at 0004_fourth" in fast[1]
    full = _run(capsys, "--no-cache")
    assert (fast[0], _answer(fast[1])) == (full[0], _answer(full[1]))
    assert fast[0] == 0
    answer = _answer(full[1])
    assert (
        "baseline: 0002_add_priority: metadata-only of tasks: it takes a brief ACCESS EXCLUSIVE "
        "for a change of the catalog alone (released: not failing)"
    ) in answer
    assert not any("metadata-only changes, bounded by" in line for line in answer)


def test_a_module_a_revision_imports_is_part_of_what_a_fast_answer_stands_on(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0002 takes its column's name from a module of the project outside migrations/ (a
    constant in ``app_consts.py``). After that module changes, neither the templates nor the
    receipt answer: the full run's failure is the answer. A change to the models alone still
    starts from the template, which stands on no model file."""
    consts = project / "app_consts.py"
    consts.write_text('COLUMN = "note"\n')
    add_named_column(project, '__import__("app_consts").COLUMN')
    models = project / "tasks_models.py"
    for _ in range(3):  # cold; from the template at head, recording its answer; the receipt
        code, err = _run(capsys)
        assert code == 0, err
    assert err.startswith(ANSWERED)

    consts.write_text('COLUMN = "remark"\n')
    sys.modules.pop("app_consts", None)
    code, err = _run(capsys)
    assert ANSWERED not in err and "template cache: starting from" not in err, err
    full = _run(capsys, "--no-cache")
    assert (code, _answer(err)) == (full[0], _answer(full[1]))
    assert code == 1 and "  - column tasks.remark (TEXT)" in err, err

    consts.write_text('COLUMN = "note"\n')
    sys.modules.pop("app_consts", None)
    assert _run(capsys)[0] == 0
    models.write_text(models.read_text().replace('Column("note", Text)', 'Column("note", Integer)'))
    models.write_text(
        models.read_text().replace("from sqlalchemy import", "from sqlalchemy import Integer,")
    )
    sys.modules.pop("tasks_models", None)
    code, err = _run(capsys)
    assert "template cache: starting from a copy of the database at 0002_note" in err, err
    assert code == 1 and "tasks.note" in err


@pytest.mark.parametrize("how", ["import_module", "helper"])
def test_a_revision_running_code_of_the_models_package_is_not_answered_from_a_stale_template(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """0002 takes its column's name from the models' own module, which a template does not
    stand on unless the history imports from it: here by ``importlib.import_module``, or
    through a helper beside the revisions. Once that constant changes (the models' columns
    do not), no template answers: the full run's failure is the answer."""
    models = project / "tasks_models.py"
    models.write_text(models.read_text() + 'REVISION_COLUMN = "note"\n')
    if how == "helper":
        (project / "migrations" / "columns.py").write_text(
            "from tasks_models import REVISION_COLUMN\n"
        )
        name = (
            '__import__("importlib.util").util.spec_from_file_location("columns", '
            '__import__("pathlib").Path(__file__).parents[1] / "columns.py")'
        )
        load = f"(lambda s: (s.loader.exec_module(m := __import__('importlib.util').util.module_from_spec(s)), m)[1])({name})"
    else:
        load = '__import__("importlib").import_module("tasks_models")'
    add_named_column(project, f"{load}.REVISION_COLUMN")
    for _ in range(3):  # cold; from the template at head; the receipt
        code, err = _run(capsys)
        assert code == 0, err

    models.write_text(
        models.read_text().replace('REVISION_COLUMN = "note"', 'REVISION_COLUMN = "x"')
    )
    sys.modules.pop("tasks_models", None)
    code, err = _run(capsys)
    assert "template cache: starting from" not in err, err
    full = _run(capsys, "--no-cache")
    assert (code, _answer(err)) == (full[0], _answer(full[1]))
    assert code == 1 and "  - column tasks.x (TEXT)" in err, err


def test_in_a_src_layout_a_package_beside_the_models_is_what_a_template_stands_on(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The models are ``app.models`` under ``src/``; 0002 takes its column's name from
    ``src/shared/constants.py``, another package: once that changes, no template answers."""
    src = project / "src"
    (src / "app").mkdir(parents=True)
    (src / "shared").mkdir()
    (src / "app" / "__init__.py").write_text("")
    (src / "shared" / "__init__.py").write_text("")
    constants = src / "shared" / "constants.py"
    constants.write_text('COLUMN = "note"\n')
    (project / "tasks_models.py").rename(src / "app" / "models.py")
    models = src / "app" / "models.py"
    add_model_column(models, 'Column("note", Text)')
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("tasks_models:metadata", "app.models:metadata")
    )
    sys.path.insert(0, str(src))
    write_revision(
        project,
        "0002",
        "note",
        "0001",
        'op.add_column("tasks", sa.Column(__import__("shared.constants").constants.COLUMN, sa.Text()))',
        'op.drop_column("tasks", __import__("shared.constants").constants.COLUMN)',
    )
    try:
        for _ in range(3):
            code, err = _run(capsys)
            assert code == 0, err
        constants.write_text('COLUMN = "x"\n')
        for name in ("shared.constants", "shared", "app.models", "app"):
            sys.modules.pop(name, None)
        code, err = _run(capsys)
        assert "template cache: starting from" not in err, err
        assert code == 1 and "  - column tasks.x (TEXT)" in err, err
    finally:
        for name in ("shared.constants", "shared", "app.models", "app"):
            sys.modules.pop(name, None)


def test_a_document_beside_the_revisions_changes_no_template(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Editing migrations/README.md changes nothing a revision runs: the next run still starts
    from the template at head (the receipt's inputs cover every file there: it does not answer)."""
    readme = project / "migrations" / "README.md"
    readme.write_text("# migrations\n")
    for _ in range(2):
        code, err = _run(capsys)
        assert code == 0, err
    readme.write_text("# migrations\n\nHow to write one.\n")
    code, err = _run(capsys)
    assert code == 0 and "template cache: starting from a copy of the database at 0001" in err, err


@pytest.mark.parametrize("how", ["json", "spec"])
def test_a_file_a_revision_reads_outside_migrations_is_part_of_what_a_fast_answer_stands_on(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """0002 takes its column's name from a file of the project outside migrations/ that it
    reads without importing it: a JSON file, or a module run by ``spec_from_file_location``
    (never in ``sys.modules``). Once that file changes, neither a template nor the receipt
    answers: the full run's failure is the answer."""
    data = project / "data"
    data.mkdir()
    if how == "json":
        source = data / "columns.json"
        source.write_text('{"column": "note"}')
        load = (
            '__import__("json").loads((__import__("pathlib").Path(__file__).parents[2]'
            ' / "data" / "columns.json").read_text())["column"]'
        )
    else:
        source = data / "columns.py"
        source.write_text('COLUMN = "note"\n')
        spec = (
            '__import__("importlib.util").util.spec_from_file_location("columns", '
            '__import__("pathlib").Path(__file__).parents[2] / "data" / "columns.py")'
        )
        load = (
            "(lambda s: (s.loader.exec_module(m := __import__('importlib.util').util"
            f".module_from_spec(s)), m)[1])({spec}).COLUMN"
        )
    add_named_column(project, load)
    for _ in range(3):  # cold; from the template at head; the receipt
        code, err = _run(capsys)
        assert code == 0, err
    assert err.startswith(ANSWERED)

    source.write_text(source.read_text().replace("note", "remark"))
    code, err = _run(capsys)
    assert ANSWERED not in err and "template cache: starting from" not in err, err
    full = _run(capsys, "--no-cache")
    assert (code, _answer(err)) == (full[0], _answer(full[1]))
    assert code == 1 and "  - column tasks.remark (TEXT)" in err, err


def test_a_template_that_records_no_modules_is_not_served(
    project: Path, warm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template described before templates recorded the modules their run imported (no
    ``sources`` in its description) may stand on one that changed since: it is not served."""
    import json

    from migrail.postgres.warm import running_warm_clusters
    from migrail.postgres.wire import query_rows

    add_priority_with_revision(project)
    assert _run(capsys)[0] == 0
    assert "template cache: starting from" in _run(capsys)[1]
    (directory,) = running_warm_clusters()
    rows = query_rows(
        directory,
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
        " WHERE shobj_description(oid, 'pg_database') LIKE '%\"sources\": {%'",
    )
    assert rows
    for name, comment in rows:
        about = json.loads(str(comment))
        del about["sources"]
        about.pop("receipt", None)
        text = json.dumps(about).replace("'", "''")
        query_rows(directory, f"COMMENT ON DATABASE \"{name}\" IS '{text}'")
    code, err = _run(capsys)
    assert code == 0 and "template cache: starting from" not in err, err

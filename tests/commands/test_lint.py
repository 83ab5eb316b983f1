"""``migrail lint`` end to end: report formats, scope, SQL files, timeouts, configuration, histories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.git import commit_all
from testing.postgres import query
from testing.projects import date_named_history, midcommit_history, write_revision

DROP_OWNER = 'op.drop_column("tasks", "owner")'
ADD_OWNER = 'op.add_column("tasks", sa.Column("owner", sa.Text()))'


def _lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _sql_files_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--fix-sql"]) in (0, 1)
    capsys.readouterr()


def test_the_terminal_report_names_revision_rule_line_help_and_link(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "drop_owner", "0001", DROP_OWNER, ADD_OWNER)
    _sql_files_up_to_date(capsys)
    code, out, err = _lint(capsys)
    assert (code, out) == (1, "")
    assert err == (
        "0002_drop_owner\n"
        "  error ban-drop-column  migrations/versions/0002_drop_owner.py:12\n"
        "    Dropping a column may break existing clients.\n"
        "    sql: ALTER TABLE tasks DROP COLUMN owner;\n"
        "    see: https://squawkhq.com/docs/ban-drop-column\n"
        "1 error(s), 0 warning(s) in 2 revision(s) linted\n"
    )


def test_a_clean_history_says_so(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sql_files_up_to_date(capsys)
    assert _lint(capsys) == (0, "", "[✓] 1 revision(s) linted: no findings\n")


def test_github_annotations_and_sarif(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_revision(project, "0002", "drop_owner", "0001", DROP_OWNER, ADD_OWNER)
    _sql_files_up_to_date(capsys)
    code, out, _ = _lint(capsys, "--format", "github")
    assert code == 1
    assert out == (
        "::error file=migrations/versions/0002_drop_owner.py,line=12,title=ban-drop-column::"
        "Dropping a column may break existing clients.\n"
    )
    code, out, _ = _lint(capsys, "--format", "sarif")
    sarif = json.loads(out)
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "ban-drop-column"
    assert result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]
    assert location == {
        "artifactLocation": {"uri": "migrations/versions/0002_drop_owner.py"},
        "region": {"startLine": 12},
    }
    assert sarif["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"].endswith("ban-drop-column")


def test_sql_files_are_kept_honest(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    revision = write_revision(
        project,
        "0002",
        "add_note",
        "0001",
        'op.add_column("tasks", sa.Column("note", sa.Text()))',
        'op.drop_column("tasks", "note")',
    )
    code, _, err = _lint(capsys)
    assert code == 0
    assert "  warning missing-sql-file  migrations/versions/0002_add_note.py\n" in err
    code, _, err = _lint(capsys, "--fix-sql")
    assert "[✓] rewrote migrations/sql/0002_add_note.sql\n" in err
    sql = (project / "migrations" / "sql" / "0002_add_note.sql").read_text()
    assert sql.startswith("SET lock_timeout = '5s';\nSET statement_timeout = '30min';\n\nBEGIN;\n")
    assert "ALTER TABLE tasks ADD COLUMN note TEXT;" in sql
    revision.write_text(
        revision.read_text().replace('"note", sa.Text()', '"note", sa.Text(), comment="free text"')
    )
    code, _, err = _lint(capsys)
    assert code == 1
    assert (
        "  error stale-sql-file  migrations/versions/0002_add_note.py\n"
        "    migrations/sql/0002_add_note.sql no longer says what the revision runs\n"
        "    help: run: migrail lint --fix-sql\n"
    ) in err


def test_since_lints_only_what_changed_against_the_base(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "drop_owner", "0001", DROP_OWNER, ADD_OWNER)
    _sql_files_up_to_date(capsys)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "released"], cwd=project, check=True)
    code, _, err = _lint(capsys, "--since", "main")
    assert (code, err) == (
        0,
        "No revision changed since main: nothing to lint\n[✓] 0 revision(s) linted: no findings\n",
    )
    write_revision(
        project,
        "0003",
        "index_status",
        "0002",
        'op.create_index("ix_status", "tasks", ["status"])',
        'op.drop_index("ix_status", table_name="tasks")',
    )
    code, _, err = _lint(capsys, "--since", "main")
    assert code == 1
    assert "ban-drop-column" not in err, "the released revision is out of scope"
    assert (
        "  error require-concurrent-index-creation  migrations/versions/0003_index_status.py:12\n"
        in err
    )
    assert main(["lint", "--since", "origin/nowhere"]) == 2
    assert capsys.readouterr().err == (
        "error: 'origin/nowhere' is not a commit this repository knows\n"
        "hint: fetch it first (git fetch origin), or name another base\n"
    )


def test_since_imports_no_revision_older_than_what_changed_and_finds_the_same(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "drop_owner", "0001", DROP_OWNER, ADD_OWNER)
    write_revision(
        project,
        "0003",
        "index_status",
        "0002",
        'op.create_index("ix_status", "tasks", ["status"])',
        'op.drop_index("ix_status", table_name="tasks")',
    )
    imported = project.parent / "0002-imported"  # what importing the older revision leaves
    older = project / "migrations" / "versions" / "0002_drop_owner.py"
    older.write_text(older.read_text() + f"\nopen({str(imported)!r}, 'a').close()\n")
    _sql_files_up_to_date(capsys)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "released"], cwd=project, check=True)
    newest = project / "migrations" / "versions" / "0003_index_status.py"
    newest.write_text(newest.read_text().replace('"""index_status', '"""Index the status'))
    models = project / "tasks_models.py"  # a changed file that is no revision changes nothing
    models.write_text(models.read_text() + "# touched\n")
    imported.unlink()

    code, out, _ = _lint(capsys, "--since", "main", "--format", "json")
    assert not imported.exists()
    full_code, full, _ = _lint(capsys, "--format", "json")
    assert imported.exists()
    assert code == full_code == 1
    assert json.loads(out) == [f for f in json.loads(full) if f["revision"] == "0003"]
    assert {f["rule"] for f in json.loads(out)} == {"require-concurrent-index-creation"}


def test_since_finds_what_the_full_lint_finds_in_dated_files_a_branch_and_its_merge(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An adopted history: files named by a dated file_template, two revisions branching from
    one and a merge of them. Changed on a branch, a branch revision and the merge are linted
    by --since exactly as the full lint finds them (their findings, their lines, a SQL file
    gone stale), and nothing else is."""
    date_named_history(project, naming="")
    names = {
        "b1b1b1b1b1b1": ("2024_05_06_0708-b1b1b1b1b1b1_drop_owner", "0f1e2d3c4b5a", DROP_OWNER),
        "b2b2b2b2b2b2": (
            "2024_05_06_0709-b2b2b2b2b2b2_index_status",
            "0f1e2d3c4b5a",
            'op.create_index("ix_status", "tasks", ["status"])',
        ),
        "c3c3c3c3c3c3": (
            "2024_06_07_0809-c3c3c3c3c3c3_merge",
            ("b1b1b1b1b1b1", "b2b2b2b2b2b2"),
            'op.add_column("tasks", sa.Column("due", sa.Date(), nullable=False))',
        ),
    }
    for revision, (name, parent, upgrade) in names.items():
        write_revision(project, revision, name, parent, upgrade, file_name=f"{name}.py")
    _sql_files_up_to_date(capsys)
    commit_all(project, "released")
    versions = project / "migrations" / "versions"
    for revision in ("b2b2b2b2b2b2", "c3c3c3c3c3c3"):
        path = versions / f"{names[revision][0]}.py"
        path.write_text(
            path.read_text()
            .replace('"""', '"""Changed: ', 1)
            .replace("def upgrade():\n", 'def upgrade():\n    op.execute("SELECT 2")\n')
        )

    code, out, _ = _lint(capsys, "--since", "main", "--format", "json")
    full_code, full, _ = _lint(capsys, "--format", "json")
    since = json.loads(out)
    assert code == full_code == 1
    assert since == [
        f for f in json.loads(full) if f["revision"] in ("b2b2b2b2b2b2", "c3c3c3c3c3c3")
    ]
    assert {(f["revision"], f["rule"]) for f in since} >= {
        ("b2b2b2b2b2b2", "require-concurrent-index-creation"),
        ("b2b2b2b2b2b2", "stale-sql-file"),
        ("c3c3c3c3c3c3", "adding-required-field"),
        ("c3c3c3c3c3c3", "stale-sql-file"),
    }


def test_a_revision_whose_sql_cannot_be_known_is_a_finding(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "reads_missing",
        "0001",
        'op.get_bind().execute(sa.text("SELECT * FROM missing")).all()',
    )
    code, _, err = _lint(capsys)
    assert code == 1
    assert "  error cannot-render  migrations/versions/0002_reads_missing.py\n" in err
    assert (
        "its SQL cannot be known: offline, AttributeError: 'NoneType' object has no attribute 'all'; the history stopped at 0002 on a throwaway database: relation \"missing\" does not exist (SQLSTATE 42P01)"
        in err
    )


def test_revisions_run_with_the_configured_timeouts(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"',
            'migrations = "migrations"\nlock_timeout = "2s"\nstatement_timeout = "10min"',
        )
    )
    write_revision(
        project,
        "0002",
        "record_settings",
        "0001",
        "op.execute(\"CREATE TABLE settings AS SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement\")",
        'op.drop_table("settings")',
    )
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0
    assert query(database_url, "SELECT lock, statement FROM settings") == [("2s", "10min")]
    assert main(["migrate", "--sql"]) == 0  # nothing pending: prints nothing
    assert main(["lint", "--fix-sql"]) == 0
    sql = (project / "migrations" / "sql" / "0002_record_settings.sql").read_text()
    assert sql.startswith("SET lock_timeout = '2s';\nSET statement_timeout = '10min';\n")


def test_configured_exclusions_warnings_and_pg_version(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "drop_owner", "0001", DROP_OWNER, ADD_OWNER)
    write_revision(
        project,
        "0003",
        "add_flag",
        "0002",
        'op.add_column("tasks", sa.Column("flag", sa.Integer(), server_default="0"))',
        'op.drop_column("tasks", "flag")',
    )
    _sql_files_up_to_date(capsys)
    pyproject = project / "pyproject.toml"
    base = pyproject.read_text()
    warn = '["ban-drop-column", "prefer-bigint-over-int"]'  # replaces the default list
    pyproject.write_text(base + f"\n[tool.migrail.lint]\nwarn = {warn}\n")
    code, _, err = _lint(capsys)
    assert code == 0
    assert "  warning ban-drop-column  migrations/versions/0002_drop_owner.py:12\n" in err
    pyproject.write_text(
        base + '\n[tool.migrail.lint]\nexclude = ["ban-drop-column"]\npg_version = "10"\n'
    )
    code, _, err = _lint(capsys)
    assert "ban-drop-column" not in err
    assert "  error adding-field-with-default  migrations/versions/0003_add_flag.py:12\n" in err


def test_branches_merges_and_a_revision_that_needs_a_database(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """0001 -> 0002 | 0003 (reads the database) -> 0004, merged in 0005, then 0006."""
    write_revision(project, "0002", "drop_owner", "0001", DROP_OWNER, ADD_OWNER)
    write_revision(
        project, "0003", "count_tasks", "0001", 'op.get_bind().execute(sa.text("SELECT 1")).all()'
    )
    write_revision(
        project,
        "0004",
        "index_status",
        "0003",
        'op.create_index("ix_status", "tasks", ["status"])',
        'op.drop_index("ix_status", table_name="tasks")',
    )
    (project / "migrations" / "versions" / "0005_merge.py").write_text(
        '"""Merge the two branches"""\n\nrevision = "0005"\ndown_revision = ("0002", "0004")\n'
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    pass\n\n\n"
        "def downgrade():\n    pass\n"
    )
    write_revision(
        project,
        "0006",
        "rename_tasks",
        "0005",
        'op.rename_table("tasks", "jobs")',
        'op.rename_table("jobs", "tasks")',
    )
    code, out, _ = _lint(capsys, "--format", "json")
    found = {(f["revision"], f["rule"], f["line"], f["sql_from"]) for f in json.loads(out)}
    assert code == 1
    assert {
        ("0002", "ban-drop-column", 12, "rendered offline"),
        ("0004", "require-concurrent-index-creation", 12, "rendered offline"),
        ("0006", "renaming-table", 12, "rendered offline"),
    } <= found
    assert not [f for f in found if f[0] == "0003" and f[1] != "missing-sql-file"]
    assert ("0003", "missing-sql-file", None, "captured on a throwaway database") in found
    assert main(["lint", "--fix-sql"]) == 1
    capsys.readouterr()
    captured = (project / "migrations" / "sql" / "0003_count_tasks.sql").read_text()
    assert captured.startswith("-- This revision reads from the database")
    assert "SELECT 1;" in captured
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "history"], cwd=project, check=True)
    path = project / "migrations" / "versions" / "0004_index_status.py"
    path.write_text(path.read_text().replace('"""index_status"""', '"""Index the status"""'))
    code, out, _ = _lint(capsys, "--since", "main", "--format", "json")
    assert {(f["revision"], f["rule"]) for f in json.loads(out)} == {
        ("0004", "require-concurrent-index-creation")
    }


def test_bulk_inserts_do_not_stop_the_capture(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "seed",
        "0001",
        'op.bulk_insert(sa.table("tasks", sa.column("id"), sa.column("name"), sa.column("status")), '
        '[{"id": "a", "name": "n", "status": "s"}, {"id": "b", "name": "n", "status": "s"}])',
    )
    write_revision(
        project,
        "0003",
        "index_when_busy",
        "0002",
        'if op.get_bind().execute(sa.text("SELECT count(*) FROM tasks")).scalar():\n'
        '        op.create_index("ix_owner", "tasks", ["owner"])',
        'op.drop_index("ix_owner", table_name="tasks")',
    )
    code, out, _ = _lint(capsys, "--format", "json")
    assert code == 1
    rules = {(f["revision"], f["rule"], f["sql_from"]) for f in json.loads(out)}
    assert (
        "0003",
        "require-concurrent-index-creation",
        "captured on a throwaway database",
    ) in rules
    assert not [r for r in rules if r[1] == "cannot-render"]


def test_sql_files_of_revisions_that_are_gone_are_reported_and_removed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = project / "migrations" / "sql" / "0002_renamed_away.sql"
    orphan.write_text("SELECT 1;\n")
    code, _, err = _lint(capsys)
    assert code == 1
    assert "  error orphan-sql-file  migrations/sql/0002_renamed_away.sql\n" in err
    code, _, err = _lint(capsys, "--fix-sql")
    assert "[✓] removed migrations/sql/0002_renamed_away.sql\n" in err
    assert not orphan.exists()


def test_own_rules_can_be_excluded_or_made_warnings(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "add_note",
        "0001",
        '# migrail: allow ban-drop-column -- nothing dropped\n    op.add_column("tasks", sa.Column("note", sa.Text()))',
    )
    _sql_files_up_to_date(capsys)
    pyproject = project / "pyproject.toml"
    base = pyproject.read_text()
    pyproject.write_text(
        base
        + '\n[tool.migrail.lint]\nexclude = ["empty-downgrade"]\nwarn = ["unused-suppression"]\n'
    )
    code, _, err = _lint(capsys)
    assert code == 0, err
    assert "empty-downgrade" not in err
    assert "  warning unused-suppression  migrations/versions/0002_add_note.py:12\n" in err


def test_a_squawk_config_file_is_passed_on(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(project, "0002", "drop_owner", "0001", DROP_OWNER, ADD_OWNER)
    _sql_files_up_to_date(capsys)
    (project / "config").mkdir()
    (project / "config" / "squawk.toml").write_text('excluded_rules = ["ban-drop-column"]\n')
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.migrail.lint]\nsquawk_config = "config/squawk.toml"\n'
    )
    assert _lint(capsys)[0] == 0


def test_a_finding_never_shows_a_password_its_statement_holds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "reporting_role",
        "0001",
        'op.execute("ALTER TABLE tasks ADD COLUMN upstream varchar(200) '
        "DEFAULT 'postgresql://sync:Sw0rdf1sh-77@replica/app'\")",
    )
    for format_ in ("terminal", "json", "sarif", "github"):
        main(["lint", "--format", format_])
        out, err = capsys.readouterr()
        assert "prefer-text-field" in out + err, format_  # the statement is shown
        assert "Sw0rdf1sh" not in out + err, format_


def test_a_revision_that_commits_part_way_is_captured_with_its_own_sql(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """0002 commits part-way (allowed) and 0004 reads a count: both are captured on a throwaway
    database, each with the statements it ran, and the last keeps its finding."""
    midcommit_history(project)
    code, out, _ = _lint(capsys, "--format", "json")
    assert code == 1
    found = {
        (f["revision"], f["rule"], f["context"].get("statement"), f["sql_from"])
        for f in json.loads(out)
        if f["rule"] != "missing-sql-file"
    }
    assert found == {
        (
            "0003",
            "prefer-bigint-over-int",
            "ALTER TABLE tasks ADD COLUMN priority INTEGER;",
            "rendered offline",
        ),
        (
            "0004",
            "require-concurrent-index-creation",
            "CREATE INDEX ix_tasks_priority ON tasks (priority);",
            "captured on a throwaway database",
        ),
    }
    assert main(["lint", "--fix-sql"]) == 1
    capsys.readouterr()
    sql = project / "migrations" / "sql"
    index = (sql / "0002_index_concurrently.sql").read_text()
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_tasks_name ON tasks (name);" in index
    assert "priority" not in index
    rank = (sql / "0004_rank_tasks.sql").read_text()
    assert (
        "SELECT count(*) FROM tasks;\n\nUPDATE tasks SET priority = 0 WHERE priority IS NULL;"
        in rank
    )


def test_two_findings_of_one_rule_in_one_statement_say_what_each_points_at(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "create_tags",
        "0001",
        'op.create_table("tags", sa.Column("id", sa.Text(), primary_key=True), '
        'sa.Column("label", sa.String(40)), sa.Column("colour", sa.String(7)))',
        'op.drop_table("tags")',
    )
    _, out, _ = _lint(capsys, "--format", "json")
    pointed = sorted(
        f["context"].get("at") for f in json.loads(out) if f["rule"] == "prefer-text-field"
    )
    assert pointed == ["colour VARCHAR(7)", "label VARCHAR(40)"]
    _, _, err = _lint(capsys)
    assert "    at: label VARCHAR(40)\n" in err


def test_a_varchar_column_is_a_warning_not_a_failure(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model's String(64) is the team's choice: squawk's prefer-text-field warns by default."""
    write_revision(
        project,
        "0002",
        "add_code",
        "0001",
        'op.add_column("tasks", sa.Column("code", sa.String(64)))',
        'op.drop_column("tasks", "code")',
    )
    assert main(["lint", "--fix-sql"]) == 0
    err = capsys.readouterr().err
    assert "warning prefer-text-field  migrations/versions/0002_add_code.py" in err, err


def test_since_lints_every_revision_when_a_file_they_run_changed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A helper module beside the revisions (or env.py, or SQL a revision reads) changes what
    a revision runs though its own file did not: ``--since`` then lints them all, and finds
    what the full lint finds."""
    helpers = project / "migrations" / "helpers.py"
    helpers.write_text("COLUMN = 'note'\n")
    write_revision(
        project,
        "0002",
        "add_column",
        "0001",
        "op.add_column('tasks', sa.Column(_helpers().COLUMN, sa.Text()))",
        "op.drop_column('tasks', _helpers().COLUMN)",
        extra=(
            "def _helpers():\n"
            "    import importlib.util, pathlib\n"
            "    path = pathlib.Path(__file__).parents[1] / 'helpers.py'\n"
            "    spec = importlib.util.spec_from_file_location('helpers', path)\n"
            "    module = importlib.util.module_from_spec(spec)\n"
            "    spec.loader.exec_module(module)\n"
            "    return module\n"
        ),
    )
    _sql_files_up_to_date(capsys)
    commit_all(project)
    helpers.write_text("COLUMN = 'remark'\n")
    code, _, err = _lint(capsys, "--since", "HEAD")
    full_code, _, full_err = _lint(capsys)
    assert err.startswith("migrations/helpers.py changed since HEAD: every revision linted\n")
    assert (code, err.split("\n", 1)[1]) == (full_code, full_err)
    assert "migrations/sql/0002_add_column.sql no longer says what the revision runs" in err


def test_since_lints_only_what_changed_when_a_document_beside_the_revisions_changed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A README beside the revisions shapes nothing they run: editing it lints nothing more."""
    readme = project / "migrations" / "README.md"
    readme.write_text("# migrations\n")
    commit_all(project)
    readme.write_text("# migrations\n\nHow to write one.\n")
    code, _, err = _lint(capsys, "--since", "HEAD")
    assert code == 0 and "every revision linted" not in err, err

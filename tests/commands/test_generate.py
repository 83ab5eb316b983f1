"""``migrail generate``: a revision from the models, with its SQL beside it, or nothing."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.files import read_only, tree
from testing.projects import add_priority_column


def test_a_new_column_writes_the_revision_and_its_sql(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_column(project)
    assert main(["generate", "add_priority"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    revision = project / "migrations" / "versions" / "0002_add_priority.py"
    sql = project / "migrations" / "sql" / "0002_add_priority.sql"
    assert "  + column tasks.priority (INTEGER)\n" in err
    assert "[✓] Your migration ➜ migrations/versions/0002_add_priority.py\n" in err
    assert "[✓] Its SQL, for review ➜ migrations/sql/0002_add_priority.sql\n" in err
    text = revision.read_text()
    assert "revision: str = '0002'" in text
    assert "down_revision: str | Sequence[str] | None = '0001'" in text
    assert "op.add_column('tasks', sa.Column('priority', sa.Integer()" in text
    assert "ALTER TABLE tasks ADD COLUMN priority INTEGER DEFAULT '0' NOT NULL;" in sql.read_text()
    assert "UPDATE alembic_version SET version_num='0002'" in sql.read_text()


def test_no_model_change_writes_nothing(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(project.rglob("*"))
    assert main(["generate", "nothing"]) == 0
    assert capsys.readouterr().err.endswith("No schema changes, nothing to migrate\n")
    assert sorted(project.rglob("*")) == before


def test_empty_revision_needs_no_database(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRAIL_EPHEMERAL", "server")  # any attempt to get a database would fail
    assert main(["generate", "--empty", "Backfill owners"]) == 0
    revision = project / "migrations" / "versions" / "0002_backfill_owners.py"
    assert '"""backfill owners' in revision.read_text()
    assert re.search(r"def upgrade\(\) -> None:\n    pass", revision.read_text())
    assert (project / "migrations" / "sql" / "0002_backfill_owners.sql").is_file()


def test_the_first_revision_of_a_new_project(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("versions", "sql"):
        for path in (project / "migrations" / folder).iterdir():
            path.unlink()
    assert main(["generate", "create tasks"]) == 0
    assert "  + table tasks (7 columns)\n" in capsys.readouterr().err
    sql = (project / "migrations" / "sql" / "0001_create_tasks.sql").read_text()
    assert "CREATE TABLE tasks (" in sql


def test_timestamp_naming(project: Path, pg_server: Server) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"', 'migrations = "migrations"\nrevision_naming = "timestamp"'
        )
    )
    add_priority_column(project)
    assert main(["generate", "add_priority"]) == 0
    [written] = (project / "migrations" / "versions").glob("2*_add_priority.py")
    assert re.fullmatch(r"\d{8}_\d{6}_add_priority\.py", written.name)


def test_without_models_generate_asks_for_them_and_empty_still_works(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('metadata = "tasks_models:metadata"\n', ""))
    assert main(["generate", "add_priority"]) == 2
    assert capsys.readouterr().err == (
        "error: generate compares models with the migrations, and no models are configured\n"
        "hint: set [tool.migrail] metadata = 'package.module:metadata', or write the revision by "
        "hand: migrail generate --empty NAME\n"
    )
    assert main(["generate", "--empty", "add_priority"]) == 0
    assert (project / "migrations" / "versions" / "0002_add_priority.py").is_file()


def test_a_history_that_does_not_apply_stops_generate(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.projects import write_revision

    write_revision(project, "0002", "broken", "0001", 'op.execute("SELECT * FROM missing")')
    assert main(["generate", "add_priority"]) == 2
    err = capsys.readouterr().err
    assert (
        'error: the existing history does not apply: upgrade of 0002_broken failed: relation "missing" does not exist'
        in err
    )


def _extend_models(project: Path, code: str) -> None:
    models = project / "tasks_models.py"
    models.write_text(models.read_text() + "\nfrom sqlalchemy import ForeignKey, Index\n" + code)


def _lint_and_prove(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    import json

    capsys.readouterr()
    assert main(["lint", "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert main(["migrate-staging"]) == 0, capsys.readouterr().err
    return findings


def test_an_index_on_an_existing_table_is_built_concurrently_and_passes_lint(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _extend_models(project, 'Index("ix_tasks_status", tasks.c.status)\n')
    assert main(["generate", "index_status"]) == 0
    text = (project / "migrations" / "versions" / "0002_index_status.py").read_text()
    assert (
        "    with op.get_context().autocommit_block():\n"
        '        op.execute("DO $$BEGIN IF EXISTS (SELECT FROM pg_index WHERE indexrelid = '
        "to_regclass('ix_tasks_status') AND NOT indisvalid) THEN DROP INDEX ix_tasks_status; "
        'END IF; END$$")\n'
        "        op.create_index('ix_tasks_status', 'tasks', ['status'], unique=False, "
        "postgresql_concurrently=True, if_not_exists=True)\n"
    ) in text
    assert (
        "    with op.get_context().autocommit_block():\n"
        "        op.drop_index('ix_tasks_status', table_name='tasks', "
        "postgresql_concurrently=True, if_exists=True)\n"
    ) in text
    sql = (project / "migrations" / "sql" / "0002_index_status.sql").read_text()
    assert "END$$;\n\nCREATE INDEX CONCURRENTLY IF NOT EXISTS ix_tasks_status" in sql
    assert [f["rule"] for f in _lint_and_prove(capsys)] == []


def test_a_foreign_key_is_added_not_valid_and_validated_in_a_follow_up(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _extend_models(
        project,
        'tasks.append_column(Column("parent_id", Text, ForeignKey("tasks.id"), index=True))\n'
        'events = Table("events", metadata, Column("id", Text, primary_key=True),\n'
        '    Column("task_id", Text, ForeignKey("tasks.id"), nullable=False, index=True))\n',
    )
    assert main(["generate", "add_parent"]) == 0
    err = capsys.readouterr().err
    assert "[✓] Your migration ➜ migrations/versions/0002_add_parent.py\n" in err
    assert "[✓] Your migration ➜ migrations/versions/0003_add_parent_finish.py\n" in err
    versions = project / "migrations" / "versions"
    first = (versions / "0002_add_parent.py").read_text()
    assert (
        "op.create_foreign_key('tasks_parent_id_fkey', 'tasks', 'tasks', ['parent_id'], ['id'], "
        "postgresql_not_valid=True)"
    ) in first
    assert "op.drop_constraint('tasks_parent_id_fkey', 'tasks', type_='foreignkey')" in first
    assert (
        "op.create_index(op.f('ix_events_task_id'), 'events', ['task_id'], unique=False)\n" in first
    ), "a new table keeps the plain form"
    assert "ix_tasks_parent_id" not in first
    finish = (versions / "0003_add_parent_finish.py").read_text()
    assert "down_revision: str | Sequence[str] | None = '0002'" in finish
    assert "postgresql_concurrently=True, if_not_exists=True)" in finish
    assert "op.execute('ALTER TABLE tasks VALIDATE CONSTRAINT tasks_parent_id_fkey')" in finish
    assert (project / "migrations" / "sql" / "0003_add_parent_finish.sql").is_file()
    assert [f["rule"] for f in _lint_and_prove(capsys)] == []


def test_an_orphan_sql_file_with_the_new_number_is_refused_and_nothing_is_written(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Left by a revision that was deleted: generate would write the new SQL over it."""
    monkeypatch.setenv("MIGRAIL_EPHEMERAL", "server")  # refused before any database is needed
    orphan = project / "migrations" / "sql" / "0002_add_priority.sql"
    orphan.write_text("-- the SQL of a revision deleted since\n")
    add_priority_column(project)
    before = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()}
    for argv in (["generate", "--empty", "add priority"], ["generate", "add_priority"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err == (
            "error: migrations/sql/0002_add_priority.sql belongs to no revision, and the new "
            "revision would be numbered 0002 too\n"
            "hint: remove it if its revision was deleted on purpose (migrail lint --fix-sql "
            "removes such files), or restore that revision; then generate again\n"
        )
    assert {path: path.read_bytes() for path in project.rglob("*") if path.is_file()} == before


NEXT = "0002_add_priority"
WRITABLE_HINT = "make it writable, or run as a user who may write it; nothing was written"


@pytest.mark.parametrize(
    ("target", "written"),
    [
        ("versions", f"versions/{NEXT}.py"),
        ("sql", f"sql/{NEXT}.sql"),
        ("schema", f"schema/{NEXT}.sql"),
        ("migrail.sum", "migrail.sum"),
    ],
)
def test_a_read_only_output_leaves_nothing_written(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str], target: str, written: str
) -> None:
    add_priority_column(project)
    migrations = project / "migrations"
    before = tree(project)
    with read_only(migrations / target) as reason:
        assert main(["generate", "add_priority"]) == 2
        assert tree(project) == before
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith(
        f"error: cannot write {migrations / written}: {reason}\nhint: {WRITABLE_HINT}\n"
    )


@pytest.mark.parametrize(
    ("in_the_way", "expected"),
    [
        (
            f"versions/{NEXT}.py/",
            f"cannot write {{migrations}}/versions/{NEXT}.py: a folder of that name is in the "
            "way\nhint: move or rename that folder; nothing was written",
        ),
        (
            "sql",
            f"cannot write {{migrations}}/sql/{NEXT}.sql: {{migrations}}/sql is a file, not a "
            "folder\nhint: move that file away; nothing was written",
        ),
        (
            "schema",
            f"cannot write {{migrations}}/schema/{NEXT}.sql: {{migrations}}/schema is a file, "
            "not a folder\nhint: move that file away; nothing was written",
        ),
        (
            "migrail.sum/",  # found as the sum is read, before anything is written
            "cannot read {migrations}/migrail.sum: Is a directory\n"
            "hint: a folder is where the file should be: move the folder away",
        ),
    ],
)
def test_something_in_the_way_of_an_output_leaves_nothing_written(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    in_the_way: str,
    expected: str,
) -> None:
    """A file where generate needs a folder, or a folder named like a file it writes (the next
    revision's, say): named, and none of the other outputs left behind."""
    add_priority_column(project)
    migrations = project / "migrations"
    path = migrations / in_the_way.rstrip("/")
    shutil.rmtree(path, ignore_errors=True)
    path.unlink(missing_ok=True)
    if in_the_way.endswith("/"):
        path.mkdir()
    else:
        path.write_text("")
    before = tree(project)
    assert main(["generate", "add_priority"]) == 2
    assert tree(project) == before
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith(f"error: {expected.format(migrations=migrations)}\n")


def test_a_new_table_with_an_enum_drops_the_type_in_its_downgrade(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text().replace("import Column, DateTime,", "import Column, DateTime, Enum,")
        + '\nlabels = Table("labels", metadata, Column("id", Text, primary_key=True),'
        ' Column("colour", Enum("red", "green", name="colour"), nullable=False))\n'
    )
    assert main(["generate", "add_labels"]) == 0
    text = (project / "migrations" / "versions" / "0002_add_labels.py").read_text()
    assert text.endswith(
        "    op.drop_table('labels')\n    op.execute('DROP TYPE colour')\n"
        "    # ### end Alembic commands ###\n"
    )
    capsys.readouterr()
    assert main(["migrate-staging"]) == 0, "down to base and up again creates the type again"
    assert capsys.readouterr().err.endswith("[✓] round trip: down to base and up to head again\n")


def test_the_changes_are_named_by_postgresql_types(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """What generate lists matches the SQL beside it: no SQLAlchemy ``DATETIME``."""
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text().replace(
            '    Column("owner", Text),\n',
            '    Column("owner", Text),\n    Column("due_at", DateTime(timezone=True)),\n',
        )
    )
    assert main(["generate", "add_due_at"]) == 0
    err = capsys.readouterr().err
    assert "  + column tasks.due_at (TIMESTAMP WITH TIME ZONE)\n" in err
    sql = (project / "migrations" / "sql" / "0002_add_due_at.sql").read_text()
    assert "ADD COLUMN due_at TIMESTAMP WITH TIME ZONE" in sql


def test_a_concurrent_unique_index_that_failed_is_built_again_on_a_retry(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The build fails over duplicates and leaves an INVALID index; a retry must not take it
    for done: it fails again while the duplicates are there, and builds a valid index once
    they are gone."""
    from testing.postgres import query, run_sql

    _extend_models(project, 'Index("ix_tasks_name", tasks.c.name, unique=True)\n')
    assert main(["generate", "unique_names"]) == 0
    with pg_server.database() as url:
        monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
        assert main(["migrate", "--to", "0001"]) == 0
        run_sql(url, "INSERT INTO tasks (id, name, status) VALUES ('a', 'x', 's'), ('b', 'x', 's')")
        capsys.readouterr()
        for _ in range(2):
            assert main(["migrate"]) == 1
            assert "could not create unique index" in capsys.readouterr().err
        run_sql(url, "DELETE FROM tasks WHERE id = 'b'")
        assert main(["migrate"]) == 0
        valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_tasks_name'::regclass"
        assert query(url, valid) == [(True,)]


def test_a_unique_constraint_without_a_name_is_warned_about(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a naming convention, ``unique=True`` is written as
    ``op.create_unique_constraint(None, ...)``, whose downgrade cannot run."""
    _extend_models(project, 'tasks.append_column(Column("code", Text, unique=True))\n')
    migrations = project / "migrations"
    sums = (migrations / "migrail.sum").read_text()
    assert main(["generate", "add_code"]) == 0
    err = capsys.readouterr().err
    text = (project / "migrations" / "versions" / "0002_add_code.py").read_text()
    assert "op.create_unique_constraint(None, 'tasks', ['code'])" in text
    assert (
        "warning: tasks gets a unique constraint on (code) without a name: its downgrade's "
        "drop_constraint(None, ...) cannot run\n"
    ) in err
    assert "hint: name it, or give the models' MetaData a naming convention: " in err
    assert "'uq': 'uq_%(table_name)s_%(column_0_name)s'" in err
    # As the hint says: with a naming convention, it is named, and nothing is said.
    for written in migrations.rglob("0002_add_code.*"):
        written.unlink()
    (migrations / "migrail.sum").write_text(sums)
    models = project / "tasks_models.py"
    convention = 'naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"}'
    models.write_text(
        models.read_text().replace("metadata = MetaData()", f"metadata = MetaData({convention})")
    )
    sys.modules.pop("tasks_models", None)  # imported by the first generate, in this process
    capsys.readouterr()
    assert main(["generate", "add_code"]) == 0
    err = capsys.readouterr().err
    text = (project / "migrations" / "versions" / "0002_add_code.py").read_text()
    assert "op.create_unique_constraint(op.f('uq_tasks_code'), 'tasks', ['code'])" in text
    assert "warning" not in err


def _generate_and_undo(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Run ``generate add_priority``; its messages and its revision file (without the line
    that dates it), after which the project is put back as it was."""
    before = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()}
    code = main(["generate", "add_priority"])
    err = capsys.readouterr().err
    assert code == 0, err
    revision = project / "migrations" / "versions" / "0002_add_priority.py"
    text = re.sub(r"Create Date: .*\n", "", revision.read_text())
    for path in project.rglob("*"):
        if path.is_file() and path not in before:
            path.unlink()
    for path, content in before.items():
        path.write_bytes(content)
    return err, text


def test_generate_from_a_template_writes_what_a_replay_writes(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.postgres import templates_of

    add_priority_column(project)
    imported = project.parent / "0001-imported"  # what importing revision 0001 leaves
    first = project / "migrations" / "versions" / "0001_create_tasks.py"
    first.write_text(first.read_text() + f"\nopen({str(imported)!r}, 'a').close()\n")
    assert templates_of(pg_server.admin_url, project) == set()
    replayed, by_replay = _generate_and_undo(project, capsys)
    assert "template cache" not in replayed
    assert imported.exists()
    imported.unlink()
    [kept] = templates_of(pg_server.admin_url, project)  # generate's own, at head

    copied, from_template = _generate_and_undo(project, capsys)
    assert "template cache: starting from a copy of the database at 0001_create_tasks\n" in copied
    assert not imported.exists()  # what the template holds is not imported, let alone run
    assert from_template == by_replay
    assert "op.add_column('tasks', sa.Column('priority'" in from_template
    assert templates_of(pg_server.admin_url, project) == {kept}  # none more, none dropped


def test_generate_starts_from_the_template_migrate_staging_kept(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from migrail.staging.templates import clear_templates, project_key
    from testing.postgres import templates_of

    assert main(["migrate-staging"]) == 0  # proves 0001 and keeps its database, sample rows in
    capsys.readouterr()
    [proven] = templates_of(pg_server.admin_url, project)
    del sys.modules["tasks_models"]  # loaded by that run: read the changed models anew
    add_priority_column(project)
    copied, from_template = _generate_and_undo(project, capsys)
    assert "template cache: starting from a copy of the database at 0001_create_tasks\n" in copied
    assert templates_of(pg_server.admin_url, project) == {proven}  # neither dropped nor doubled
    clear_templates(pg_server.admin_url, project_key(project / "migrations"))
    replayed, by_replay = _generate_and_undo(project, capsys)
    assert "template cache" not in replayed
    assert from_template == by_replay


def test_a_revision_after_the_template_that_fails_to_import_stops_generate_first(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.postgres import templates_of
    from testing.projects import write_revision

    add_priority_column(project)
    _generate_and_undo(project, capsys)  # keeps a template at 0001
    assert templates_of(pg_server.admin_url, project)
    path = write_revision(project, "0002", "broken", "0001", 'op.execute("SELECT 1")')
    path.write_text(path.read_text() + '\nraise RuntimeError("broken on import")\n')
    assert main(["generate", "add_priority"]) == 2
    err = capsys.readouterr().err
    line = len(path.read_text().splitlines())
    assert err.endswith(
        f"error: {path.resolve()}:{line}: a revision file failed to load: "
        "RuntimeError: broken on import\n"
    )
    assert "template cache: starting from a copy" not in err  # stopped before copying it


# Alembic's cookbook recipe "Don't generate empty migrations with autogenerate", as projects
# copy it into env.py: it reads the command line's options through config.cmd_opts.
COOKBOOK_ENV = """from alembic import context

from tasks_models import metadata

config = context.config


def process_revision_directives(context, revision, directives):
    if config.cmd_opts.autogenerate:
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []


context.configure(
    connection=config.attributes.get("connection"),
    target_metadata=metadata,
    process_revision_directives=process_revision_directives,
)
with context.begin_transaction():
    context.run_migrations()
"""


def test_env_py_reading_cmd_opts_autogenerate_runs_as_under_alembic(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "migrations" / "env.py").write_text(COOKBOOK_ENV)
    before = sorted(project.rglob("*"))
    assert main(["generate", "nothing"]) == 0
    assert capsys.readouterr().err.endswith("No schema changes, nothing to migrate\n")
    assert sorted(project.rglob("*")) == before

    add_priority_column(project)
    sys.modules.pop("tasks_models", None)
    assert main(["generate", "add_priority"]) == 0
    assert "  + column tasks.priority (INTEGER)\n" in capsys.readouterr().err
    assert (project / "migrations" / "versions" / "0002_add_priority.py").is_file()
    assert main(["generate", "--empty", "by_hand"]) == 0
    assert (project / "migrations" / "versions" / "0003_by_hand.py").is_file()


def test_generate_from_a_template_applies_the_rest_in_the_order_from_base(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template holds a prefix of the history in Alembic's order from base; the revisions
    after it go on in that order too, as a replay from base applies them, not in the order
    Alembic's upgrade from the template's heads picks (which fails on this history)."""
    from testing.projects import branches_alembic_reorders, write_revision

    write_revision(project, "0002", "second", "0001", 'op.execute("SELECT 2")')
    write_revision(project, "0003", "third", "0002", 'op.execute("SELECT 3")')
    assert main(["migrate-staging"]) == 0  # keeps templates at 0002 and 0003
    capsys.readouterr()
    del sys.modules["tasks_models"]  # loaded by that run: read the changed models anew
    branches_alembic_reorders(project)
    add_priority_column(project)
    code = main(["generate", "add_priority"])
    err = capsys.readouterr().err
    assert "template cache: starting from a copy of the database at 0003_third\n" in err
    assert code == 0, err
    text = (project / "migrations" / "versions" / "0008_add_priority.py").read_text()
    assert "op.add_column('tasks', sa.Column('priority'" in text
    assert "audit" not in text

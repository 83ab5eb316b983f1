"""What migrate-staging says of a revision whose COMMIT fails is what the full run
(``--no-cache``) says and what it said before each revision's end read went with its COMMIT:
the same revision named, its locks measured, the same verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.projects import write_revision

# A table whose rows are checked only as their transaction commits (a deferred constraint
# trigger): a row with a small quantity fails that COMMIT.
ITEMS_UPGRADE = (
    'op.create_table("items", sa.Column("id", sa.Integer(), primary_key=True), '
    'sa.Column("qty", sa.Integer()))\n'
    '    op.execute("""CREATE FUNCTION items_check() RETURNS trigger LANGUAGE plpgsql AS $$\n'
    "BEGIN\n"
    "    IF NEW.qty IS NULL OR NEW.qty < 1000000 THEN\n"
    "        RAISE EXCEPTION 'items.qty too small: %', NEW.qty;\n"
    "    END IF;\n"
    "    RETURN NULL;\n"
    'END $$""")\n'
    '    op.execute("CREATE CONSTRAINT TRIGGER items_qty AFTER INSERT ON items DEFERRABLE "\n'
    '               "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION items_check()")'
)
ITEMS_DOWNGRADE = 'op.drop_table("items")\n    op.execute("DROP FUNCTION items_check()")'


def _run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    code = main(["migrate-staging", *arguments])
    return code, capsys.readouterr().err


def _items_models(project: Path, *tables: str) -> None:
    models = project / "tasks_models.py"
    text = models.read_text().replace(
        "from sqlalchemy import Column,", "from sqlalchemy import Integer, Column,"
    )
    models.write_text(text + "".join(tables))


def _items_with_a_failing_seed(project: Path) -> None:
    """0002 makes ``items``, whose seed row a check deferred to COMMIT refuses; 0003 follows."""
    write_revision(project, "0002", "items", "0001", ITEMS_UPGRADE, ITEMS_DOWNGRADE)
    write_revision(
        project,
        "0003",
        "after",
        "0002",
        'op.execute("CREATE TABLE after3 (id int)")',
        'op.execute("DROP TABLE after3")',
    )
    _items_models(
        project,
        'items = Table("items", metadata, Column("id", Integer, primary_key=True), '
        'Column("qty", Integer))\n',
        'after3 = Table("after3", metadata, Column("id", Integer))\n',
    )
    seeds = project / "migrations" / "seeds"
    seeds.mkdir()
    (seeds / "items.sql").write_text("INSERT INTO items (id, qty) VALUES (1, 5);\n")


@pytest.mark.parametrize("arguments", [(), ("--no-cache",)])
def test_seed_rows_that_fail_at_commit_name_the_revision_that_made_their_table(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    arguments: tuple[str, ...],
) -> None:
    """The rows a revision's new table gets are that revision's to answer for (as with
    --step-roundtrip), whether its run starts from a template or not: never 0003, which did
    not begin, nor "after" 0002 as if every revision had gone through."""
    _items_with_a_failing_seed(project)
    code, err = _run(capsys, *arguments)
    assert code == 1
    assert (
        "error: upgrade of 0002_items failed: items.qty too small: 5 (SQLSTATE P0001)\n"
        "  statement: COMMIT\n"
    ) in err, err
    assert "0003_after failed" not in err
    assert "failed after" not in err


def test_seed_rows_that_fail_at_commit_roll_back_the_revision_that_made_their_table(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the release before had it: the rows went in the transaction of the revision that made
    the table, so their failure left the database before that revision, as production would be
    left by the revision failing at its COMMIT."""
    _items_with_a_failing_seed(project)
    code, err = _run(capsys, "--no-cache")
    assert code == 1
    assert "  the database was at revision 0001_create_tasks when it stopped\n" in err, err


def test_a_revision_whose_commit_fails_still_shows_the_locks_it_took(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its deferred foreign key fails as it commits; what it locked meanwhile was measured in
    its transaction, before that COMMIT, and is shown beside its failure."""
    write_revision(
        project,
        "0002",
        "deferred",
        "0001",
        'op.execute("ALTER TABLE tasks ADD COLUMN parent_id text REFERENCES tasks (id) "\n'
        '               "DEFERRABLE INITIALLY DEFERRED")\n'
        '    op.execute("INSERT INTO tasks (id, name, status, parent_id) "\n'
        "               \"VALUES ('orphan', 'x', 'x', 'nope')\")",
        'op.execute("ALTER TABLE tasks DROP COLUMN parent_id")',
    )
    code, err = _run(capsys, "--no-cache")
    assert code == 1
    assert (
        'error: upgrade of 0002_deferred failed: insert or update on table "tasks" violates '
        'foreign key constraint "tasks_parent_id_fkey" (SQLSTATE 23503)\n  statement: COMMIT\n'
    ) in err, err
    row = next(line for line in err.splitlines() if "│ 0002_deferred" in line)
    assert "ACCESS EXCLUSIVE on tasks" in row, err

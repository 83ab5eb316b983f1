"""migrail's own rules, read from revision files as people write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrail.main import main
from testing.projects import write_revision

OWN = {"backfill-with-ddl", "empty-downgrade", "missing-message", "revision-id-too-long"}


def _own_findings(project: Path, capsys: pytest.CaptureFixture[str]) -> set[tuple[str, int | None]]:
    main(["lint", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    return {
        (f["rule"], f["line"]) for f in findings if f["rule"] in OWN and f["revision"] == "0002"
    }


@pytest.mark.parametrize(
    ("upgrade", "expected"),
    [
        (
            'op.add_column("tasks", sa.Column("p", sa.Integer()))\n'
            '    op.execute(sa.text("UPDATE tasks SET p = 0"))',
            {("backfill-with-ddl", 13), ("empty-downgrade", 16)},
        ),
        (
            'op.create_foreign_key("fk_parent", "tasks", "tasks", ["owner"], ["id"])\n'
            '    op.execute("update tasks set owner = NULL")',
            {("backfill-with-ddl", 13), ("empty-downgrade", 16)},
        ),
        (
            'op.execute("ALTER TABLE tasks ADD COLUMN p int")\n'
            "    op.execute(\"INSERT INTO tasks (id, name, status) SELECT id || 'x', name, status FROM tasks\")",
            {("backfill-with-ddl", 13), ("empty-downgrade", 16)},
        ),
        (
            'op.add_column("tasks", sa.Column("p", sa.Integer()))\n'
            "    with op.get_context().autocommit_block():\n"
            '        op.execute("SELECT 1")\n'
            '    op.execute("UPDATE tasks SET p = 0")',
            {("empty-downgrade", 18)},  # the backfill runs in a transaction of its own
        ),
        ('op.execute("UPDATE tasks SET owner = NULL")', set()),  # data only: no downgrade needed
        (
            'op.execute("ALTER TABLE tasks VALIDATE CONSTRAINT tasks_pkey")',
            set(),  # validating changes no schema
        ),
    ],
)
def test_backfills_and_downgrades(
    project: Path, capsys: pytest.CaptureFixture[str], upgrade: str, expected: set[tuple[str, int]]
) -> None:
    write_revision(project, "0002", "change", "0001", upgrade)
    assert _own_findings(project, capsys) == expected


def test_an_upgrade_without_downgrade_is_found(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project, "0002", "add_note", "0001", 'op.add_column("tasks", sa.Column("n", sa.Text()))'
    )
    assert _own_findings(project, capsys) == {("empty-downgrade", 15)}


@pytest.mark.parametrize(
    "docstring",
    [
        '"""empty message\n\nRevision ID: 0002\nRevises: 0001\nCreate Date: 2026-11-27\n"""',
        '""""""',
    ],
)
def test_a_revision_without_a_message(
    project: Path, capsys: pytest.CaptureFixture[str], docstring: str
) -> None:
    path = write_revision(project, "0002", "x", "0001", "pass")
    path.write_text(path.read_text().replace('"""x"""', docstring))
    assert _own_findings(project, capsys) == {("missing-message", 1)}


STATEMENT_RULES = {
    "truncate-table",
    "vacuum-full",
    "cluster-table",
    "lock-table",
    "unbatched-write",
    "enum-value-in-transaction",
}


def _statement_findings(capsys: pytest.CaptureFixture[str]) -> set[tuple[str, int | None]]:
    main(["lint", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    return {(f["rule"], f["line"]) for f in findings if f["rule"] in STATEMENT_RULES}


AUTOCOMMIT = "with op.get_context().autocommit_block():\n        "


@pytest.mark.parametrize(
    ("upgrade", "expected"),
    [
        ('op.execute("TRUNCATE tasks")', {("truncate-table", 12)}),
        ('op.execute("truncate table only tasks, t2 cascade")', {("truncate-table", 12)}),
        (AUTOCOMMIT + 'op.execute("VACUUM FULL tasks")', {("vacuum-full", 13)}),
        (AUTOCOMMIT + 'op.execute("VACUUM (FULL, VERBOSE)")', {("vacuum-full", 13)}),
        (AUTOCOMMIT + 'op.execute("VACUUM (ANALYZE) tasks")', set()),
        ('op.execute("CLUSTER tasks USING tasks_pkey")', {("cluster-table", 12)}),
        ('op.execute("LOCK TABLE tasks")', {("lock-table", 12)}),
        ('op.execute("LOCK tasks IN SHARE ROW EXCLUSIVE MODE NOWAIT")', {("lock-table", 12)}),
        ('op.execute("LOCK TABLE tasks IN ROW EXCLUSIVE MODE")', set()),  # writers go on
        ('op.execute("SELECT pg_advisory_xact_lock(1)")', set()),
        ('op.execute("UPDATE tasks SET owner = lower(owner)")', {("unbatched-write", 12)}),
        ('op.execute(sa.text("DELETE FROM public.tasks"))', {("unbatched-write", 12)}),
        (
            "op.execute(\"UPDATE tasks SET owner = (SELECT min(id) FROM tasks t WHERE t.id > '')\")",
            {("unbatched-write", 12)},  # the WHERE is the subquery's
        ),
        ("op.execute(\"UPDATE tasks SET owner = NULL WHERE owner = ''\")", set()),
        ('op.execute("DELETE FROM tasks WHERE id IN (SELECT id FROM tasks LIMIT 100)")', set()),
        ("op.execute(\"SELECT 'TRUNCATE tasks; DELETE FROM tasks'\")", set()),  # only a string
        (
            'op.create_table("t2", sa.Column("id", sa.Integer(), primary_key=True))\n'
            '    op.execute("INSERT INTO t2 SELECT 1")\n'
            '    op.execute("UPDATE t2 SET id = id + 1")\n'
            '    op.execute("LOCK TABLE t2")\n'
            '    op.execute("TRUNCATE t2")',
            set(),  # a table of the revision's own
        ),
    ],
)
def test_what_squawk_lets_through_is_found_in_the_sql(
    project: Path, capsys: pytest.CaptureFixture[str], upgrade: str, expected: set[tuple[str, int]]
) -> None:
    write_revision(project, "0002", "change", "0001", upgrade)
    assert _statement_findings(capsys) == expected


ENUM_VALUE = "op.execute(\"ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok'\")"


@pytest.mark.parametrize(
    ("pg_version", "upgrade", "expected"),
    [
        ("11", ENUM_VALUE, {("enum-value-in-transaction", 12)}),
        ("9.6", ENUM_VALUE, {("enum-value-in-transaction", 12)}),
        ("11", AUTOCOMMIT + ENUM_VALUE, set()),
        ("12", ENUM_VALUE, set()),
        (None, ENUM_VALUE, set()),  # production's version unknown: not assumed old
    ],
)
def test_an_enum_value_added_in_a_transaction_is_found_for_postgresql_before_12(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    pg_version: str | None,
    upgrade: str,
    expected: set[tuple[str, int]],
) -> None:
    if pg_version is not None:
        with (project / "pyproject.toml").open("a") as pyproject:
            pyproject.write(f'\n[tool.migrail.lint]\npg_version = "{pg_version}"\n')
    write_revision(project, "0002", "mood", "0001", upgrade, extra="irreversible = 'enum'")
    assert _statement_findings(capsys) == expected


def test_a_statement_rule_is_suppressed_with_a_reason(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "reset",
        "0001",
        "# migrail: allow truncate-table -- tasks holds only a cache since 4.2\n"
        '    op.execute("TRUNCATE tasks")',
    )
    assert main(["lint", "--format", "json"]) == 0
    rules = {f["rule"] for f in json.loads(capsys.readouterr().out)}
    assert rules == {"missing-sql-file"}


def test_a_revision_id_longer_than_alembic_version_holds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """32 characters fit (a finding there would be wrong); 33 do not."""
    write_revision(project, "0002_add_user_roles_and_perms_ok", "fits", "0001", "pass")
    long = "0003_add_user_roles_and_permissions"
    write_revision(project, long, "long", "0002_add_user_roles_and_perms_ok", "pass")
    main(["lint", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    found = [(f["rule"], f["revision"], f["line"]) for f in findings if f["rule"] in OWN]
    assert found == [("revision-id-too-long", long, 5)]

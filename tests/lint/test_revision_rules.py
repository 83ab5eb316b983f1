"""migrail's own rules, read from revision files as people write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrail.main import main
from testing.projects import write_revision

OWN = {"backfill-with-ddl", "empty-downgrade", "missing-message"}


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

"""From a finding's line of rendered SQL back to the ``op.`` call that wrote it: the kind of
statement first, then the names it shares, and between calls that score alike, the first."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from migrail.lint.sourcemap import locate, op_calls, statement_at
from migrail.main import main
from testing.projects import write_revision

UPGRADE = """
def upgrade():
    op.add_column("tasks", sa.Column("title", sa.Text()))
    op.alter_column("tasks", "title", type_=sa.String(20))
    op.alter_column("tasks", "title", nullable=True)
    op.execute("UPDATE tasks SET title = 'x'")
"""


def _calls() -> list[tuple[str, int]]:
    return [(call.name, call.line) for call in op_calls(ast.parse(UPGRADE))]


def test_calls_are_read_in_source_order_with_their_lines() -> None:
    assert _calls() == [("add_column", 3), ("alter_column", 4), ("alter_column", 5), ("execute", 6)]


@pytest.mark.parametrize(
    ("statement", "line"),
    [
        # The kind decides between calls that share the same names.
        ("ALTER TABLE tasks ADD COLUMN title TEXT;", 3),
        # Two calls of the kind, with the same names: the first one in the file.
        ("ALTER TABLE tasks ALTER COLUMN title TYPE VARCHAR(20);", 4),
        ("ALTER TABLE tasks ALTER COLUMN title DROP NOT NULL;", 4),
        # An op.execute whose SQL is the statement wins outright.
        ("UPDATE tasks SET title = 'x';", 6),
        # Nothing in common with any call.
        ("CREATE TABLE audit (id INTEGER);", None),
    ],
)
def test_a_statement_maps_to_the_call_that_most_likely_wrote_it(
    statement: str, line: int | None
) -> None:
    assert locate(statement, op_calls(ast.parse(UPGRADE))) == line


def test_the_statement_at_a_line_spans_its_lines_and_skips_alembics_comment() -> None:
    sql = (
        "-- Running upgrade 0001 -> 0002\n\n"
        "ALTER TABLE tasks\n    ALTER COLUMN title TYPE VARCHAR(20);\n\n"
        "UPDATE tasks SET title = 'x';\n"
    )
    assert statement_at(sql, 4) == "ALTER TABLE tasks\n    ALTER COLUMN title TYPE VARCHAR(20);"
    assert statement_at(sql, 6) == "UPDATE tasks SET title = 'x';"


def test_a_finding_points_at_the_first_of_two_calls_alike(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The type change is written by the first ``alter_column``; the second, with the same table
    and column, only makes it nullable. Both score alike, so the finding takes the earlier."""
    path = write_revision(
        project,
        "0002",
        "shorter_title",
        "0001",
        'op.alter_column("tasks", "title", type_=sa.String(20))\n'
        '    op.alter_column("tasks", "title", nullable=True)',
    )
    main(["lint", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    [finding] = [f for f in findings if f["rule"] == "changing-column-type"]
    lines = path.read_text().splitlines()
    assert lines[finding["line"] - 1] == (
        '    op.alter_column("tasks", "title", type_=sa.String(20))'
    )

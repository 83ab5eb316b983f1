"""Where a ``# migrail: allow`` comment applies."""

from __future__ import annotations

import ast

from migrail.lint.suppressions import read_suppressions


def _covers(source: str) -> list[tuple[tuple[str, ...], str, int | None]]:
    return [(s.rules, s.reason, s.covers) for s in read_suppressions(source, ast.parse(source))]


def test_a_comment_of_its_own_covers_the_next_line_of_code() -> None:
    source = (
        "def upgrade():\n"
        '    op.add_column("t", sa.Column("x", sa.Text()))\n'
        "    # migrail: allow ban-drop-column, renaming-column -- gone since 4.2\n"
        "\n"
        '    op.drop_column("t", "y")\n'
    )
    assert _covers(source) == [(("ban-drop-column", "renaming-column"), "gone since 4.2", 5)]


def test_a_trailing_comment_covers_the_call_it_ends() -> None:
    source = (
        "def upgrade():\n"
        "    op.alter_column(\n"
        '        "t", "x", nullable=False\n'
        "    )  # migrail: allow adding-not-nullable-field -- validated check\n"
    )
    assert _covers(source) == [(("adding-not-nullable-field",), "validated check", 2)]


def test_above_def_upgrade_covers_the_whole_revision_even_after_a_helper() -> None:
    source = (
        "def helper():\n"
        "    return 1\n"
        "\n"
        "# migrail: allow ban-drop-column -- the whole revision drops legacy columns\n"
        "def upgrade():\n"
        '    op.drop_column("t", "y")\n'
    )
    assert _covers(source) == [
        (("ban-drop-column",), "the whole revision drops legacy columns", None)
    ]


def test_batch_operations_are_covered_too() -> None:
    source = (
        "def upgrade():\n"
        '    with op.batch_alter_table("t") as batch:\n'
        "        # migrail: allow ban-drop-column -- unused\n"
        '        batch.drop_column("y")\n'
    )
    assert _covers(source) == [(("ban-drop-column",), "unused", 4)]


def test_a_suppression_without_reason_is_read_with_an_empty_reason() -> None:
    assert _covers("def upgrade():\n    op.drop_table('t')  # migrail: allow ban-drop-table\n") == [
        (("ban-drop-table",), "", 2)
    ]

"""A batch converted a column at a time: repeated values converted once, faults still found."""

from __future__ import annotations

from migrail.sqlite_import.catalog import TargetColumn
from migrail.sqlite_import.conversions import conversion
from migrail.sqlite_import.rows import convert_rows
from migrail.sqlite_import.source import SourceColumn

ID = (
    SourceColumn("id", "INTEGER", True, True),
    TargetColumn("id", "text", "text", True, False, False),
)
DOC = (
    SourceColumn("doc", "TEXT", False, False),
    TargetColumn("doc", "jsonb", "jsonb", False, False, False),
)
CONVERSIONS = [conversion(source, target, None, None) for source, target in (ID, DOC)]


def test_a_repeated_document_is_printed_as_jsonb_once_per_batch_and_alike() -> None:
    rows: list[tuple[object, ...]] = [(i, '{"bb": 1, "a": [1.50]}') for i in range(6)]
    rows += [(6, None), (7, '{"a":1}')]
    good, originals, refused = convert_rows(rows, ["id", "doc"], CONVERSIONS)
    assert [list(row) for row in good] == [
        *([str(i), '{"a": [1.50], "bb": 1}'] for i in range(6)),
        ["6", None],
        ["7", '{"a": 1}'],
    ]
    assert originals == rows
    assert refused == []


def test_a_fault_among_repeated_values_is_found_and_said() -> None:
    rows: list[tuple[object, ...]] = [(i, "[1, 2]") for i in range(5)] + [(5, "[1,"), ("6", "[]")]
    good, _, refused = convert_rows(rows, ["id", "doc"], CONVERSIONS)
    assert [list(row) for row in good] == [[str(i), "[1, 2]"] for i in range(5)]
    assert [(row[0], column) for row, column, _ in refused] == [(5, "doc"), ("6", "id")]
    assert refused[0][2].startswith("not valid JSON for jsonb: ")
    assert refused[1][2] == "text '6' in a column declared INTEGER (SQLite's loose typing)"

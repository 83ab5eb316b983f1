"""What matching says before anything is written, on mappings a hurried user writes."""

from __future__ import annotations

from migrail.sqlite_import.catalog import TargetColumn, TargetTable
from migrail.sqlite_import.mapping import ImportMap, TableMap
from migrail.sqlite_import.matching import match
from migrail.sqlite_import.source import SourceColumn, SourceTable

USERS = SourceTable(
    "users",
    (
        SourceColumn("id", "INTEGER", False, True),
        SourceColumn("email", "TEXT", True, False),
        SourceColumn("login", "TEXT", False, False),
        SourceColumn("created_at", "DATETIME", True, False),
    ),
    (),
)
TARGET = TargetTable(
    "public",
    "users",
    (
        TargetColumn("id", "bigint", "int8", True, True, False),
        TargetColumn("email", "text", "text", True, False, False),
        TargetColumn("created_at", "timestamptz", "timestamptz", True, False, False),
    ),
    (),
)


def test_two_sqlite_columns_renamed_into_one_target_column_is_a_problem() -> None:
    mapping = ImportMap(tables={"users": TableMap("users", rename={"login": "email"})})
    found = match([USERS], {"users": TARGET}, mapping)
    assert (
        "users.login: users.email is loaded from users.email already; rename or drop one"
        " of them ([tables.users])" in found.problems
    )


def test_a_column_with_a_problem_is_not_also_reported_as_missing_from_the_file() -> None:
    mapping = ImportMap(tables={"users": TableMap("users", drop=frozenset({"login"}))})
    found = match([USERS], {"users": TARGET}, mapping)
    assert len(found.problems) == 1
    assert found.problems[0].startswith("users.created_at: naive date-times need the zone")
    assert not any("created_at" in note for plan in found.tables for note in plan.notes)


def test_a_file_without_tables_is_a_problem_not_an_empty_import() -> None:
    found = match([], {"users": TARGET}, ImportMap())
    assert found.problems == [
        "the SQLite file has no table to import (skipped ones aside); check the path in the URL"
    ]


def test_hints_name_tables_and_columns_as_toml_keys_that_can_be_pasted() -> None:
    import tomllib

    odd = SourceTable("Order Items", (SourceColumn('say "hi"', "TEXT", False, False),), ())
    target = TargetTable("public", "Order Items", (), ())
    found = match([odd], {"Order Items": target}, ImportMap())
    assert found.problems == [
        'Order Items.say "hi": Order Items.say "hi" does not exist; rename it'
        ' ([tables."Order Items"] rename = {"say \\"hi\\"" = ...}) or drop it (drop = [...])'
    ]
    pasted = '[tables."Order Items"]\nrename = {"say \\"hi\\"" = "greeting"}\n'
    assert tomllib.loads(pasted)["tables"]["Order Items"]["rename"] == {'say "hi"': "greeting"}


def test_round_is_for_numeric_columns_with_a_scale_only() -> None:
    prices = SourceTable(
        "prices",
        (SourceColumn("amount", "REAL", False, False), SourceColumn("label", "TEXT", False, False)),
        (),
    )
    target = TargetTable(
        "public",
        "prices",
        (
            TargetColumn("amount", "numeric(6,2)", "numeric", False, False, False, None, 2, 6),
            TargetColumn("label", "text", "text", False, False, False),
        ),
        (),
    )
    rounded = TableMap("prices", convert={"amount": "round"})
    assert match([prices], {"prices": target}, ImportMap(tables={"prices": rounded})).problems == []
    misplaced = TableMap("prices", convert={"label": "round"})
    assert match(
        [prices], {"prices": target}, ImportMap(tables={"prices": misplaced})
    ).problems == ["prices.label: convert = 'round' is for numeric(p, s) columns, not text"]

"""Each conversion on values as SQLite really stores them: written by SQLite's own functions
(CURRENT_TIMESTAMP, strftime, julianday, json) into a real file and read back."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from migrail.sqlite_import.catalog import TargetColumn
from migrail.sqlite_import.conversions import Rejected, conversion
from migrail.sqlite_import.jsonb import jsonb_text
from migrail.sqlite_import.source import open_read_only, read_tables
from migrail.sqlite_import.verify import rendering
from testing.sqlite import sqlite_file, stored

PARIS = ZoneInfo("Europe/Paris")


def _column(
    name: str, base: str, *, not_null: bool = False, length: int | None = None
) -> TargetColumn:
    return TargetColumn(name, base, base, not_null, False, False, length)


def _converted(
    path: Path, table: str, column: str, target: TargetColumn, reading: str | None = None
) -> list[object]:
    """Every value of ``table.column`` converted for ``target``; a rejected one as its reason."""
    connection = open_read_only(path)
    source = next(t for t in read_tables(connection) if t.name == table).column(column)
    convert = conversion(source, target, reading, PARIS).convert
    found: list[object] = []
    for (value,) in connection.execute(f'SELECT "{column}" FROM "{table}" ORDER BY rowid'):
        try:
            found.append(convert(value))
        except Rejected as rejected:
            found.append(f"rejected: {rejected.reason}")
    connection.close()
    return found


def test_integer_zero_and_one_become_booleans_and_anything_else_is_rejected(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (done BOOLEAN);",
        {"t": [(0,), (1,), (True,), (2,), ("yes",), (None,)]},
    )
    assert _converted(path, "t", "done", _column("done", "bool")) == [
        False,
        True,
        True,
        "rejected: integer 2 where a boolean 0 or 1 was expected",
        "rejected: text 'yes' where a boolean 0 or 1 was expected",
        None,
    ]


def test_datetime_text_is_read_as_iso_in_the_stated_zone(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "a.db", "CREATE TABLE t (at DATETIME DEFAULT CURRENT_TIMESTAMP, n INT);"
    )
    with __import__("sqlite3").connect(path) as connection:
        connection.execute(
            "INSERT INTO t (n) VALUES (1)"
        )  # CURRENT_TIMESTAMP: 'YYYY-MM-DD HH:MM:SS'
        connection.executemany(
            "INSERT INTO t VALUES (?, 2)",
            [
                ("2024-03-01 08:30:00",),
                ("2024-03-01T08:30:00.250",),
                ("2024-07-01 08:30:00Z",),
                ("2024-03-01",),
                ("yesterday",),
            ],
        )
    now = stored(path, "SELECT at FROM t WHERE n = 1")[0][0]
    values = _converted(path, "t", "at", _column("at", "timestamptz"))
    assert values[0] == datetime.fromisoformat(str(now)).replace(tzinfo=PARIS)
    assert values[1:4] == [
        datetime(2024, 3, 1, 8, 30, tzinfo=PARIS),
        datetime(2024, 3, 1, 8, 30, 0, 250000, tzinfo=PARIS),
        datetime(2024, 7, 1, 8, 30, tzinfo=UTC),
    ]
    assert values[1].astimezone(UTC) == datetime(2024, 3, 1, 7, 30, tzinfo=UTC)  # type: ignore[union-attr]
    assert values[4:] == [
        datetime(2024, 3, 1, tzinfo=PARIS),
        "rejected: text 'yesterday' is not an ISO 8601 date and time",
    ]


def test_unix_seconds_and_julian_days_need_saying_and_then_convert_exactly(tmp_path: Path) -> None:
    path = sqlite_file(tmp_path / "a.db", "CREATE TABLE t (at DATETIME);")
    with __import__("sqlite3").connect(path) as connection:
        connection.execute("INSERT INTO t VALUES (strftime('%s', '2024-03-01 08:30:00'))")
        connection.execute("INSERT INTO t VALUES (julianday('2024-03-01 08:30:00'))")
    assert stored(path, "SELECT typeof(at) FROM t") == [("integer",), ("real",)]
    unix = _converted(path, "t", "at", _column("at", "timestamptz"), "unix-seconds")
    julian = _converted(path, "t", "at", _column("at", "timestamptz"), "julian-day")
    moment = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    assert unix[0] == moment
    assert julian[1] == moment
    assert _converted(path, "t", "at", _column("at", "timestamptz"))[0] == (
        "rejected: integer 1709281800 in a DATETIME column: say what it counts with convert = "
        '"unix-seconds", "unix-milliseconds" or "julian-day" in the mapping'
    )
    naive = _converted(path, "t", "at", _column("at", "timestamp"), "julian-day")
    assert naive[1] == datetime(2024, 3, 1, 8, 30)


def test_json_text_is_validated_for_jsonb(tmp_path: Path) -> None:
    good = '{"tags": ["a", "b"], "n": 1.50, "é": null}'
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (meta TEXT);",
        {"t": [(good,), ("{'single': 'quotes'}",), ('{"n": NaN}',), ('"\\u0000"',), (None,)]},
    )
    values = _converted(path, "t", "meta", _column("meta", "jsonb"))
    assert values[0] == '{"n": 1.50, "é": null, "tags": ["a", "b"]}'
    assert str(values[1]).startswith("rejected: not valid JSON for jsonb: Expecting property name")
    assert values[2] == "rejected: not valid JSON for jsonb: NaN is not JSON"
    assert values[3] == "rejected: not valid JSON for jsonb: \\u0000, which a jsonb cannot hold"
    assert values[4] is None
    assert _converted(path, "t", "meta", _column("meta", "json"))[:1] == [good]


def test_jsonb_is_sent_as_postgresql_prints_it() -> None:
    """Keys by length then bytes, the last of duplicates, numbers as numeric prints them (the
    same texts printed by PostgreSQL 15 by hand: '...'::jsonb::text)."""
    assert jsonb_text('{"bb": 1.50, "a": [true, null, 1E+2], "é": "x\\ny", "c": {}}') == (
        '{"a": [true, null, 100], "c": {}, "bb": 1.50, "é": "x\\ny"}'
    )
    assert jsonb_text('{"a":1,"a":2}') == '{"a": 2}'
    assert jsonb_text("[0.1, -0.0, 1e20, 3]") == "[0.1, 0.0, 100000000000000000000, 3]"
    assert (
        jsonb_text('{"zz":1, "b":{"yy":2,"x":[1.0e-3]}}')
        == '{"b": {"x": [0.0010], "yy": 2}, "zz": 1}'
    )


def test_integer_keys_become_text_blobs_become_bytea(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, logo BLOB);",
        {"t": [(7, b"\x89PNG"), (8, "not bytes")]},
    )
    assert _converted(path, "t", "id", _column("id", "text")) == ["7", "8"]
    assert _converted(path, "t", "logo", _column("logo", "bytea")) == [
        b"\x89PNG",
        "rejected: text 'not bytes' where a blob was expected",
    ]


def test_loose_typing_is_reported_never_coerced(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (n INTEGER, name TEXT NOT NULL, born DATE, code VARCHAR(3));",
        {
            "t": [
                (1, "ok", "2024-02-29", "abc"),
                ("n/a", "x", "2024-02-30", "abcd"),
                (2.5, 3, None, None),
            ]
        },
    )
    assert stored(path, "SELECT typeof(n), typeof(name) FROM t") == [
        ("integer", "text"),
        ("text", "text"),
        ("real", "text"),  # TEXT affinity stores the 3 as text: not loose
    ]
    assert _converted(path, "t", "n", _column("n", "int8")) == [
        1,
        "rejected: text 'n/a' in a column declared INTEGER (SQLite's loose typing)",
        "rejected: real 2.5 in a column declared INTEGER (SQLite's loose typing)",
    ]
    assert _converted(path, "t", "n", _column("n", "int8", not_null=True))[:1] == [1]
    assert _converted(path, "t", "born", _column("born", "date")) == [
        date(2024, 2, 29),
        "rejected: text '2024-02-30' where an ISO date was expected",
        None,
    ]
    assert _converted(path, "t", "code", _column("code", "varchar", length=3))[:2] == [
        "abc",
        "rejected: 4 characters, longer than the column's 3",
    ]


def test_uuids_as_text_or_as_16_byte_blobs(tmp_path: Path) -> None:
    import uuid

    key = uuid.UUID("6f1c2a4e-8d3b-4b8e-9a51-2f0c8e7d9b10")
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (ref);",
        {"t": [(str(key).upper(),), (key.bytes,), ("nope",)]},
    )
    assert _converted(path, "t", "ref", _column("ref", "uuid")) == [
        key,
        key,
        "rejected: text 'nope' where a UUID was expected",
    ]


def test_a_null_in_a_not_null_column_is_rejected(tmp_path: Path) -> None:
    path = sqlite_file(tmp_path / "a.db", "CREATE TABLE t (name TEXT);", {"t": [(None,)]})
    assert _converted(path, "t", "name", _column("name", "text", not_null=True)) == [
        "rejected: NULL, and name is NOT NULL"
    ]


def test_the_file_is_opened_read_only(tmp_path: Path) -> None:
    import sqlite3

    path = sqlite_file(tmp_path / "a.db", "CREATE TABLE t (n INTEGER);", {"t": [(1,)]})
    connection = open_read_only(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        connection.execute("INSERT INTO t VALUES (2)")
    connection.close()


def test_a_file_a_writer_holds_locked_is_said_to_be_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from migrail.core.errors import FatalError
    from migrail.sqlite_import import source

    path = sqlite_file(tmp_path / "a.db", "CREATE TABLE t (n INTEGER);", {"t": [(1,)]})
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO t VALUES (2)")
    monkeypatch.setattr(source, "BUSY_WAIT", 0.05)
    with pytest.raises(FatalError) as raised:
        open_read_only(path)
    writer.close()
    assert str(raised.value) == f"{path} is locked by a writer (database is locked)"
    assert raised.value.hint == "stop the application that writes to it, then import again"


def test_a_double_beyond_float4_is_rejected_for_a_real_column(tmp_path: Path) -> None:
    values = [(1.5,), (1e300,), (-1e39,), (float("inf"),), (3.4e38,)]
    path = sqlite_file(tmp_path / "a.db", "CREATE TABLE t (r REAL);", {"t": values})
    assert _converted(path, "t", "r", _column("r", "float4")) == [
        1.5,
        "rejected: 1e+300 is out of the range of real (float4)",
        "rejected: -1e+39 is out of the range of real (float4)",
        float("inf"),
        3.4e38,
    ]


def _numeric(precision: int, scale: int) -> TargetColumn:
    shape = f"numeric({precision},{scale})"
    return TargetColumn("price", shape, "numeric", False, False, False, None, scale, precision)


def test_a_number_that_numeric_p_s_would_round_or_overflow_is_rejected(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (price REAL);",
        {
            "t": [
                (1.5,),
                (7,),
                (1.005,),
                (12.3456,),
                (-0.125,),
                (12345.5,),
                (9999.99,),
                (None,),
                (9999.995,),
            ]
        },
    )
    assert _converted(path, "t", "price", _numeric(6, 2)) == [
        Decimal("1.50"),
        Decimal("7.00"),
        "rejected: 1.005 has more decimal places than price's numeric(6,2) keeps (PostgreSQL"
        ' would store 1.01); convert = "round" in the mapping accepts the rounding',
        "rejected: 12.3456 has more decimal places than price's numeric(6,2) keeps (PostgreSQL"
        ' would store 12.35); convert = "round" in the mapping accepts the rounding',
        "rejected: -0.125 has more decimal places than price's numeric(6,2) keeps (PostgreSQL"
        ' would store -0.13); convert = "round" in the mapping accepts the rounding',
        "rejected: 12345.5 is too large for numeric(6,2) (at most 4 digit(s) before the"
        " decimal point)",
        Decimal("9999.99"),
        None,
        # Too large once rounded: PostgreSQL would refuse it, so it is said so, not "rounded".
        "rejected: 9999.995 is too large for numeric(6,2) (at most 4 digit(s) before the"
        " decimal point, 10000.00 rounded)",
    ]


def test_rounding_into_numeric_p_s_is_taken_only_when_asked_and_as_postgresql_rounds(
    tmp_path: Path,
) -> None:
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (price REAL);",
        {"t": [(1.005,), (12.3456,), (-0.125,), (2.675,), (9999.994,), (9999.995,)]},
    )
    assert _converted(path, "t", "price", _numeric(6, 2), "round") == [
        Decimal("1.01"),  # half away from zero, on the decimal SQLite shows, not on the double
        Decimal("12.35"),
        Decimal("-0.13"),
        Decimal("2.68"),
        Decimal("9999.99"),
        "rejected: 9999.995 is too large for numeric(6,2) (at most 4 digit(s) before the"
        " decimal point, 10000.00 rounded)",
    ]
    with closing(open_read_only(path)) as connection:
        source = read_tables(connection)[0].column("price")
    described = conversion(source, _numeric(6, 2), "round", None).description
    assert described == "REAL -> numeric(6,2) (rounded to the scale)"


def test_the_checksum_renders_a_numeric_unrounded_so_a_rounding_server_side_shows() -> None:
    render = rendering(_numeric(6, 2)).render  # type: ignore[union-attr]
    assert render is not None
    assert render(Decimal("1.5")) == "1.50"  # PostgreSQL's text for what it stored
    assert render(Decimal("1.005")) == "1.005"  # it stored 1.01: the sums differ


@pytest.mark.parametrize("zone", [PARIS, ZoneInfo("UTC")])
def test_fractions_finer_than_a_microsecond_are_rounded_as_postgresql_rounds(
    tmp_path: Path, zone: ZoneInfo
) -> None:
    """Python keeps six digits and drops the rest; PostgreSQL rounds (half to even): the fast
    conversion and the full one agree with PostgreSQL."""
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (at DATETIME);",
        {"t": [("2020-01-02 03:04:05.1234567",), ("2020-01-02 03:04:05.9999999",)]},
    )
    with closing(open_read_only(path)) as connection:
        source = read_tables(connection)[0].column("at")
        values = [value for (value,) in connection.execute("SELECT at FROM t ORDER BY rowid")]
    made = conversion(source, _column("at", "timestamptz"), None, zone)
    expected = [
        datetime(2020, 1, 2, 3, 4, 5, 123457, tzinfo=zone),
        datetime(2020, 1, 2, 3, 4, 6, tzinfo=zone),
    ]
    for convert in (made.fast, made.convert):
        converted = []
        for value in values:
            try:
                converted.append(convert(value))
            except ValueError:  # the fast one hands such a value to the full one
                converted.append(made.convert(value))
        assert converted == expected


def test_a_local_time_a_change_of_clocks_skips_or_repeats_is_rejected(tmp_path: Path) -> None:
    """Europe/Paris: 2021-03-28 02:30 never happened, 2021-10-31 02:30 happened twice."""
    path = sqlite_file(
        tmp_path / "a.db",
        "CREATE TABLE t (at DATETIME);",
        {
            "t": [
                ("2021-03-28 02:30:00",),
                ("2021-10-31 02:30:00",),
                ("2021-10-31 02:30:00+01:00",),  # with its offset: which one is meant is said
                ("2021-10-31 03:30:00",),
            ]
        },
    )
    assert _converted(path, "t", "at", _column("at", "timestamptz")) == [
        "rejected: '2021-03-28 02:30:00' never happened in Europe/Paris (its clocks skip over it)",
        "rejected: '2021-10-31 02:30:00' happens twice in Europe/Paris (its clocks go back over "
        "it): write it with its offset",
        datetime(2021, 10, 31, 1, 30, tzinfo=UTC),
        datetime(2021, 10, 31, 3, 30, tzinfo=PARIS),
    ]
    with closing(open_read_only(path)) as connection:
        source = read_tables(connection)[0].column("at")
    fast = conversion(source, _column("at", "timestamptz"), None, PARIS).fast
    assert fast is not None
    with pytest.raises(ValueError):  # not stored as the fold-0 reading: handed to the full one
        fast("2021-10-31 02:30:00")

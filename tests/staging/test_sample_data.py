"""Sample rows for staging: every constraint of a varied schema met, or the table named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, Connection

from migrail.postgres.database import connect
from migrail.staging.sample_data import SampleData

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE SCHEMA audit;
CREATE TABLE users (
    id serial PRIMARY KEY,
    email varchar(8) NOT NULL UNIQUE,
    mood mood NOT NULL,
    age positive NOT NULL,
    score numeric(5, 2) NOT NULL CHECK (score BETWEEN 1 AND 5),
    status text NOT NULL CHECK (status IN ('active', 'banned')),
    tags text[] NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE "Odd ""Name"" x" (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "owner id" integer NOT NULL REFERENCES users (id),
    parent uuid REFERENCES "Odd ""Name"" x" (id),
    data jsonb NOT NULL,
    code char(2) NOT NULL UNIQUE
);
CREATE TABLE audit.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id integer REFERENCES users,
    at date NOT NULL,
    ip inet NOT NULL,
    flags bit(3) NOT NULL,
    seen boolean NOT NULL
);
CREATE TABLE pairs (a integer, b integer, PRIMARY KEY (a, b));
CREATE TABLE pair_children (a integer NOT NULL, b integer NOT NULL,
    FOREIGN KEY (a, b) REFERENCES pairs (a, b));
CREATE TABLE regions (id integer NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE regions_eu PARTITION OF regions FOR VALUES IN ('eu');
CREATE TABLE opaque (id integer PRIMARY KEY, secret pg_lsn NOT NULL);
"""


@pytest.fixture
def connection(database_url: URL) -> Iterator[Connection]:
    with connect(database_url) as connection:
        connection.exec_driver_sql(SCHEMA)
        connection.commit()
        yield connection


def _rows(connection: Connection, table: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {table}")]


def test_every_table_gets_rows_that_meet_its_constraints(connection: Connection) -> None:
    data = SampleData()
    data.fill(connection)
    connection.commit()
    assert data.report.rows == {
        "users": 3,
        'Odd "Name" x': 3,
        "audit.events": 3,
        "pairs": 3,
        "pair_children": 3,
        "regions": 3,
    }
    assert data.report.skipped == {"opaque": "no sample value for secret of type pg_lsn"}
    users = _rows(connection, "users ORDER BY id")
    assert len({row[1] for row in users}) == 3  # unique: one email per row
    assert all(len(row[1]) <= 8 for row in users)  # varchar(8)
    assert {row[5] for row in users} <= {"active", "banned"}
    assert [row[2] for row in users][:2] == ["sad", "sad"]  # not unique: values repeat
    owners = {row[1] for row in _rows(connection, 'public."Odd ""Name"" x"')}
    assert owners <= {row[0] for row in users}
    assert _rows(connection, "opaque") == []


def test_tables_are_filled_once_and_tables_with_rows_are_left_alone(
    connection: Connection,
) -> None:
    connection.exec_driver_sql("INSERT INTO pairs VALUES (7, 7)")
    connection.commit()
    data = SampleData()
    data.fill(connection)
    assert _rows(connection, "pairs") == [(7, 7)]  # a revision's own rows are the sample
    assert _rows(connection, "pair_children") == [(7, 7), (7, 7), (7, 7)]
    data.fill(connection)  # before the next revision: nothing new, nothing added
    assert len(_rows(connection, "users")) == 3
    connection.exec_driver_sql("CREATE TABLE later (id integer PRIMARY KEY, note text NOT NULL)")
    data.fill(connection)
    assert _rows(connection, "later") == [(1, "note 1"), (2, "note 1"), (3, "note 2")]
    assert len(_rows(connection, "users")) == 3


def test_a_parent_without_rows_leaves_a_not_null_reference_unfillable(
    connection: Connection,
) -> None:
    connection.exec_driver_sql("DROP TABLE opaque; CREATE TABLE opaque (secret pg_lsn NOT NULL)")
    connection.exec_driver_sql(
        "ALTER TABLE opaque ADD PRIMARY KEY (secret);"
        "CREATE TABLE opaque_children (secret pg_lsn NOT NULL REFERENCES opaque)"
    )
    data = SampleData()
    data.fill(connection)
    assert data.report.skipped["opaque_children"] == (
        "secret must reference a row, and the parent has none"
    )


def test_names_with_percent_signs_and_deferrable_constraints(connection: Connection) -> None:
    connection.exec_driver_sql(
        'CREATE TABLE "growth%%" ("rate%%" integer NOT NULL, note text);'
        "CREATE TABLE deferred (id integer PRIMARY KEY, user_id integer NOT NULL"
        " REFERENCES users DEFERRABLE INITIALLY DEFERRED)"
    )
    data = SampleData()
    data.fill(connection)
    connection.commit()  # nothing deferred is left to fail here
    assert data.report.rows["growth%"] == 3
    assert data.report.skipped["deferred"] == (
        "it has deferrable constraints, checked only when the revision commits "
        "(a seed file can give its rows)"
    )


def test_a_seed_file_runs_once_and_its_session_settings_do_not_outlive_it(
    connection: Connection, tmp_path: Path
) -> None:
    (tmp_path / "pairs.sql").write_text(
        "SELECT pg_catalog.set_config('search_path', '', false);\n"
        "SET lock_timeout = 0;\n"
        "INSERT INTO public.pairs VALUES (1, 2), (3, 4);\n"
    )
    (tmp_path / "ignored").mkdir()
    (tmp_path / "pair_children.sql").write_text("-- filled by a later revision\n")
    connection.exec_driver_sql("SET lock_timeout = '5s'")
    data = SampleData(tmp_path)
    data.fill(connection)
    assert data.report.seeded == {
        "pairs": str(tmp_path / "pairs.sql"),
        "pair_children": str(tmp_path / "pair_children.sql"),
    }
    assert _rows(connection, "pair_children") == []  # an empty seed: an empty table
    assert _rows(connection, "pairs ORDER BY a") == [(1, 2), (3, 4)]
    assert connection.exec_driver_sql("SHOW search_path").scalar() == '"$user", public'
    assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "5s"

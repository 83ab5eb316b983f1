"""Indexes set aside for a load into an empty table come back as they were, or stay put."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from migrail.core.urls import libpq_conninfo
from migrail.postgres.ephemeral import Server
from migrail.sqlite_import.indexes import build_again, set_aside

SCHEMA = """
CREATE TABLE teams (id bigint PRIMARY KEY, code text UNIQUE, name text, region text, note text,
    CONSTRAINT teams_name_region UNIQUE (name, region) DEFERRABLE INITIALLY DEFERRED);
CREATE INDEX teams_lower_name ON teams (lower(name)) WHERE region IS NOT NULL;
CREATE INDEX teams_note ON teams USING hash (note);
COMMENT ON INDEX teams_note IS 'kept: a comment would be lost';
CREATE TABLE members (id int PRIMARY KEY, team bigint REFERENCES teams (id));
"""
# What must come back: every index and constraint of the table, as PostgreSQL prints them.
SHAPE = """
SELECT i.relname, pg_get_indexdef(i.oid), c.conname, pg_get_constraintdef(c.oid),
       obj_description(i.oid, 'pg_class')
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
WHERE x.indrelid = 'teams'::regclass ORDER BY 1"""
TEAMS = ("public", "teams")


@pytest.fixture
def connection(pg_server: Server) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with pg_server.database() as url, psycopg.connect(libpq_conninfo(url)) as connection:
        connection.execute(SCHEMA)
        connection.commit()
        yield connection


def _copy(
    connection: psycopg.Connection[tuple[object, ...]], rows: list[tuple[object, ...]]
) -> None:
    with connection.cursor() as cursor, cursor.copy("COPY teams FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def test_indexes_set_aside_are_built_again_as_they_were(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    before = connection.execute(SHAPE).fetchall()
    aside = set_aside(connection, TEAMS)
    # Not the primary key (a foreign key references it), not the commented one.
    assert sorted(index.name for index in aside) == [
        "teams_code_key",
        "teams_lower_name",
        "teams_name_region",
    ]
    assert [row[0] for row in connection.execute(SHAPE)] == ["teams_note", "teams_pkey"]
    _copy(connection, [(1, "a", "x", "eu", None), (2, "b", "x", "us", "n")])
    build_again(connection, TEAMS, aside)
    assert connection.execute(SHAPE).fetchall() == before
    connection.commit()
    assert connection.execute(SHAPE).fetchall() == before


def test_a_duplicate_fails_the_build_as_it_would_have_failed_the_insert(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    before = connection.execute(SHAPE).fetchall()
    with pytest.raises(psycopg.errors.UniqueViolation), connection.transaction():
        aside = set_aside(connection, TEAMS)
        _copy(connection, [(1, "a", "x", "eu", None), (2, "a", "y", "eu", None)])
        build_again(connection, TEAMS, aside)
    assert connection.execute(SHAPE).fetchall() == before  # the savepoint undid the drop


def test_a_table_a_reader_holds_keeps_its_indexes(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    dsn = connection.info.dsn
    with psycopg.connect(dsn) as reader:
        reader.execute("SELECT FROM teams")  # ACCESS SHARE, held until its transaction ends
        connection.execute("SET lock_timeout = '100ms'")
        assert set_aside(connection, TEAMS) == []
    assert len(connection.execute(SHAPE).fetchall()) == 5

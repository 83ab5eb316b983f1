"""Schema facts from the catalogs: an extension is one fact, and a function's changed body is
one change, so that a step round trip's difference is as short as what was forgotten."""

from __future__ import annotations

from sqlalchemy.engine import URL

from migrail.postgres.catalog import describe_difference, schema_facts
from migrail.postgres.database import connect
from testing.postgres import run_sql


def _difference(url: URL, change: str) -> list[str]:
    with connect(url) as connection:
        before = schema_facts(connection)
        run_sql(url, change)
        return describe_difference(before, schema_facts(connection))


def test_an_extensions_functions_types_and_views_are_its_one_fact(database_url: URL) -> None:
    run_sql(database_url, "CREATE TABLE tasks (id int)")
    found = _difference(
        database_url,
        "CREATE EXTENSION citext; CREATE EXTENSION pg_stat_statements;"
        " ALTER TABLE tasks ADD COLUMN email citext;"
        " CREATE FUNCTION shout(t citext) RETURNS citext LANGUAGE sql AS 'SELECT upper(t)'",
    )
    assert found == [
        "+ column public.tasks.email citext",
        "+ extension citext",
        "+ extension pg_stat_statements",
        "+ function public.shout(t citext)",
    ]


def test_a_replaced_function_is_a_changed_definition_with_its_first_differing_line(
    database_url: URL,
) -> None:
    create = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n{}\nEND\n$$"
    run_sql(database_url, create.format("  RETURN 1;"))
    assert _difference(database_url, create.format("  RETURN 2;")) == [
        '~ function public.f(): definition changed: "RETURN 1;" became "RETURN 2;"'
    ]
    assert _difference(database_url, create.format("  PERFORM 1;\n  RETURN 2;")) == [
        '~ function public.f(): definition changed: "RETURN 2;" became "PERFORM 1;"'
    ]


def test_a_replaced_view_is_a_changed_definition(database_url: URL) -> None:
    run_sql(database_url, "CREATE TABLE tasks (id int, done bool)")
    run_sql(database_url, "CREATE VIEW open_tasks AS SELECT id FROM tasks WHERE NOT done")
    assert _difference(
        database_url, "CREATE OR REPLACE VIEW open_tasks AS SELECT id FROM tasks WHERE done"
    ) == [
        '~ view public.open_tasks: definition changed: "WHERE (NOT tasks.done);" became '
        '"WHERE tasks.done;"'
    ]


def test_defaults_and_generated_columns_are_shown_whole(database_url: URL) -> None:
    """A default is shown without its table (it names no column), a generated column's
    expression with it; and no fact is cut at a name's 63 bytes."""
    run_sql(database_url, "CREATE TABLE tasks (id int, name text)")
    assert _difference(
        database_url,
        "ALTER TABLE tasks ALTER COLUMN name SET DEFAULT 'x' || now()::text;"
        " ALTER TABLE tasks ADD COLUMN doubled int GENERATED ALWAYS AS (id * 2) STORED;"
        " CREATE UNIQUE INDEX tasks_name_key_with_a_long_name ON tasks (name)",
    ) == [
        "+ column public.tasks.doubled integer DEFAULT (id * 2) GENERATED STORED",
        "+ column public.tasks.name text DEFAULT ('x'::text || (now())::text)",
        "+ index CREATE UNIQUE INDEX tasks_name_key_with_a_long_name ON public.tasks "
        "USING btree (name)",
        "- column public.tasks.name text",
    ]


def test_the_sessions_function_reads_what_the_query_reads(database_url: URL) -> None:
    """``prepare`` makes the catalog query a function of the session (its plans kept): on a
    schema with a bit of everything, it reads the same facts and definitions as the text."""
    from migrail.postgres import catalog

    run_sql(
        database_url,
        "CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM ('ok', 'sad');"
        "CREATE TABLE app.t (id int PRIMARY KEY, m app.mood DEFAULT 'ok', n text NOT NULL,"
        " CHECK (n <> ''));"
        "CREATE INDEX ON app.t (n); COMMENT ON COLUMN app.t.n IS 'a note';"
        "CREATE VIEW app.v AS SELECT id FROM app.t;"
        "CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
        "CREATE SEQUENCE app.s; CREATE DOMAIN app.d AS int CHECK (VALUE > 0);",
    )
    with connect(database_url) as connection:
        as_text = catalog.schema_facts(connection)
        catalog.prepare(connection)
        driver = connection.connection.dbapi_connection
        assert catalog._PREPARED.get(driver) is True
        as_function = catalog.schema_facts(connection)
    assert as_function == as_text
    assert any(fact.startswith("function app.f") for fact in as_text.facts), as_text.facts

"""A database's schema as a set of comparable facts, read from PostgreSQL's catalogs.

Each fact is one line (``column tasks.priority integer NOT NULL DEFAULT 0``), so two schemas
compare as two sets, and a difference reads as the lines only one side has. Used by the
step-by-step round trip: the schema before a revision's upgrade must equal the schema after its
downgrade. Alembic's own bookkeeping table is left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND left(n.nspname, 3) <> 'pg_'"
)
_SKIP = "'alembic_version'"

_QUERIES = {
    "table": f"""
        SELECT n.nspname || '.' || c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm') AND {_USER_SCHEMAS} AND c.relname <> {_SKIP}""",
    "column": f"""
        SELECT n.nspname || '.' || c.relname || '.' || a.attname || ' '
            || format_type(a.atttypid, a.atttypmod)
            || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
            || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
          AND {_USER_SCHEMAS} AND c.relname <> {_SKIP}""",
    "constraint": f"""
        SELECT n.nspname || '.' || c.relname || ' ' || k.conname || ': '
            || pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS} AND c.relname <> {_SKIP}""",
    "index": f"""
        SELECT indexdef FROM pg_indexes n_
        JOIN pg_namespace n ON n.nspname = n_.schemaname
        WHERE {_USER_SCHEMAS} AND n_.tablename <> {_SKIP}""",
    "enum": f"""
        SELECT n.nspname || '.' || t.typname || ' ('
            || string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) || ')'
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {_USER_SCHEMAS} GROUP BY n.nspname, t.typname""",
    "sequence": f"""
        SELECT n.nspname || '.' || c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND {_USER_SCHEMAS}""",
    "trigger": f"""
        SELECT pg_get_triggerdef(g.oid) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT g.tgisinternal AND {_USER_SCHEMAS}""",
}


def schema_facts(connection: Connection) -> frozenset[str]:
    """Every table, column (type, nullability, default), constraint, index, enum, sequence and
    trigger outside PostgreSQL's own schemas, one line each, prefixed by its kind."""
    facts = set()
    for kind, query in _QUERIES.items():
        for (fact,) in connection.exec_driver_sql(query):
            facts.add(f"{kind} {fact}")
    connection.rollback()
    return frozenset(facts)


def describe_difference(before: frozenset[str], after: frozenset[str]) -> list[str]:
    """What the downgrade left behind (``+``) and what it removed that was there before (``-``)."""
    return [f"+ {fact}" for fact in sorted(after - before)] + [
        f"- {fact}" for fact in sorted(before - after)
    ]

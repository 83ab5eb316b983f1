"""What the studio shows of a schema: tables with their estimates and sizes, columns,
constraints, indexes and foreign keys, read from PostgreSQL's catalogs in a few queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrail.postgres.catalog import USER_SCHEMAS

__all__ = ["USER_SCHEMAS", "Column", "ForeignKey", "TableInfo"]

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_TABLES = f"""
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname,
        c.relkind::text, c.reltuples::bigint,
        pg_total_relation_size(c.oid), obj_description(c.oid, 'pg_class')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition AND {USER_SCHEMAS}
        {{where}}
    ORDER BY n.nspname = 'public' DESC, n.nspname, c.relname"""

_COLUMNS = """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.attnotnull,
        pg_get_expr(d.adbin, d.adrelid),
        a.attidentity <> '' OR a.attgenerated <> '' OR d.adbin IS NOT NULL,
        coalesce(array_position(k.conkey, a.attnum), 0)
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_constraint k ON k.conrelid = a.attrelid AND k.contype = 'p'
    WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum"""

_CONSTRAINTS = """
    SELECT conname, contype::text, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE conrelid = to_regclass(%(table)s) ORDER BY contype <> 'p', conname"""

_INDEXES = """
    SELECT c.relname, pg_get_indexdef(x.indexrelid), pg_relation_size(x.indexrelid), x.indisvalid
    FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
    WHERE x.indrelid = to_regclass(%(table)s) ORDER BY c.relname"""

# Every foreign key between user tables, with the columns on each side, for the diagram.
_FOREIGN_KEYS = f"""
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
        quote_ident(fn.nspname) || '.' || quote_ident(f.relname),
        k.conname,
        ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = k.conrelid
            AND attnum = ANY (k.conkey) ORDER BY array_position(k.conkey, attnum)),
        ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = k.confrelid
            AND attnum = ANY (k.confkey) ORDER BY array_position(k.confkey, attnum))
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
    WHERE k.contype = 'f' AND {USER_SCHEMAS} ORDER BY 1, 3"""

KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view"}


@dataclass(frozen=True)
class TableInfo:
    """One relation in the list: ``estimate`` is the planner's (-1: never analyzed);
    ``qualified`` is its name as SQL spells it (``public."Order"``), its id in URLs."""

    qualified: str
    schema: str
    name: str
    kind: str
    estimate: int
    size: int
    comment: str | None

    @property
    def kind_name(self) -> str:
        return KINDS.get(self.kind, "foreign table")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type spells it: varchar(20), numeric(10,2)
    base: str  # the type's own name: int4, jsonb, text
    not_null: bool
    default: str | None
    has_default: bool  # a default, an identity or a generated column: may be left out of INSERT
    key_position: int  # its place in the primary key, 0 if not in it


@dataclass(frozen=True)
class ForeignKey:
    table: str
    references: str
    name: str
    columns: tuple[str, ...]
    referenced: tuple[str, ...]


def tables(connection: Connection) -> list[TableInfo]:
    """Every table, view and materialized view outside PostgreSQL's own schemas."""
    return [TableInfo(*row) for row in connection.exec_driver_sql(_TABLES.format(where=""))]


def find_table(connection: Connection, qualified: str) -> TableInfo | None:
    """The table a URL names (``schema.name`` as ``TableInfo.qualified`` spells it)."""
    where = "AND c.oid = to_regclass(%(table)s)"
    found = connection.exec_driver_sql(_TABLES.format(where=where), {"table": qualified}).first()
    return TableInfo(*found) if found is not None and found[0] == qualified else None


def columns(connection: Connection, table: str) -> list[Column]:
    return [Column(*row) for row in connection.exec_driver_sql(_COLUMNS, {"table": table})]


def constraints(connection: Connection, table: str) -> list[tuple[str, str, str]]:
    """Each constraint's name, kind letter (p, f, u, c, x) and definition as PostgreSQL says."""
    return [tuple(row) for row in connection.exec_driver_sql(_CONSTRAINTS, {"table": table})]


def indexes(connection: Connection, table: str) -> list[tuple[str, str, int, bool]]:
    """Each index's name, definition, size and validity (a failed concurrent build is not)."""
    return [tuple(row) for row in connection.exec_driver_sql(_INDEXES, {"table": table})]


def foreign_keys(connection: Connection) -> list[ForeignKey]:
    return [
        ForeignKey(source, target, name, tuple(cols), tuple(refs))
        for source, target, name, cols, refs in connection.exec_driver_sql(_FOREIGN_KEYS)
    ]

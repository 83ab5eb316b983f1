"""The target's tables as the migrations built them, read from PostgreSQL's catalog: what the
SQLite tables are matched against, and what each column's conversion is chosen by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

# Tables of the migrations' own bookkeeping, never import targets.
_SKIP = ("alembic_version",)


@dataclass(frozen=True)
class TargetColumn:
    """A column of a target table. ``base`` is the type's name with domains resolved (``int4``,
    ``timestamptz``); ``length`` the n of varchar(n)/char(n); ``precision`` and ``scale`` the
    p and s of numeric(p, s) (None for a numeric without them, which holds any value)."""

    name: str
    type: str
    base: str
    not_null: bool
    has_default: bool
    generated: bool
    length: int | None = None
    scale: int | None = None
    precision: int | None = None


@dataclass(frozen=True)
class TargetTable:
    """A table of the target, schema-qualified as ``qualified``, with the tables it references."""

    schema: str
    name: str
    columns: tuple[TargetColumn, ...]
    parents: tuple[str, ...]

    @property
    def qualified(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def column(self, name: str) -> TargetColumn | None:
        return next((column for column in self.columns if column.name == name), None)


_TABLES = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND pg_table_is_visible(c.oid) AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND NOT (c.relname = ANY(%s))
ORDER BY c.relname"""

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typtype = 'd' THEN b.typname ELSE t.typname END,
       a.attnotnull, a.atthasdef OR a.attidentity <> '', a.attgenerated <> '',
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type b ON b.oid = t.typbasetype
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"""

_PARENTS = """
SELECT DISTINCT p.relname FROM pg_constraint k JOIN pg_class p ON p.oid = k.confrelid
WHERE k.contype = 'f' AND k.conrelid = %s AND k.confrelid <> k.conrelid ORDER BY 1"""


def read_target(connection: psycopg.Connection[tuple[object, ...]]) -> dict[str, TargetTable]:
    """The tables visible on the search path, by name."""
    tables = {}
    for oid, schema, name in connection.execute(_TABLES, (list(_SKIP),)).fetchall():
        columns = tuple(_column(*row) for row in connection.execute(_COLUMNS, (oid,)).fetchall())
        parents = tuple(str(row[0]) for row in connection.execute(_PARENTS, (oid,)).fetchall())
        tables[str(name)] = TargetTable(str(schema), str(name), columns, parents)
    return tables


def _column(
    name: object,
    shown: object,
    base: object,
    not_null: object,
    default: object,
    generated: object,
    typmod: object,
) -> TargetColumn:
    modifier = int(str(typmod))
    length = scale = precision = None
    if base in ("varchar", "bpchar") and modifier > 4:
        length = modifier - 4
    if base == "numeric" and modifier > 4:
        # As PostgreSQL packs them: p in the high 16 bits, s (-1000 to 1000 since 15) in 11.
        precision = ((modifier - 4) >> 16) & 0xFFFF
        scale = (((modifier - 4) & 0x7FF) ^ 1024) - 1024
    return TargetColumn(
        str(name),
        str(shown),
        str(base),
        bool(not_null),
        bool(default),
        bool(generated),
        length,
        scale,
        precision,
    )

"""Sample rows in the staging database's tables, so that revisions meet data as in production.

Most migrations that break production pass on empty tables: a NOT NULL column without a default,
a unique index over duplicates, a cast that fails on real values. Before each revision, every
table that has not been given rows yet gets a few, generated from its columns: primary keys and
unique columns get distinct values, foreign keys take their parent's rows (parents are filled
first), NOT NULL columns get a value, CHECK constraints are met by trying the literals they name,
enums take their labels, and other columns repeat a value across rows, as real data does. A table
no row can be made for is skipped, and the reason kept. ``migrations/seeds/<table>.sql`` (or
``<schema>.<table>.sql``), where it exists, fills its table instead: it runs once, right after
the revision that creates the table, so it names only the columns the table has then.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.postgres.catalog import USER_SCHEMAS

if TYPE_CHECKING:
    from psycopg import sql
    from sqlalchemy.engine import Connection

SAMPLE_ROWS = 3
_ATTEMPTS = 8  # per row: other values after a unique or CHECK violation
_RETRY = ("23505", "23514")  # unique_violation, check_violation: other values may pass

_TABLES = f"""
    SELECT c.oid::bigint, n.nspname, c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {USER_SCHEMAS}
      AND n.nspname <> 'migrail' AND c.relname <> 'alembic_version'
      AND NOT EXISTS (SELECT FROM pg_depend d  -- an extension's own tables are not the app's
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e')
    ORDER BY c.oid"""

# Per column: its type's base (through a domain), length, enum labels, the CHECK constraints on
# it (the table's and its domain's; partition bounds count as checks), and whether a unique index
# covers it.
_COLUMNS = """
    SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
        a.attidentity <> '' OR a.attgenerated <> '', pg_get_expr(d.adbin, d.adrelid),
        b.typname, b.typcategory,
        CASE WHEN b.typname IN ('varchar', 'bpchar') AND m.typmod > 4 THEN m.typmod - 4
             WHEN b.typname IN ('bit', 'varbit') AND m.typmod > 0 THEN m.typmod END,
        ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = b.oid
              ORDER BY e.enumsortorder),
        checks.names, checks.definitions,
        EXISTS(SELECT FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique
               AND a.attnum = ANY(i.indkey::int2[]))
    FROM pg_attribute a
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    CROSS JOIN LATERAL (SELECT CASE WHEN t.typtype = 'd' THEN t.typtypmod
                                    ELSE a.atttypmod END AS typmod) m
    CROSS JOIN LATERAL (
        SELECT COALESCE(array_agg(x.name), '{}'), COALESCE(array_agg(x.definition), '{}') FROM (
            SELECT k.conname::text, pg_get_constraintdef(k.oid) FROM pg_constraint k
            WHERE k.contype = 'c' AND (k.contypid = t.oid
                OR (k.conrelid = a.attrelid AND a.attnum = ANY(k.conkey)))
            UNION ALL  -- a partition key column must fall in a partition: its bounds name values
            SELECT '', pg_get_expr(p.relpartbound, p.oid) FROM pg_inherits i
            JOIN pg_class p ON p.oid = i.inhrelid
            JOIN pg_partitioned_table pt ON pt.partrelid = i.inhparent
            WHERE i.inhparent = a.attrelid AND a.attnum = ANY(pt.partattrs::int2[])
        ) x(name, definition)) checks(names, definitions)
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum"""

_FOREIGN_KEYS = """
    SELECT k.conkey::int[], k.confrelid::bigint, ARRAY(
        SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(num, pos)
        JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num ORDER BY u.pos)
    FROM pg_constraint k WHERE k.conrelid = %s AND k.contype = 'f'"""

_DEFERRABLE = "SELECT EXISTS (SELECT FROM pg_constraint WHERE conrelid = %s AND condeferrable)"

# A default that gives each row its own value keeps a unique column unique.
_DISTINCT_DEFAULT = re.compile(r"nextval\(|uuid|random|clock_timestamp", re.IGNORECASE)
_LITERAL = re.compile(r"'((?:[^']|'')*)'|(?<![\w.])(-?\d+(?:\.\d+)?)(?![\w.])")


@dataclass(frozen=True)
class Table:
    oid: int
    schema: str
    name: str

    @property
    def label(self) -> str:
        """``tasks``, or ``audit.events`` outside the public schema."""
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    @property
    def identifier(self) -> sql.SQL:
        return identifier(self.schema, self.name)


@dataclass(frozen=True)
class Column:
    """What a value for one column must be."""

    number: int
    name: str
    type: str
    not_null: bool
    automatic: bool  # identity or generated: PostgreSQL fills it
    default: str | None
    base_type: str
    category: str  # pg_type.typcategory: N numeric, S string, A array...
    length: int | None
    labels: Sequence[str]
    check_names: Sequence[str]
    checks: Sequence[str]
    unique: bool

    def uses_default(self) -> bool:
        """Leave it to PostgreSQL: when it has a default, unless rows would then collide."""
        if self.automatic:
            return True
        if self.default is None:
            return False
        return not self.unique or bool(_DISTINCT_DEFAULT.search(self.default))

    def candidates(self) -> list[str]:
        """Its enum labels, or the values its CHECK constraints name: quoted ones, and for a
        number column each number and its neighbours (so that ``> 0`` and ``<= 5`` are met)."""
        if self.labels:
            return list(self.labels)
        found: list[str] = []
        for check in self.checks:
            for text, number in _LITERAL.findall(check):
                if number and self.category == "N":
                    value = float(number) if "." in number else int(number)
                    found += [str(value + 1), str(value), str(value - 1)]
                elif not number and self.category != "N":
                    found.append(text.replace("''", "'"))
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[int, ...]  # attribute numbers in the child
    parent: int
    parent_columns: tuple[str, ...]


@dataclass
class DataReport:
    """What the staging database's tables were given, and what could not be."""

    rows: dict[str, int] = field(default_factory=dict)  # table: rows it was given
    seeded: dict[str, str] = field(default_factory=dict)  # table: the seed file that filled it
    skipped: dict[str, str] = field(default_factory=dict)  # table: why it has no rows
    seed_errors: dict[str, str] = field(default_factory=dict)  # seed file: why it failed
    adopted: int = 0  # tables that came with their rows (from a template cache's copy)

    def summary(self) -> str:
        """``sample rows: 3 in tasks, 2 in users (from migrations/seeds/users.sql)``."""
        adopted = f"{self.adopted} table(s) as the cached template's run left them"
        if not self.rows:
            return (
                f"sample rows: {adopted}"
                if self.adopted
                else "sample rows: none (no table existed before a revision)"
            )
        tables = ", ".join(
            f"{rows} in {table}" + (f" (from {self.seeded[table]})" if table in self.seeded else "")
            for table, rows in self.rows.items()
        )
        return f"sample rows: {tables}" + (f"; {adopted}" if self.adopted else "")

    def problems(self) -> list[str]:
        """One line per table left empty and per seed file that failed, saying why."""
        return [f"{table} left empty: {why}" for table, why in self.skipped.items()] + [
            f"seed {path} failed, rows were generated instead: {why}"
            for path, why in self.seed_errors.items()
        ]


class Unfillable(Exception):
    """No row can be made for this table; the message says why."""


class SampleData:
    """Fills each table once, when it first appears; call ``fill`` before each revision."""

    def __init__(
        self,
        seeds: Path | None = None,
        rows: int = SAMPLE_ROWS,
        shown: Callable[[Path], str] = str,
    ) -> None:
        self.seeds = seeds
        self.shown = shown  # how messages name a seed file
        self.rows = rows
        self.report = DataReport()
        self._seen: set[int] = set()

    def adopt(self, connection: Connection) -> None:
        """Take the tables there are as filled: they came with their rows (or with none, where
        the run that made them could make none)."""
        tables = {int(oid) for oid, _, _ in connection.exec_driver_sql(_TABLES)}
        self.report.adopted += len(tables - self._seen)
        self._seen |= tables

    def fill(self, connection: Connection) -> None:
        """Give rows to every table not seen before that is empty, parents first.

        Runs inside the caller's transaction, each table under its own savepoint, so that a
        table that cannot be filled is left as it was; the caller commits.
        """
        tables = {
            int(oid): Table(int(oid), schema, name)
            for oid, schema, name in connection.exec_driver_sql(_TABLES)
        }
        new = [oid for oid in tables if oid not in self._seen]
        self._seen |= set(new)
        keys = {oid: _foreign_keys(connection, oid) for oid in new}
        for oid in _parents_first(new, keys):
            table = tables[oid]
            if _scalar(connection, "SELECT EXISTS (SELECT FROM {})", table):
                continue  # a revision put rows in it: they are the sample
            if not self._seed(connection, table):
                self._generate(connection, table, keys[oid], tables)

    def _seed(self, connection: Connection, table: Table) -> bool:
        """Run the table's seed file, if it has one; ``False`` when it has none or it failed."""
        if self.seeds is None:
            return False
        names = (f"{table.label}.sql", f"{table.schema}.{table.name}.sql")
        path = next((self.seeds / n for n in names if (self.seeds / n).is_file()), None)
        if path is None:
            return False
        from migrail.engine.steps import describe_error

        settings = _session_settings(connection)
        try:
            with connection.begin_nested():
                # The driver's own cursor: a seed's % signs are not placeholders.
                connection.connection.cursor().execute(path.read_text(encoding="utf-8"))
        except Exception as exc:
            self.report.seed_errors[self.shown(path)] = describe_error(exc)
            return False
        finally:
            _restore(connection, settings)  # a dump's SET search_path = '' must not outlive it
        self.report.seeded[table.label] = self.shown(path)
        self.report.rows[table.label] = int(_scalar(connection, "SELECT count(*) FROM {}", table))
        return True

    def _generate(
        self,
        connection: Connection,
        table: Table,
        keys: list[ForeignKey],
        tables: dict[int, Table],
    ) -> None:
        if connection.exec_driver_sql(_DEFERRABLE, (table.oid,)).scalar():
            self.report.skipped[table.label] = (
                "it has deferrable constraints, checked only when the revision commits "
                "(a seed file can give its rows)"
            )
            return
        columns = [Column(*row) for row in connection.exec_driver_sql(_COLUMNS, (table.oid,))]
        parents = [_parent_rows(connection, key, tables[key.parent], self.rows) for key in keys]
        added = 0
        try:
            for row in range(self.rows):
                error = _insert_row(
                    connection, table, columns, list(zip(keys, parents, strict=True)), row
                )
                if error is not None:
                    break
                added += 1
        except Unfillable as exc:
            error = str(exc)
        if added:
            self.report.rows[table.label] = added
        else:
            self.report.skipped[table.label] = error or "no row"


def _insert_row(
    connection: Connection,
    table: Table,
    columns: list[Column],
    keys: list[tuple[ForeignKey, list[tuple[Any, ...]]]],
    row: int,
) -> str | None:
    """Insert the ``row``-th sample row; ``None`` once it is in, or PostgreSQL's error.

    After a unique violation every value moves on to its next choice; after a CHECK violation,
    only those of the columns that constraint covers (all, when PostgreSQL does not name it).
    """
    from sqlalchemy.exc import DBAPIError

    from migrail.engine.steps import describe_error

    shifts = dict.fromkeys((column.name for column in columns), 0)
    error = ""
    for _ in range(_ATTEMPTS):
        values = sample_row(columns, keys, row, shifts)
        try:
            with connection.begin_nested():
                connection.exec_driver_sql(_insert_statement(table, values), tuple(values.values()))
            return None
        except DBAPIError as exc:
            error = describe_error(exc)
            diag = getattr(exc.orig, "diag", None)
            code, constraint = (
                getattr(diag, "sqlstate", None),
                getattr(diag, "constraint_name", None),
            )
            if code not in _RETRY:
                break
            covered = [c.name for c in columns if code == "23514" and constraint in c.check_names]
            for name in covered or shifts:
                shifts[name] += 1
    return error


def sample_row(
    columns: list[Column],
    keys: list[tuple[ForeignKey, list[tuple[Any, ...]]]],
    row: int,
    shifts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Column name: value (text, cast by PostgreSQL) for the ``row``-th sample row, each column
    ``shifts[name]`` choices further on; columns left to their defaults are not in it.
    Raises Unfillable when a NOT NULL column can get no value."""
    shifts = shifts or {}
    by_number = {column.number: column for column in columns}
    values: dict[str, Any] = {}
    for key, parent_rows in keys:
        names = [by_number[number].name for number in key.columns]
        if parent_rows:
            choice = row + shifts.get(names[0], 0)
            values.update(zip(names, parent_rows[choice % len(parent_rows)], strict=True))
        elif any(by_number[number].not_null for number in key.columns):
            raise Unfillable(f"{', '.join(names)} must reference a row, and the parent has none")
        else:
            values.update(dict.fromkeys(names))
    for column in columns:
        if column.name in values or column.uses_default():
            continue
        value = sample_value(column, row, shifts.get(column.name, 0))
        if value is None and column.not_null:
            raise Unfillable(f"no sample value for {column.name} of type {column.type}")
        values[column.name] = value
    return values


def sample_value(column: Column, row: int, shift: int = 0) -> str | None:
    """A value for ``column`` as text: the values its checks or enum name, then one made for
    its type; ``None``: none is known. A unique column gets a value per row; any other repeats
    one (rows 0 and 1 share it), as real data does, so that a unique index over it fails here."""
    index = row if column.unique else row // 2
    made = None if column.labels else _made_value(column, index + 1 + shift * 100)
    choices = column.candidates() + ([made] if made is not None else [])
    return choices[(index + shift) % len(choices)] if choices else None


def _made_value(column: Column, n: int) -> str | None:
    """The ``n``-th value of the column's type, as text; ``None`` for a type not known here."""
    day = datetime.date(2026, 1, 1) + datetime.timedelta(days=n - 1)
    bits = column.length or 1
    by_type = {
        "bool": "true" if n % 2 else "false",
        "uuid": str(uuid.UUID(int=n)),
        "json": json.dumps({"sample": n}),
        "jsonb": json.dumps({"sample": n}),
        "bytea": f"\\x{n:04x}",
        "xml": f'<sample n="{n}"/>',
        "date": day.isoformat(),
        "timestamp": f"{day} 12:00:00",
        "timestamptz": f"{day} 12:00:00+00",
        "time": f"{n % 24:02d}:00:00",
        "timetz": f"{n % 24:02d}:00:00+00",
        "interval": f"{n} days",
        "inet": f"10.0.{n // 250}.{n % 250 + 1}",
        "cidr": f"10.{n // 250}.{n % 250}.0/24",
        "macaddr": f"08:00:2b:00:{n // 256:02x}:{n % 256:02x}",
        "tsvector": f"sample{n}",
        "tsquery": f"sample{n}",
        "point": f"({n},{n})",
        "box": f"(({n},{n}),(0,0))",
        "circle": f"<({n},{n}),1>",
        "polygon": f"(({n},0),({n},1),({n + 1},0))",
        "path": f"(({n},0),({n},1))",
        "lseg": f"(({n},0),({n},1))",
        "bit": format(n, "b").zfill(bits)[-bits:],
        "varbit": format(n, "b"),
    }
    if column.base_type in by_type:
        return by_type[column.base_type]
    if column.category == "N":
        return str(n)
    if column.category == "S":
        text = f"{column.name} {n}"
        if column.length is not None and len(text) > column.length:
            text = str(n)[-column.length :]
        return text
    return {"A": "{}", "R": "empty"}.get(column.category)


def identifier(*names: str) -> sql.SQL:
    """A quoted (schema-qualified) name for a statement run through SQLAlchemy's
    ``exec_driver_sql``, where psycopg reads every ``%`` as a placeholder: so doubled."""
    from psycopg import sql

    return sql.SQL(sql.Identifier(*names).as_string(None).replace("%", "%%"))


def _insert_statement(table: Table, values: dict[str, Any]) -> str:
    from psycopg import sql

    if not values:
        return sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table.identifier).as_string(None)
    return (
        sql.SQL("INSERT INTO {} ({}) VALUES ({})")
        .format(
            table.identifier,
            sql.SQL(", ").join(identifier(name) for name in values),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        )
        .as_string(None)
    )


def _foreign_keys(connection: Connection, oid: int) -> list[ForeignKey]:
    return [
        ForeignKey(tuple(columns), int(parent), tuple(parent_columns))
        for columns, parent, parent_columns in connection.exec_driver_sql(_FOREIGN_KEYS, (oid,))
    ]


def _parents_first(new: list[int], keys: dict[int, list[ForeignKey]]) -> list[int]:
    """The new tables, each after the new tables it references (a cycle is broken anywhere)."""
    ordered: list[int] = []
    visiting: set[int] = set()

    def visit(oid: int) -> None:
        if oid in visiting:
            return
        visiting.add(oid)
        for key in keys[oid]:
            if key.parent in keys:
                visit(key.parent)
        ordered.append(oid)

    for oid in new:
        visit(oid)
    return ordered


def _parent_rows(
    connection: Connection, key: ForeignKey, parent: Table, rows: int
) -> list[tuple[Any, ...]]:
    """Some rows of the referenced columns, as text; none: the key can only be NULL."""
    from psycopg import sql

    query = sql.SQL("SELECT {} FROM {} LIMIT {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(identifier(c)) for c in key.parent_columns),
        parent.identifier,
        sql.Literal(rows),
    )
    return [tuple(row) for row in connection.exec_driver_sql(query.as_string(None))]


def _session_settings(connection: Connection) -> dict[str, str]:
    rows = connection.exec_driver_sql(
        "SELECT name, setting FROM pg_settings WHERE context IN ('user', 'superuser')"
    )
    return {str(name): str(setting) for name, setting in rows}


def _restore(connection: Connection, settings: dict[str, str]) -> None:
    """Set back, for the session, whatever a seed file changed of ``settings``."""
    for name, setting in _session_settings(connection).items():
        if name in settings and settings[name] != setting:
            connection.exec_driver_sql("SELECT set_config(%s, %s, false)", (name, settings[name]))


def _scalar(connection: Connection, template: str, table: Table) -> Any:
    from psycopg import sql

    query = sql.SQL(template).format(table.identifier)
    return connection.exec_driver_sql(query.as_string(None)).scalar()

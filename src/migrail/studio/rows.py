"""A table's rows: pages by keyset, sorting and filters from the URL, and optimistic edits.

A page is ``WHERE (sort, key) > (last row's)`` ``ORDER BY sort, key LIMIT n``: the primary key's
index finds page 10,000 as fast as page 1, where ``OFFSET`` would read and drop every row
before it. A table without a primary key pages by ``ctid`` (a TID range scan); a view, which
has neither, by ``OFFSET``.

Values travel as PostgreSQL's own text form (``col::text``), and come back through
``CAST(%s AS <type>)``: every type round-trips (``edits`` writes them back the same way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from psycopg import sql

from migrail.studio.database import cursor

if TYPE_CHECKING:
    from psycopg.abc import AdaptContext
    from sqlalchemy.engine import Connection

    from migrail.studio.catalog import Column, TableInfo

# Operators of the filter form: how each reads, and its SQL with the column as {0}.
OPERATORS: Mapping[str, tuple[str, str]] = {
    "eq": ("=", "{0} = {1}"),
    "ne": ("≠", "{0} <> {1}"),
    "lt": ("<", "{0} < {1}"),
    "gt": (">", "{0} > {1}"),
    "contains": ("contains", "{0}::text ILIKE '%%' || %s || '%%'"),
    "null": ("is null", "{0} IS NULL"),
    "notnull": ("is not null", "{0} IS NOT NULL"),
}
# Below this size a table's rows are counted; above, the planner's estimate is shown.
EXACT_COUNT_BYTES = 8 * 1024 * 1024
CTID = "ctid"


@dataclass(frozen=True)
class Filter:
    column: str
    operator: str
    value: str = ""


@dataclass(frozen=True)
class PageRequest:
    """What the URL asks for: ``after`` is the last row's sort key as text, ``offset`` only
    for a view."""

    sort: str | None = None
    descending: bool = False
    filters: tuple[Filter, ...] = ()
    after: tuple[str | None, ...] | None = None
    offset: int = 0
    size: int = 50
    cell_limit: int | None = None  # a page's cells cut past this many characters (HTML)


@dataclass(frozen=True)
class Page:
    columns: list[Column]
    key: list[str]  # the columns a row is found by: the primary key's, ctid, or none (a view)
    rows: list[tuple[str | None, ...]]  # each column's text, then the key's (ctid: its own)
    count: int
    exact: bool  # count(*) on a small table, else the planner's estimate
    next_after: tuple[str | None, ...] | None = None
    next_offset: int | None = None
    request: PageRequest = field(default_factory=PageRequest)

    def row_key(self, row: Sequence[str | None]) -> list[str | None]:
        return list(row[len(self.columns) :])


def key_columns(table: TableInfo, columns: Sequence[Column]) -> list[str]:
    """The primary key's columns; ``ctid`` for a table without one; none for a view."""
    key = sorted((c for c in columns if c.key_position), key=lambda c: c.key_position)
    if key:
        return [c.name for c in key]
    return [CTID] if table.kind in ("r", "m") else []


def read_page(
    connection: Connection, table: TableInfo, columns: list[Column], request: PageRequest
) -> Page:
    """One page of rows as ``request`` asks, and how many rows the filters leave."""
    key = key_columns(table, columns)
    types = {c.name: c.type for c in columns} | {CTID: "tid"}
    name = table_sql(table)
    where, params = _filters(request.filters, types)
    arguments: list[str | None] = list(params)
    order = [request.sort] if request.sort and request.sort not in key else []
    order += key
    direction = sql.SQL("DESC" if request.descending else "ASC")
    conditions = list(where)
    if request.after is not None and key:
        if len(request.after) != len(order):
            raise ValueError(f"_after holds {len(request.after)} values, the order {len(order)}")
        condition, values = _after(order, request, types)
        conditions, arguments = [*where, condition], [*arguments, *values]
    # Named apart (c0, c1...): ORDER BY "id" would otherwise sort by the output "id", its text.
    shown = [_shown(c.name, request.cell_limit, order) for c in columns]
    shown += [sql.SQL("{}::text").format(column_sql(k)) for k in key]
    select = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(column, sql.Identifier(f"c{i}"))
        for i, column in enumerate(shown)
    )
    sorting = sql.SQL(", ").join(
        sql.SQL("{} {} NULLS LAST").format(column_sql(c), direction) for c in order
    )
    query = sql.SQL("SELECT {} FROM {}{}{} LIMIT {}").format(
        select,
        name,
        _where(conditions),
        sql.SQL(" ORDER BY {}").format(sorting) if order else sql.SQL(""),  # a view, unsorted
        sql.Literal(request.size + 1),
    )
    if not key:
        query = sql.SQL("{} OFFSET {}").format(query, sql.Literal(request.offset))
    with cursor(connection) as cur:
        cur.execute(query, arguments)
        rows = cur.fetchall()
    count, exact = _count(connection, table, name, where, params)
    page = Page(columns, key, rows[: request.size], count, exact, request=request)
    if len(rows) <= request.size:
        return page
    last = rows[request.size - 1]
    positions = {c.name: i for i, c in enumerate(columns)}
    positions.update({k: len(columns) + i for i, k in enumerate(key)})
    if not key:
        return _replace(page, next_offset=request.offset + request.size)
    return _replace(page, next_after=tuple(last[positions[c]] for c in order))


def _shown(column: str, limit: int | None, order: Sequence[str]) -> sql.Composable:
    """A column's text; cut a character past ``limit``, so that a page of 2 MB documents is
    not 100 MB (the column sorted by stays whole: the next page starts from its value)."""
    text = sql.SQL("{}::text").format(identifier(column))
    if limit is None or column in order:
        return text
    return sql.SQL("left({}, {})").format(text, sql.Literal(limit + 1))


def _replace(page: Page, **changes: object) -> Page:
    import dataclasses

    return dataclasses.replace(page, **changes)  # type: ignore[arg-type]


def identifier(*names: str) -> sql.Composable:
    """A name quoted by the driver, its ``%`` doubled: the studio's queries carry parameters,
    and psycopg reads a ``%`` anywhere in them as one (``"100%d"`` would be a bad placeholder)."""
    return _Name(sql.Identifier(*names))


class _Name(sql.Composable):
    def __init__(self, quoted: sql.Identifier) -> None:
        super().__init__(quoted)

    def as_bytes(self, context: AdaptContext | None = None) -> bytes:
        return bytes(self._obj.as_bytes(context)).replace(b"%", b"%%")


def _percent(text: str) -> str:
    return text.replace("%", "%%")


def table_sql(table: TableInfo) -> sql.Composable:
    """The table's name, quoted by the driver."""
    return identifier(table.schema, table.name)


def column_sql(column: str) -> sql.Composable:
    """A column's name, quoted; ``ctid`` as the system column it is."""
    return sql.SQL(CTID) if column == CTID else identifier(column)


def cast_param(column: str, types: Mapping[str, str]) -> sql.Composable:
    """A parameter in the column's type; ``format_type``'s spelling is the catalog's own."""
    return sql.SQL("CAST(%s AS {})").format(sql.SQL(_percent(types[column])))


def _where(conditions: list[sql.Composable]) -> sql.Composable:
    if not conditions:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)


def _filters(
    filters: Sequence[Filter], types: Mapping[str, str]
) -> tuple[list[sql.Composable], list[str]]:
    """Each filter as a condition on the column in its own type (so an index can serve it)."""
    conditions: list[sql.Composable] = []
    params: list[str] = []
    for item in filters:
        template = OPERATORS[item.operator][1]
        conditions.append(
            sql.SQL(template).format(column_sql(item.column), cast_param(item.column, types))
        )
        if "%s" in template or "{1}" in template:
            params.append(item.value)
    return conditions, params


def _after(
    order: list[str], request: PageRequest, types: Mapping[str, str]
) -> tuple[sql.Composable, list[str | None]]:
    """Rows after the last one shown, in the page's order (NULLs of the sort column last)."""
    assert request.after is not None
    compare = sql.SQL("<" if request.descending else ">")
    if len(order) == len(request.after) and len(order) > 1 and order[0] == request.sort:
        first, rest, (value, *last) = order[0], order[1:], request.after
        key = row_compare(rest, types, compare)
        if value is None:  # among the NULLs, which come last: only the key orders them
            return sql.SQL("({} IS NULL AND {})").format(identifier(first), key), last
        both = row_compare(order, types, compare)
        return sql.SQL("({} IS NULL OR {})").format(identifier(first), both), [value, *last]
    return row_compare(order, types, compare), list(request.after)


def row_compare(
    columns: list[str], types: Mapping[str, str], compare: sql.Composable
) -> sql.Composable:
    """``(a, b) > (CAST(%s AS ta), CAST(%s AS tb))``: one comparison, which an index serves."""
    return sql.SQL("({}) {} ({})").format(
        sql.SQL(", ").join(column_sql(c) for c in columns),
        compare,
        sql.SQL(", ").join(cast_param(c, types) for c in columns),
    )


def _count(
    connection: Connection,
    table: TableInfo,
    name: sql.Composable,
    where: list[sql.Composable],
    params: Sequence[object],
) -> tuple[int, bool]:
    """``count(*)`` where that is cheap (a small table), else the planner's estimate: never a
    scan of millions of rows to print one number."""
    import json

    query = sql.SQL("SELECT count(*) FROM {}{}").format(name, _where(where))
    exact = table.size < EXACT_COUNT_BYTES and table.kind != "v"
    with cursor(connection) as cur:
        if exact:
            cur.execute(query, params)
            return int(cur.fetchone()[0]), True  # type: ignore[index]
        cur.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query), params)
        plan = cur.fetchone()[0]  # type: ignore[index]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    node = plan[0]["Plan"]
    while node.get("Plans") and node["Node Type"] in ("Aggregate", "Gather", "Finalize Aggregate"):
        node = node["Plans"][0]
    return int(node["Plan Rows"]), False


def read_row(
    connection: Connection, table: TableInfo, columns: list[Column], key: Sequence[str | None]
) -> tuple[str | None, ...] | None:
    """The row ``key`` finds (each column as text), or None where it is gone."""
    names = key_columns(table, columns)
    if len(key) != len(names):
        raise ValueError(f"key holds {len(key)} values, the key {len(names)}")
    types = {c.name: c.type for c in columns} | {CTID: "tid"}
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(identifier(c.name)) for c in columns),
        table_sql(table),
        row_compare(names, types, sql.SQL("=")),
    )
    with cursor(connection) as cur:
        cur.execute(query, list(key))
        return cur.fetchone()

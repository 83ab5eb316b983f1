"""What was loaded, checked against what was sent: row counts and a checksum of the values.

Each row is rendered as text column by column, the same way on both sides (in Python from the
converted values as they were sent, in SQL from the values PostgreSQL stored), and hashed with
md5; a table's checksum is the sum of its rows' hashes (their first 8 bytes as a signed
bigint). A sum needs no ordering and no memory beyond one number, so a large table is checked
in one scan, and an appended load is the difference of the sums before and after. A trigger
that alters a value on insert, a type that rounds, a column that drops its time zone: each
changes the sum.

Columns whose text rendering cannot be reproduced exactly outside PostgreSQL (types migrail
does not know) are left out of the checksum and named in the summary.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from psycopg import sql

from migrail.sqlite_import.binary import rows_hash, stored_row_bytes
from migrail.sqlite_import.conversions import EPOCH, TEXT_TYPES, WIDE
from migrail.sqlite_import.jsonb import numeric_text

if TYPE_CHECKING:
    import psycopg

    from migrail.sqlite_import.catalog import TargetColumn
    from migrail.sqlite_import.matching import TablePlan

Render = Callable[[object], str]
_EPOCH_NAIVE = EPOCH.replace(tzinfo=None)
_MICROSECOND = timedelta(microseconds=1)
_DAY_ONE = date(1970, 1, 1)


@dataclass(frozen=True)
class Rendering:
    """One column's text on both sides: ``expression`` in SQL (``{}`` is the column)."""

    expression: str
    render: Render | None  # None: the value sent is its own text (a str)


def rendering(column: TargetColumn) -> Rendering | None:
    """How ``column`` is rendered for the checksum; None where it cannot be reproduced."""
    base = column.base
    if base == "uuid":
        return Rendering("{}::text", str)
    if base in TEXT_TYPES or base in ("json", "jsonb"):  # jsonb: sent as printed
        strip = base == "bpchar"  # char(n) pads, and its cast to text removes the padding
        return Rendering("{}::text", (lambda v: str(v).rstrip(" ")) if strip else None)
    if base in ("int2", "int4", "int8"):
        return Rendering("{}::text", str)
    if base == "bool":
        return Rendering("{}::text", lambda v: "true" if v else "false")
    if base in ("float4", "float8"):
        code = ">f" if base == "float4" else ">d"
        return Rendering(f"encode({base}send({{}}), 'hex')", lambda v: struct.pack(code, v).hex())
    if base == "numeric":
        return Rendering("{}::text", _numeric(column.scale))
    if base in ("timestamptz", "timestamp"):
        return Rendering("(extract(epoch from {}) * 1000000)::bigint::text", _microseconds)
    if base == "date":
        return Rendering("({} - date '1970-01-01')::text", lambda v: str((v - _DAY_ONE).days))  # type: ignore[operator]
    if base == "bytea":
        return Rendering("md5({})", lambda v: hashlib.md5(v).hexdigest())  # type: ignore[arg-type]
    return None


def _microseconds(value: object) -> str:
    epoch = EPOCH if value.tzinfo is not None else _EPOCH_NAIVE  # type: ignore[attr-defined]
    return str((value - epoch) // _MICROSECOND)  # type: ignore[operator]


def _numeric(scale: int | None) -> Render:
    """The value sent, padded to the column's scale as PostgreSQL prints it; never rounded:
    a value PostgreSQL rounded on the way in keeps its digits here, and the sums differ."""
    step = Decimal(1).scaleb(-scale) if scale is not None else None

    def render(value: object) -> str:
        number = Decimal(str(value))
        if step is not None and number.is_finite():
            padded = number.quantize(step, context=WIDE)
            if padded == number:
                number = padded
        return numeric_text(number)

    return render


class Checksum:
    """Rows sent, and the sum of their hashes, built as batches are loaded."""

    def __init__(self, renderings: Sequence[Rendering | None]) -> None:
        self.renders = [(i, r.render) for i, r in enumerate(renderings) if r is not None]
        self.rows = 0
        self.total = 0

    def add(self, rows: Sequence[Sequence[object]]) -> None:
        renders = self.renders
        md5 = hashlib.md5
        total = 0
        for row in rows:
            parts = []
            for i, render in renders:
                value = row[i]
                if value is None:
                    parts.append("-")
                    continue
                text = value if render is None else render(value)
                parts.append(f"{len(text)}:{text}")  # type: ignore[arg-type]
            digest = md5("".join(parts).encode()).digest()
            total += int.from_bytes(digest[:8], "big", signed=True)
        self.rows += len(rows)
        self.total += total

    def add_sums(self, rows: int, total: int) -> None:
        """Rows hashed elsewhere (a worker process): their count and the sum of their hashes."""
        self.rows += rows
        self.total += total

    def add_encoded(self, payloads: Sequence[bytes]) -> None:
        """Rows sent in the binary form, hashed as sent."""
        self.rows += len(payloads)
        self.total += rows_hash(payloads)


def scan_in_parallel(connection: psycopg.Connection[tuple[object, ...]]) -> None:
    """Let the checksum scans use parallel workers (as many as the server allows per query):
    the planner has no statistics on tables just loaded, and would scan them alone."""
    for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
        connection.execute(sql.SQL("SET LOCAL {} = 0").format(sql.Identifier(setting)))


def stored_checksum(
    connection: psycopg.Connection[tuple[object, ...]], plan: TablePlan, *, binary: bool
) -> tuple[int, int]:
    """The table's row count and the sum of its rows' hashes, as PostgreSQL computes them from
    what it stored: over each row's binary COPY form, or its rendered text."""
    columns = [column.target for column in plan.columns]
    source: sql.Composable = sql.Identifier(*plan.target.qualified)
    if binary:
        source, row = stored_row_bytes([(c.name, c.base) for c in columns], source)
    else:
        fields: list[sql.Composable] = [
            sql.SQL("coalesce(length({e}) || ':' || {e}, '-')").format(
                e=sql.SQL(r.expression).format(sql.Identifier(c.name))
            )
            for c, r in zip(columns, (c.rendering for c in plan.columns), strict=True)
            if r is not None
        ] or [sql.SQL("''")]
        row = sql.SQL(" || ").join(fields)
    query = sql.SQL(
        "SELECT count(*), coalesce(sum(('x' || left(md5({row}), 16))::bit(64)::bigint), 0)"
        " FROM {source}"
    ).format(row=row, source=source)
    count, total = connection.execute(query).fetchone() or (0, 0)
    return int(str(count)), int(str(total))

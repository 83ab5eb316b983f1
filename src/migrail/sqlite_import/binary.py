"""Rows in PostgreSQL's binary COPY form, encoded once: sent as they are, and hashed as they
are for the checksum, which PostgreSQL rebuilds from what it stored with each type's send
function (``timestamptz_send``...). Both sides then hash the very bytes of each value, in C.

Only for types whose binary form is one per value: a numeric (whose scale the column may
change) or a char(n) (padded) sends a table the text way, with rendered checksums.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from psycopg.adapt import AdaptersMap, Dumper, Transformer

try:  # the C row encoder COPY itself uses (psycopg 3.2+; 3.1 kept it in psycopg.copy)
    from psycopg._copy_base import format_row_binary
except ImportError:  # pragma: no cover
    from psycopg.copy import format_row_binary  # type: ignore[attr-defined,no-redef]

if TYPE_CHECKING:
    from migrail.sqlite_import.matching import TablePlan

SIGNATURE = b"PGCOPY\n\xff\r\n\0" + b"\0\0\0\0" + b"\0\0\0\0"  # header, no flags, no extension
TRAILER = b"\xff\xff"
# Each type's send function: its binary form, as COPY ... (FORMAT BINARY) carries it.
SEND = {
    "text": "textsend",
    "varchar": "varcharsend",
    "int2": "int2send",
    "int4": "int4send",
    "int8": "int8send",
    "float4": "float4send",
    "float8": "float8send",
    "bool": "boolsend",
    "bytea": "byteasend",
    "timestamptz": "timestamptz_send",
    "timestamp": "timestamp_send",
    "date": "date_send",
    "jsonb": "jsonb_send",
    "uuid": "uuid_send",
}
JSONB_OID = 3802


class JsonbTextDumper(Dumper):
    """A jsonb's binary form from its text (a version byte, then the text): conversions
    already made the text, as PostgreSQL prints it."""

    format = psycopg.pq.Format.BINARY
    oid = JSONB_OID

    def dump(self, obj: object) -> bytes:
        return b"\x01" + str(obj).encode()


def binary_types(plan: TablePlan) -> list[str] | None:
    """The columns' types for a binary COPY, or None where one has no single binary form."""
    types = [column.target.base for column in plan.columns]
    return types if set(types) <= set(SEND) else None


def encoder(types: Sequence[str]) -> Callable[[Sequence[Sequence[object]]], list[bytes]]:
    """Rows' bytes in the binary COPY form, one bytearray a row (its field count, then each
    field's length and bytes, -1 for NULL), encoded by psycopg's C encoder with no Python call
    per row. Needs no connection: a worker process encodes too."""
    adapters = AdaptersMap(psycopg.adapters)
    adapters.register_dumper(None, JsonbTextDumper)
    transformer = Transformer(_Context(adapters))
    oids = [adapters.types.get_oid(name) for name in types]
    transformer.set_dumper_types(oids, psycopg.pq.Format.BINARY)

    def encode(rows: Sequence[Sequence[object]]) -> list[bytes]:
        payloads = [bytearray() for _ in rows]
        deque(map(format_row_binary, rows, repeat(transformer), payloads), maxlen=0)
        return payloads  # type: ignore[return-value]  # a bytearray serves as bytes here

    return encode


class _Context:
    """What a Transformer reads its dumpers from: adapters, and no connection."""

    def __init__(self, adapters: AdaptersMap) -> None:
        self.adapters = adapters
        self.connection = None


def rows_hash(payloads: Iterable[bytes]) -> int:
    """The sum of the rows' hashes, each the first 8 bytes of its md5 as a signed bigint
    (PostgreSQL's side: ``('x' || left(md5(bytes), 16))::bit(64)::bigint``), in C."""
    digests = b"".join(map(_DIGEST, map(hashlib.md5, payloads)))
    return sum(map(_FIRST, _ITER_UNPACK(digests)))


_DIGEST = methodcaller("digest")
_FIRST = itemgetter(0)
_ITER_UNPACK = struct.Struct(">q8x").iter_unpack


def stored_row_bytes(
    columns: Sequence[tuple[str, str]], table: sql.Composable
) -> tuple[sql.Composable, sql.Composable]:
    """The SQL rebuilding each stored row's binary COPY form from ``(name, type)`` pairs: the
    FROM clause over ``table`` (each value sent once, in a lateral), and the row's bytes."""
    sends = sql.SQL(", ").join(
        sql.SQL("{send}(t.{c}) AS {f}").format(
            send=sql.SQL(SEND[base]), c=sql.Identifier(name), f=sql.Identifier(f"f{i}")
        )
        for i, (name, base) in enumerate(columns)
    )
    source = sql.SQL("{table} AS t CROSS JOIN LATERAL (SELECT {sends}) AS s").format(
        table=table, sends=sends
    )
    fields = [
        sql.SQL("coalesce(int4send(octet_length(s.{f})) || s.{f}, {null})").format(
            f=sql.Identifier(f"f{i}"), null=sql.Literal(b"\xff\xff\xff\xff")
        )
        for i in range(len(columns))
    ]
    count = sql.SQL("int2send({}::int2)").format(sql.Literal(len(columns)))
    return source, sql.SQL(" || ").join([count, *fields])

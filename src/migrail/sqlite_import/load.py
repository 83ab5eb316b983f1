"""The rows loaded: parents first, through COPY in batches, all in one transaction.

A batch that PostgreSQL refuses (a duplicate key, a foreign key with no parent, a CHECK) is
rolled back to its savepoint and split in halves until the rows at fault are found alone: they
become rejects with PostgreSQL's reason, and the rest loads. Nothing is committed until every
table is loaded and verified, so a failed, refused or interrupted run leaves the target as it
was: the server rolls back a transaction whose client is gone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psycopg
from psycopg import sql

from migrail.core.errors import FatalError
from migrail.sqlite_import import parallel
from migrail.sqlite_import.binary import SIGNATURE, TRAILER, binary_types, encoder, rows_hash
from migrail.sqlite_import.indexes import built_after
from migrail.sqlite_import.rows import Refused, convert_rows
from migrail.sqlite_import.source import count_rows, read_rows
from migrail.sqlite_import.verify import Checksum, stored_checksum

if TYPE_CHECKING:
    import sqlite3

    from migrail.sqlite_import.matching import TablePlan

BATCH = 10_000
# Errors of a row's values or constraints, found by splitting the batch; any other ends the run.
_ROW_ERRORS = (psycopg.errors.IntegrityError, psycopg.errors.DataError)
Advance = Callable[[int], None]


@dataclass
class TableLoad:
    """One table's outcome: rows read, loaded and rejected; the checksum of what was sent, and
    the count and checksum the target held before (an appended load adds to them)."""

    plan: TablePlan
    read: int = 0
    rejected: int = 0
    sent: Checksum = field(init=False)
    before: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self.sent = Checksum([column.rendering for column in self.plan.columns])


class Rejects:
    """Rejected rows, one JSON object a line, written as they are found (memory stays flat).

    The file is opened before the load (a path that cannot be written is said before a row is
    sent, not after minutes of loading), for appending, and emptied only when a first row is
    rejected: a run that rejects nothing (or is refused) leaves an earlier run's file as it
    was, and creates none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[str] | None = None
        self._existed = False

    def open(self) -> IO[str]:
        try:
            self._existed = self.path.exists()
            if self._existed and not _holds_rejects(self.path):
                raise FatalError(
                    f"{self.path} exists and is not a rejects file of an earlier import: it "
                    "would be emptied at the first rejected row",
                    hint="name another file: --rejects FILE",
                )
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise FatalError(
                f"cannot write the rejects file {self.path}: {exc.strerror}",
                hint="name a file in a writable directory: --rejects FILE",
            ) from None
        return self._file

    def add(self, table: str, values: dict[str, object], column: str | None, reason: str) -> None:
        file = self._file or self.open()
        shown = {k: _as_json(v) for k, v in values.items()}
        record = {"table": table, "column": column, "reason": reason, "row": shown}
        try:
            if not self.count:
                file.truncate(0)
            file.write(json.dumps(record, ensure_ascii=False, default=str, allow_nan=False) + "\n")
        except OSError as exc:  # a full disk: the import stops, and its transaction with it
            raise FatalError(
                f"cannot write the rejects file {self.path}: {exc.strerror or exc}",
                hint="free some space, or name a file elsewhere: --rejects FILE",
            ) from None
        self.count += 1

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
            if not self.count and not self._existed:
                self.path.unlink(missing_ok=True)


_REJECT_KEYS = {"table", "column", "reason", "row"}


def _holds_rejects(path: Path) -> bool:
    """Whether ``path`` is empty or a rejects file (its first line one of ``Rejects``' records):
    anything else there (the SQLite file itself, the map, a project file) is not to be emptied."""
    try:
        with path.open("rb") as file:
            first = file.readline(1 << 20)
    except OSError:
        return False  # a directory, say: said as such by the open that follows
    if not first:  # empty
        return True
    try:
        record = json.loads(first)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(record, dict) and set(record) == _REJECT_KEYS


def _as_json(value: object) -> object:
    """A SQLite value as JSON can hold it: a blob in hex, an infinity as text (json.dumps would
    write a bare Infinity, which is not JSON, and the line would not parse)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


PgConnection = psycopg.Connection[tuple[object, ...]]


def load_table(
    connection: PgConnection,
    source: sqlite3.Connection,
    plan: TablePlan,
    rejects: Rejects,
    *,
    append: bool,
    advance: Advance,
    path: Path | None = None,
    rows: int = 0,
    batch: int = BATCH,
) -> TableLoad:
    """Load one table's rows; the rows PostgreSQL or a conversion refuses go to ``rejects``.

    First as one COPY, streamed: the server stores a batch while the next is converted (by
    worker processes, for a large table of the file at ``path`` with ``rows`` rows); a table
    loaded empty with a batch of rows or more, without the indexes that are built again after
    it (for fewer, dropping and building them costs more than the rows). If
    PostgreSQL refuses a row, that COPY is rolled back to its savepoint and the table loaded
    again batch by batch, each refused batch split until the rows at fault are alone.
    """
    before = _stored(connection, plan) if append else (0, 0)
    types = binary_types(plan)
    encode = encoder(types) if types else None
    copy = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(*plan.target.qualified),
        sql.SQL(", ").join(sql.Identifier(c.target.name) for c in plan.columns),
        sql.SQL(" (FORMAT BINARY)" if types else ""),
    )
    result = TableLoad(plan, before=before)
    try:
        with (
            connection.transaction(),
            nullcontext()
            if append or rows < batch
            else built_after(connection, plan.target.qualified),
        ):
            if encode is not None:
                with closing(_blocks(source, plan, encode, batch, path, rows)) as blocks:
                    _stream_blocks(connection, copy, blocks, result, rejects, advance)
            else:
                batches = _batches(source, plan, None, batch)
                _stream_rows(connection, copy, batches, result, rejects, advance)
        return result
    except _ROW_ERRORS:
        # The rows whose conversion refusals the first COPY wrote: it may have stopped part-way
        # (a value the driver cannot send), before the rest of the table was read.
        written = result.read
    result = TableLoad(plan, before=before)
    orphans: list[_Orphan] = []
    for converted in _batches(source, plan, encode, batch):
        refused: dict[int, str] = {}
        parentless: set[int] = set()
        loaded = _copy(connection, copy, converted.good, converted.payloads, refused, parentless)
        _sent(result, converted.good, converted.payloads, loaded)
        if result.read + converted.read > written:  # not in the file yet
            for original, column, reason in converted.refused:
                rejects.add(plan.source.name, _named(plan, original), column, reason)
        result.rejected += len(converted.refused)
        result.read += converted.read
        for i, reason in sorted(refused.items()):
            if i not in parentless:  # a duplicate, a CHECK: no later row changes that
                rejects.add(plan.source.name, _named(plan, converted.originals[i]), None, reason)
                result.rejected += 1
                continue
            payload = None if converted.payloads is None else converted.payloads[i]
            orphans.append(_Orphan(converted.good[i], payload, converted.originals[i], reason))
    for orphan in _retried(connection, copy, orphans, result):
        rejects.add(plan.source.name, _named(plan, orphan.original), None, orphan.reason)
        result.rejected += 1
    return result


@dataclass(frozen=True)
class _Orphan:
    """A row refused in its batch for a missing parent, tried again after the table's rest."""

    row: Sequence[object]
    payload: bytes | None
    original: tuple[object, ...]
    reason: str


def _retried(
    connection: PgConnection, copy: sql.Composed, orphans: list[_Orphan], result: TableLoad
) -> list[_Orphan]:
    """The refused rows tried again, together, until a round loads none: a row of a
    self-referencing table whose parent comes in a later batch is refused in its own batch
    (each batch is a COPY, checked as it ends), and loads once its parent has. The rows
    still refused then, with their last reason."""
    while orphans:
        refused: dict[int, str] = {}
        rows = [orphan.row for orphan in orphans]
        payloads = None if orphans[0].payload is None else [o.payload or b"" for o in orphans]
        loaded = _copy(connection, copy, rows, payloads, refused)
        _sent(result, rows, payloads, loaded)
        if not loaded:
            break
        orphans = [
            _Orphan(o.row, o.payload, o.original, refused[i])
            for i, o in enumerate(orphans)
            if i in refused
        ]
    return orphans


def _sent(
    result: TableLoad,
    rows: Sequence[Sequence[object]],
    payloads: list[bytes] | None,
    loaded: list[int],
) -> None:
    if payloads is not None:
        result.sent.add_encoded([payloads[i] for i in loaded])
    else:
        result.sent.add([rows[i] for i in loaded])


@dataclass
class _Batch:
    """Rows read, converted (and encoded, for a binary COPY), and those a conversion refused."""

    read: int
    good: Sequence[Sequence[object]]
    originals: list[tuple[object, ...]]
    payloads: list[bytes] | None
    refused: list[Refused]


def _batches(
    source: sqlite3.Connection,
    plan: TablePlan,
    encode: Callable[[Sequence[Sequence[object]]], list[bytes]] | None,
    batch: int,
) -> Iterator[_Batch]:
    names = [column.source for column in plan.columns]
    conversions = [column.conversion for column in plan.columns]
    for rows in read_rows(source, plan.source.name, names, batch):
        good, originals, refused = convert_rows(rows, names, conversions)
        payloads = encode(good) if encode else None
        yield _Batch(len(rows), good, originals, payloads, refused)


def _blocks(
    source: sqlite3.Connection,
    plan: TablePlan,
    encode: Callable[[Sequence[Sequence[object]]], list[bytes]],
    batch: int,
    path: Path | None,
    rows: int,
) -> Generator[parallel.Block, None, None]:
    """The table as blocks of COPY bytes: from worker processes when it is large enough."""
    if path is not None and parallel.usable(source, plan, rows):
        yield from parallel.blocks(path, source, plan, batch)
        return
    for converted in _batches(source, plan, encode, batch):
        payloads = converted.payloads or []
        yield parallel.Block(
            converted.read,
            b"".join(payloads),
            len(payloads),
            rows_hash(payloads),
            converted.refused,
        )


def _stream_blocks(
    connection: PgConnection,
    statement: sql.Composed,
    blocks: Iterator[parallel.Block],
    result: TableLoad,
    rejects: Rejects,
    advance: Advance,
) -> None:
    """Every block into one binary COPY."""
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(SIGNATURE)
        for block in blocks:
            if block.data:
                copy.write(block.data)
            result.sent.add_sums(block.rows, block.total)
            _refused(result, rejects, block.refused, block.read, advance)
        copy.write(TRAILER)


def _stream_rows(
    connection: PgConnection,
    statement: sql.Composed,
    batches: Iterator[_Batch],
    result: TableLoad,
    rejects: Rejects,
    advance: Advance,
) -> None:
    """Every batch into one text COPY."""
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for converted in batches:
            for row in converted.good:
                copy.write_row(row)
            result.sent.add(converted.good)
            _refused(result, rejects, converted.refused, converted.read, advance)


def _refused(
    result: TableLoad, rejects: Rejects, refused: list[Refused], read: int, advance: Advance
) -> None:
    for original, column, reason in refused:
        rejects.add(result.plan.source.name, _named(result.plan, original), column, reason)
    result.rejected += len(refused)
    result.read += read
    advance(read)


def _named(plan: TablePlan, row: tuple[object, ...]) -> dict[str, object]:
    return {column.source: value for column, value in zip(plan.columns, row, strict=True)}


def _copy(
    connection: PgConnection,
    statement: sql.Composed,
    rows: Sequence[Sequence[object]],
    payloads: list[bytes] | None,
    refused: dict[int, str],
    parentless: set[int] | None = None,
    offset: int = 0,
) -> list[int]:
    """COPY ``rows`` under a savepoint; the indexes that loaded. A refused batch is split
    until each refused row is alone: ``refused`` gets its index and PostgreSQL's reason, and
    ``parentless`` its index too when the reason is a foreign key."""
    if not rows:
        return []
    try:
        with (
            connection.transaction(),
            connection.cursor() as cursor,
            cursor.copy(statement) as copy,
        ):
            if payloads is not None:  # encoded already (and hashed as encoded)
                copy.write(b"".join((SIGNATURE, *payloads, TRAILER)))
            else:
                for row in rows:
                    copy.write_row(row)
    except _ROW_ERRORS as error:
        if len(rows) == 1:
            refused[offset] = _reason(error)
            if parentless is not None and isinstance(error, psycopg.errors.ForeignKeyViolation):
                parentless.add(offset)
            return []
        half = len(rows) // 2
        first, second = (None, None) if payloads is None else (payloads[:half], payloads[half:])
        return _copy(connection, statement, rows[:half], first, refused, parentless, offset) + (
            _copy(connection, statement, rows[half:], second, refused, parentless, offset + half)
        )
    return list(range(offset, offset + len(rows)))


def _reason(error: psycopg.Error) -> str:
    """PostgreSQL's message and its detail, on one line (the COPY context left out)."""
    diag = error.diag
    parts = [diag.message_primary or str(error).splitlines()[0], diag.message_detail]
    return ": ".join(part for part in parts if part)


def _stored(connection: PgConnection, plan: TablePlan) -> tuple[int, int]:
    return stored_checksum(connection, plan, binary=binary_types(plan) is not None)


def stored_after(connection: PgConnection, result: TableLoad) -> tuple[int, int]:
    """What the load added to the table: its count and checksum now, less those before."""
    count, total = _stored(connection, result.plan)
    return count - result.before[0], total - result.before[1]


def source_rows(source: sqlite3.Connection, plan: TablePlan) -> int:
    return count_rows(source, plan.source.name)

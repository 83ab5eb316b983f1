"""A large table converted on every core: worker processes read their own ranges of rowids
from the SQLite file (read-only), convert, encode and hash them, and hand back one block of
COPY bytes each, with the count and the sum of hashes; the main process only sends the blocks.

For the first, streamed COPY of a table whose columns all have a binary form. A refused row
sends the table to the batch-by-batch load, which runs in the main process, as do small tables
and tables without rowids. Workers ignore Ctrl-C (the main process stops them) and end when
the main process is gone, however it went.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.sqlite_import.binary import encoder, rows_hash
from migrail.sqlite_import.conversions import conversion
from migrail.sqlite_import.rows import Refused, convert_rows
from migrail.sqlite_import.source import open_read_only, quote_name

if TYPE_CHECKING:
    from migrail.sqlite_import.catalog import TargetColumn
    from migrail.sqlite_import.matching import TablePlan
    from migrail.sqlite_import.source import SourceColumn

# Below this many rows a table is not worth starting processes for.
PARALLEL_FROM = 50_000
_AHEAD = 3  # batches in flight per worker: enough to keep them busy, few enough for memory


@dataclass(frozen=True)
class Block:
    """One range of rows: read, encoded for COPY (``data``), counted, hashed, refused."""

    read: int
    data: bytes
    rows: int
    total: int
    refused: list[Refused]


@dataclass(frozen=True)
class _Spec:
    path: str
    table: str
    columns: tuple[tuple[SourceColumn, TargetColumn, str | None, str | None], ...]


def workers() -> int:
    """How many worker processes: the cores this process may use, at most 4."""
    return min(4, len(os.sched_getaffinity(0)))


def usable(source: sqlite3.Connection, plan: TablePlan, rows: int) -> bool:
    """Whether the table is large enough, has rowids, and the machine more than one core."""
    if rows < PARALLEL_FROM or workers() < 2:
        return False
    try:
        source.execute(f"SELECT rowid FROM {quote_name(plan.source.name)} LIMIT 1").fetchall()
    except sqlite3.OperationalError:  # WITHOUT ROWID: no ranges to share out
        return False
    return True


def blocks(
    path: Path, source: sqlite3.Connection, plan: TablePlan, batch: int
) -> Generator[Block, None, None]:
    """The table's blocks, in rowid order, converted by worker processes."""
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    spec = _Spec(
        str(path),
        plan.source.name,
        tuple((plan.source.column(c.source), c.target, c.reading, c.zone) for c in plan.columns),
    )
    count = workers()
    with _ctrl_c_held():
        pool = ProcessPoolExecutor(
            count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(spec, os.getpid()),
        )
    try:
        pending: deque[Future[Block]] = deque()
        for start, end in ranges(source, plan.source.name, batch):
            with _ctrl_c_held():  # submit starts the workers
                pending.append(pool.submit(_convert, start, end))
            if len(pending) >= count * _AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """SIGINT held back while processes start: they are born with it blocked, until their
    initializer ignores it. A terminal's Ctrl-C goes to the whole process group, and a worker
    still importing would print its KeyboardInterrupt traceback over the main process's one
    line; the main process gets it as soon as it is released. Blocked in this thread only, it
    may still reach another one, whose handler Python runs here all the same: the handler is
    swapped too (``shielded``), or a Ctrl-C landing between a worker's start and the data it is
    sent leaves it to die on an empty pipe ("EOFError: Ran out of input")."""
    from migrail.core.signals import shielded

    with shielded():
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def ranges(
    source: sqlite3.Connection, table: str, batch: int
) -> Generator[tuple[int, int | None], None, None]:
    """Rowid ranges of ``batch`` rows each (the last open-ended), stepped by rows, not by
    values: keys taken from a clock or a hash leave rowids far apart, and a range per
    ``batch`` values would then be billions of empty ones."""
    name = quote_name(table)
    row = source.execute(f"SELECT min(rowid) FROM {name}").fetchone()
    start = None if row is None else row[0]
    step = f"SELECT rowid FROM {name} WHERE rowid >= ? ORDER BY rowid LIMIT 1 OFFSET ?"
    while start is not None:
        following = source.execute(step, (start, batch)).fetchone()
        end = None if following is None else int(following[0])
        yield int(start), end
        start = end


_state: dict[str, Any] = {}


def _start(spec: _Spec, parent: int) -> None:
    """A worker's setup: its own read-only connection and the table's conversions."""
    from zoneinfo import ZoneInfo

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    conversions = [
        conversion(source, target, reading, ZoneInfo(zone) if zone else None)
        for source, target, reading, zone in spec.columns
    ]
    names = [source.name for source, *_ in spec.columns]
    _state.update(
        sqlite=open_read_only(Path(spec.path)),
        conversions=conversions,
        names=names,
        encode=encoder([target.base for _, target, *_ in spec.columns]),
        query=f"SELECT {', '.join(map(quote_name, names))} FROM {quote_name(spec.table)}"
        " WHERE rowid >= ? AND rowid < ?",
    )


def _end_with(parent: int) -> None:
    """End this worker once its parent is gone (killed, say): nothing else would."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _convert(start: int, end: int | None) -> Block:
    query: str = _state["query"]
    if end is None:
        rows = _state["sqlite"].execute(query.removesuffix(" AND rowid < ?"), (start,)).fetchall()
    else:
        rows = _state["sqlite"].execute(query, (start, end)).fetchall()
    good, _, refused = convert_rows(rows, _state["names"], _state["conversions"])
    payloads = _state["encode"](good)
    return Block(len(rows), b"".join(payloads), len(payloads), rows_hash(payloads), refused)

"""The worker processes' share of a large table, on rowids as real files have them."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from migrail.sqlite_import import parallel
from migrail.sqlite_import.catalog import TargetColumn, TargetTable
from migrail.sqlite_import.mapping import ImportMap
from migrail.sqlite_import.matching import match
from migrail.sqlite_import.source import open_read_only, read_tables
from testing.sqlite import sqlite_file

# Keys from a clock (snowflake ids): rowids 10**15 apart from the first ones.
SPARSE = [(i, f"e{i}") for i in range(1, 26)] + [(10**15 * i, f"s{i}") for i in range(1, 26)]
EVENTS = TargetTable(
    "public",
    "events",
    (
        TargetColumn("id", "bigint", "int8", True, False, False),
        TargetColumn("name", "text", "text", True, False, False),
    ),
    (),
)


def test_sparse_rowids_make_as_many_ranges_as_batches_of_rows(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "sparse.db",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        {"events": SPARSE},
    )
    source = open_read_only(path)
    assert list(parallel.ranges(source, "events", 20)) == [
        (1, 21),
        (21, 10**15 * 16),
        (10**15 * 16, None),
    ]
    plan = match(read_tables(source), {"events": EVENTS}, ImportMap()).tables[0]
    blocks = list(parallel.blocks(path, source, plan, 20))
    source.close()
    assert [block.rows for block in blocks] == [20, 20, 10]
    assert all(not block.refused for block in blocks)


def test_a_table_without_rows_makes_no_range(tmp_path: Path) -> None:
    path = sqlite_file(tmp_path / "empty.db", "CREATE TABLE events (id INTEGER PRIMARY KEY)")
    source = open_read_only(path)
    assert list(parallel.ranges(source, "events", 20)) == []
    source.close()


def test_ctrl_c_reaching_another_thread_waits_until_the_workers_are_started() -> None:
    """While workers start, SIGINT is blocked in the main thread; one that reaches another
    thread (a terminal's Ctrl-C goes to the whole process group, and the kernel picks any
    thread that takes it) has its handler run in the main thread all the same. It is held
    until the block ends, not raised between a worker's start and the data sent to it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    started, done = threading.Event(), threading.Event()
    other = threading.Thread(target=lambda: (started.set(), done.wait(10)))
    other.start()
    started.wait(5)
    finished = False
    try:
        with pytest.raises(KeyboardInterrupt), parallel._ctrl_c_held():
            signal.pthread_kill(other.ident or 0, signal.SIGINT)
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:  # bytecodes run: the handler would run here
                sum(range(100))
            finished = True
        assert finished
    finally:
        done.set()
        other.join()
        signal.signal(signal.SIGINT, previous)

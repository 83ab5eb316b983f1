"""What a revision does to the tables that existed before it, measured while it runs.

Inside each revision's transaction (at its end, before COMMIT), one query reads ``pg_locks``
joined to ``pg_class``: the locks the revision holds, each locked relation's ``relfilenode`` (a
rewrite gives a relation new files), the table each index belongs to, and each table's
sequential scans in this transaction (``pg_stat_get_xact_numscans``). Every relation a revision
creates, changes or scans under a lock is locked by it, so reading only locked relations sees all
of it, at a cost that does not grow with the schema. Measured, not guessed from SQL: what no
static linter can see. Locks taken and released outside the transaction (an autocommit block)
are not in it.

Each pre-existing table the revision locked gets one class (``classify``), the first that fits:

- ``rewrite``: the table's relfilenode changed;
- ``write-blocking-index-build``: an index on it was built (or rebuilt) under a lock that
  blocks writes;
- ``scan-under-exclusive``: a lock that blocks writes held while the table was scanned whole
  (``SET NOT NULL``, a validating constraint, a type change that checks every row);
- ``exclusive-held-long``: ACCESS EXCLUSIVE held by a transaction that ran for a second or
  more: whatever the change, the lock is held until COMMIT (a backfill or a sleep after an
  ``ALTER TABLE``), and it would be held longer on production's data than on sample rows;
- ``metadata-only``: ACCESS EXCLUSIVE, briefly, for a change of the catalog alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Strongest first, as PostgreSQL names them in pg_locks.
_MODES = (
    "AccessExclusiveLock",
    "ExclusiveLock",
    "ShareRowExclusiveLock",
    "ShareLock",
    "ShareUpdateExclusiveLock",
    "RowExclusiveLock",
    "RowShareLock",
    "AccessShareLock",
)
# The modes that conflict with ROW EXCLUSIVE: while one is held, INSERT, UPDATE and DELETE wait.
_BLOCKS_WRITES = frozenset(_MODES[:4])
_BOOKKEEPING = ("alembic_version",)  # its table and its index: migrail's own record
_TABLES = ("r", "m", "p")
# A revision's transaction this long (in staging, on sample rows) holds its ACCESS EXCLUSIVE
# locks too long to be called brief; a change of the catalog alone takes milliseconds.
LONG_HOLD_SECONDS = 1.0

# One row per relation the transaction holds a lock on: enough to tell what happened to it.
_LOCKED = (
    "SELECT c.oid::bigint, c.relname, c.relkind::text, c.relfilenode::bigint,"
    " coalesce(i.indrelid, 0)::bigint, pg_stat_get_xact_numscans(c.oid),"
    " array_agg(l.mode::text)"
    " FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_index i ON i.indexrelid = c.oid"
    " WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND c.relkind IN ('r', 'i', 'm', 'p') AND c.relpersistence <> 't'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'migrail')"
    " GROUP BY c.oid, c.relname, c.relkind, c.relfilenode, i.indrelid"
)
# The same as one value of a select list (a JSON array of those rows), so that a caller sending a
# statement at the revision's end anyway can read it there (``Observer.sql``).
_LOCKED_ROWS = (
    "(SELECT coalesce(json_agg(json_build_array(oid, name, kind, node, indexed, scans, modes)),"
    f" '[]') FROM ({_LOCKED}) AS locked(oid, name, kind, node, indexed, scans, modes))"
)
_ALL = (
    "SELECT c.oid::bigint, c.relname, c.relkind::text, c.relfilenode::bigint FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'i', 'm', 'p') AND c.relpersistence <> 't'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'migrail')"
)


@dataclass
class Effects:
    """One revision's locks (strongest mode per table), rewrites, tables indexed and tables
    scanned, on pre-existing relations."""

    locks: dict[str, str] = field(default_factory=dict)
    rewrites: list[str] = field(default_factory=list)  # tables and indexes given new files
    indexed: list[str] = field(default_factory=list)  # tables an index was built on
    scanned: list[str] = field(default_factory=list)  # tables scanned whole
    seconds: float = 0.0  # how long the revision's transaction ran: its locks were held as long

    def classify(self) -> dict[str, str]:
        """Each locked table's class (see the module's docstring); unclassed tables left out."""
        found = {}
        for table, mode in sorted(self.locks.items()):
            blocks_writes = _raw(mode) in _BLOCKS_WRITES
            if table in self.rewrites:
                found[table] = "rewrite"
            elif table in self.indexed and blocks_writes:
                found[table] = "write-blocking-index-build"
            elif table in self.scanned and blocks_writes:
                found[table] = "scan-under-exclusive"
            elif mode == "ACCESS EXCLUSIVE" and self.seconds >= LONG_HOLD_SECONDS:
                found[table] = "exclusive-held-long"
            elif mode == "ACCESS EXCLUSIVE":
                found[table] = "metadata-only"
        return found

    @property
    def rewrote_or_scanned(self) -> bool:
        """Whether it rewrote or scanned a table under a lock: what makes a type change slow."""
        return any(kind in ("rewrite", "scan-under-exclusive") for kind in self.classify().values())

    def summary(self) -> str:
        """``rewrite: ACCESS EXCLUSIVE on tasks, SHARE on tags``: each lock, with its class."""
        classes = self.classify()
        return ", ".join(
            f"{classes[table]}: {mode} on {table}" if table in classes else f"{mode} on {table}"
            for table, mode in sorted(self.locks.items())
        )


class Observer:
    """Follows a run of revisions on one connection: call ``during`` inside each revision."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        # Whether the revision ``during`` measured last may have made a table: it locked a
        # table that did not exist before it, or a partitioned one (a partition detached is a
        # table of its own). Locks show what the revision's last transaction did, no more.
        self.made_tables = False
        self.reset()

    def reset(self) -> None:
        """Take the relations as they are now as the ones that existed before."""
        self.take_stock()
        self.connection.rollback()  # the revisions begin their own transactions

    def take_stock(self) -> None:
        """``reset``, inside the caller's transaction (a revision's, at its end), left open."""
        from sqlalchemy import text

        rows = self.connection.execute(text(_ALL)).all()
        self.before = {
            int(oid): (str(name), str(kind), int(node)) for oid, name, kind, node in rows
        }
        major = (self.connection.dialect.server_version_info or (0,))[0]
        self.flushes = int(major) >= 15
        self._flush()

    def _flush(self) -> None:
        """Have this session's statistics flushed as its transaction ends: the counts of this
        transaction read are otherwise its own plus those not yet flushed from earlier ones
        (the sample rows' checks, the previous revision), which would look like scans."""
        from sqlalchemy import text

        if self.flushes:  # pg_stat_force_next_flush() is new in PostgreSQL 15
            self.connection.execute(text("SELECT pg_stat_force_next_flush()"))

    @property
    def sql(self) -> str:
        """What ``during`` reads, as select-list expressions: the locked relations, and the
        flush (``_flush``) asked in the same statement, which happens as the transaction ends."""
        return f"{_LOCKED_ROWS}, pg_stat_force_next_flush()" if self.flushes else _LOCKED_ROWS

    def during(self) -> Effects:
        """The current revision's effects so far; what it created counts from the next one on."""
        from sqlalchemy import text

        return self.effects(self.connection.execute(text(f"SELECT {self.sql}")).one())

    def effects(self, values: Sequence[Any]) -> Effects:
        """What ``during`` returns, from the values of ``sql`` read in the revision's
        transaction (by a caller that sends a statement there anyway)."""
        effects = Effects()
        # Read as before this revision, whatever order the rows come in: its own relations are
        # known from the next revision on (not copied whole per revision: it grows with the schema).
        previous = self.before
        now: dict[int, tuple[str, str, int]] = {}
        self.made_tables = False
        for oid, name, kind, node, table_oid, scans, modes in values[0]:
            known = previous.get(oid)
            if kind == "p" or (kind in _TABLES and known is None):
                self.made_tables = True
            now[oid] = (name, kind, node)
            if name.startswith(_BOOKKEEPING):
                continue
            if kind in _TABLES and known is not None:
                strongest = min((_MODES.index(m) for m in modes if m in _MODES), default=None)
                if strongest is not None:
                    effects.locks[name] = _plain(_MODES[strongest])
                if scans:
                    effects.scanned.append(name)
            if known is not None and known[2] != node:
                effects.rewrites.append(name)
            table = previous.get(table_oid)
            if kind != "i" or table is None or table[1] not in _TABLES:
                continue
            # A new index on an old table was built, unless it took over an old index's files:
            # a type change that keeps the index valid (varchar(20) to varchar(50)) makes the
            # index anew in the catalog on the old files, and builds nothing. A new relation
            # gets files numbered as its oid; reused ones keep their number.
            if (known is None and node == oid) or (known is not None and known[2] != node):
                effects.indexed.append(table[0])
        self.before.update(now)
        effects.rewrites.sort()
        return effects


def _plain(mode: str) -> str:
    """``AccessExclusiveLock`` -> ``ACCESS EXCLUSIVE``."""
    words: list[str] = []
    for char in mode.removesuffix("Lock"):
        if char.isupper() and words:
            words.append(" ")
        words.append(char.upper())
    return "".join(words)


def _raw(mode: str) -> str:
    """``ACCESS EXCLUSIVE`` -> ``AccessExclusiveLock``."""
    return "".join(word.capitalize() for word in mode.split()) + "Lock"

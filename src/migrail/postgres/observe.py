"""What a revision does to the tables that existed before it, measured while it runs.

Inside each revision's transaction (at its end, before COMMIT), ``pg_locks`` says which locks it
holds on relations that existed before it, and ``pg_class.relfilenode`` says which of them it
rewrote (a rewrite gives a relation new files). Measured, not guessed from SQL: what no static
linter can see. Locks taken and released outside the transaction (an autocommit block) are not
in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
_BOOKKEEPING = ("alembic_version",)  # its table and its index: migrail's own record


@dataclass
class Effects:
    """One revision's locks (strongest mode per table) and rewrites, on pre-existing relations."""

    locks: dict[str, str] = field(default_factory=dict)
    rewrites: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """ACCESS EXCLUSIVE on, or a rewrite of, a table that existed: it blocks readers."""
        return bool(self.rewrites) or "ACCESS EXCLUSIVE" in self.locks.values()

    def summary(self) -> str:
        parts = [f"{mode} on {table}" for table, mode in sorted(self.locks.items())]
        parts += [f"rewrites {table}" for table in self.rewrites]
        return ", ".join(parts)


class Observer:
    """Follows a run of revisions on one connection: call ``during`` inside each revision."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.reset()

    def reset(self) -> None:
        """Take the relations as they are now as the ones that existed before."""
        self.before = self._files()
        self.connection.rollback()  # the revisions begin their own transactions

    def during(self) -> Effects:
        """The current revision's effects so far; what it created counts from the next one on."""
        from sqlalchemy import text

        rows = self.connection.execute(
            text(
                "SELECT c.oid::bigint, c.relname, l.mode FROM pg_locks l"
                " JOIN pg_class c ON c.oid = l.relation"
                " WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted"
                " AND c.relkind IN ('r', 'm', 'p')"  # a table's indexes are locked with it
            )
        ).all()
        strongest: dict[str, str] = {}
        for oid, name, mode in rows:
            if oid in self.before and not name.startswith(_BOOKKEEPING) and mode in _MODES:
                held = strongest.get(name)
                if held is None or _MODES.index(mode) < _MODES.index(held):
                    strongest[name] = mode
        effects = Effects(locks={name: _plain(mode) for name, mode in strongest.items()})
        now = self._files()
        effects.rewrites = sorted(
            name
            for oid, (name, files) in self.before.items()
            if oid in now and now[oid][1] != files and not name.startswith(_BOOKKEEPING)
        )
        self.before = now
        return effects

    def _files(self) -> dict[int, tuple[str, int]]:
        from sqlalchemy import text

        rows = self.connection.execute(
            text(
                "SELECT c.oid::bigint, c.relname, c.relfilenode::bigint FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'i', 'm', 'p') AND c.relpersistence <> 't'"
                " AND n.nspname NOT IN"
                " ('pg_catalog', 'information_schema', 'pg_toast', 'migrail')"
            )
        ).all()
        return {int(oid): (str(name), int(node)) for oid, name, node in rows}


def _plain(mode: str) -> str:
    """``AccessExclusiveLock`` -> ``ACCESS EXCLUSIVE``."""
    words: list[str] = []
    for char in mode.removesuffix("Lock"):
        if char.isupper() and words:
            words.append(" ")
        words.append(char.upper())
    return "".join(words)

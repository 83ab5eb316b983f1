"""One import, start to end: lock, load every table, advance sequences, verify, then commit,
or roll everything back. The command around it only reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.sqlite_import.load import (
    Advance,
    PgConnection,
    Rejects,
    TableLoad,
    load_table,
    source_rows,
    stored_after,
)
from migrail.sqlite_import.target import (
    advance_sequences,
    holding_rows,
    lock_targets,
    one_transaction,
)
from migrail.sqlite_import.verify import scan_in_parallel

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from migrail.sqlite_import.matching import TablePlan

# Told each table as its load starts, with its row count: returns how to count rows done.
OnTable = Callable[[str, int], Advance]


@dataclass(frozen=True)
class Check:
    """A table verified: what was sent, and what PostgreSQL holds from this run."""

    load: TableLoad
    stored_rows: int
    stored_sum: int

    @property
    def counts_match(self) -> bool:
        return self.stored_rows == self.load.sent.rows

    @property
    def sums_match(self) -> bool:
        return self.stored_sum == self.load.sent.total


@dataclass
class Outcome:
    """The run: tables checked, sequences moved, and whether it was committed (and why not)."""

    checks: list[Check] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)
    rejected: int = 0
    committed: bool = False
    refusal: str = ""

    @property
    def verified(self) -> bool:
        return all(check.counts_match and check.sums_match for check in self.checks)


def data_version(source: sqlite3.Connection) -> int:
    """SQLite's count of commits made by other connections to the file, as this one sees it:
    the worker processes read through connections of their own, so no one snapshot covers a
    run, and a writer's commit in the middle would load some tables before it and some after."""
    return int(source.execute("PRAGMA data_version").fetchone()[0])


def run_import(
    connection: PgConnection,
    source: sqlite3.Connection,
    plans: Sequence[TablePlan],
    rejects: Rejects,
    *,
    path: Path | None,
    append: bool,
    accept_rejects: bool,
    on_table: OnTable,
) -> Outcome:
    """Load ``plans`` in their order, in one transaction, committed only when verified and
    when rejects are none or accepted. ``path``: the file ``source`` reads, for workers."""
    outcome = Outcome()
    version = data_version(source)
    with one_transaction(connection):
        lock_targets(connection, plans)
        if not append and (full := holding_rows(connection, plans)):
            raise FatalError(
                f"import is refused: {', '.join(full)} already hold(s) rows",
                hint="import into empty tables, or add --append to load beside what they hold",
            )
        try:
            loads = []
            for plan in plans:
                rows = source_rows(source, plan)
                advance = on_table(plan.target.name, rows)
                loads.append(
                    load_table(
                        connection,
                        source,
                        plan,
                        rejects,
                        append=append,
                        advance=advance,
                        path=path,
                        rows=rows,
                    )
                )
        finally:
            rejects.close()
        scan_in_parallel(connection)
        outcome.checks = [Check(load, *stored_after(connection, load)) for load in loads]
        outcome.rejected = rejects.count
        if not outcome.verified:
            outcome.refusal = "verification failed: what PostgreSQL holds is not what was sent"
        elif data_version(source) != version:
            outcome.refusal = (
                "the SQLite file changed while it was read (a writer committed to it): the rows "
                "loaded are no one moment's; stop the application that writes to it, and import "
                "again"
            )
        elif outcome.rejected and not accept_rejects:
            outcome.refusal = (
                f"{outcome.rejected} row(s) rejected, listed with their reasons in {rejects.path}"
            )
        else:
            # Only now: setval is not undone by a rollback, and a refused run changes nothing.
            outcome.sequences = advance_sequences(connection, plans)
            connection.commit()
            outcome.committed = True
    return outcome

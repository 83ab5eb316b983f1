"""``migrail import``: a legacy SQLite database loaded into the schema the migrations built."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.core.errors import FatalError
from migrail.core.signals import sigterm_raises
from migrail.core.urls import mask_url

if TYPE_CHECKING:
    import sqlite3

    from rich.console import Console
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config
    from migrail.sqlite_import.load import Advance, PgConnection
    from migrail.sqlite_import.matching import Match
    from migrail.sqlite_import.run import Outcome


def import_sqlite(
    config: Config,
    *,
    sqlite_url: str,
    env_name: str | None,
    map_path: Path | None,
    append: bool,
    accept_rejects: bool,
    rejects_path: Path | None,
    timezone: str | None,
    console: Console,
) -> int:
    """Match, show, load, verify: exit 1 (target unchanged) on a mismatch, on rejects not
    accepted, or when what was loaded is not what was sent."""
    from migrail.postgres.identity import refuse_mislabeled
    from migrail.postgres.target import connect_target, refuse_read_only
    from migrail.sqlite_import import catalog, mapping, matching, source

    environment, url = resolve_environment(config, env_name)
    if environment.protected:
        raise FatalError(
            f"import is refused: {environment.name} is protected, and changes only through an "
            "approved plan",
            hint="import into a database that is not protected (a copy), and release from there",
        )
    import_map = mapping.load_map(map_path, timezone)
    path = source.sqlite_path(sqlite_url)
    with (
        closing(source.open_read_only(path)) as sqlite,
        sigterm_raises(),
        connect_target(url, "import", lock_timeout=config.lock_timeout) as connection,
    ):
        refuse_read_only(connection, "import")
        refuse_mislabeled(connection, environment)
        output.info(
            console,
            f"Importing {path} into {environment.name} ({mask_url(url)}) at "
            f"{_revision(config, connection)}",
        )
        raw: PgConnection = connection.connection.driver_connection  # type: ignore[assignment]
        found = matching.match(source.read_tables(sqlite), catalog.read_target(raw), import_map)
        raw.rollback()
        _show_match(console, found)
        if found.problems:
            output.failure(console, f"{len(found.problems)} problem(s); nothing was written")
            output.items(console, found.problems)
            return 1
        try:
            outcome = _load(console, raw, sqlite, found, path, rejects_path, append, accept_rejects)
        finally:
            if raw.closed:  # by an interruption mid-COPY: nothing left for the pool to reset
                connection.invalidate()
    return _report(console, outcome)


def _revision(config: Config, connection: Connection) -> str:
    """The revision the target is at: its schema is the one loaded into. A database the
    migrations never built has no such schema."""
    from migrail.engine.executor import Executor

    executor = Executor(config)
    current = executor.current(connection)
    connection.rollback()
    if not current:
        raise FatalError(
            "import is refused: the database has no migration history, so no schema to load into",
            hint="build it first: migrail migrate",
        )
    pending = executor.pending(current)
    suffix = f", {len(pending)} revision(s) behind the head" if pending else ", the head"
    return executor.label(current) + suffix


def _show_match(console: Console, found: Match) -> None:
    for plan in found.tables:
        output.info(console, f"  {plan.source.name} -> {plan.target.name}")
        output.items(
            console,
            (f"  {c.source} -> {c.target.name}: {c.conversion.description}" for c in plan.columns),
        )
        output.items(console, (f"  note: {note}" for note in plan.notes))
    output.items(console, (f"note: {note}" for note in found.notes))


def _load(
    console: Console,
    raw: PgConnection,
    sqlite: sqlite3.Connection,
    found: Match,
    path: Path,
    rejects_path: Path | None,
    append: bool,
    accept_rejects: bool,
) -> Outcome:
    from rich.progress import Progress

    from migrail.sqlite_import.load import Rejects
    from migrail.sqlite_import.run import run_import

    rejects = Rejects(rejects_path or Path(f"{path.stem}.rejects.jsonl"))
    rejects.open()
    with (
        closing(rejects),
        Progress(console=output.rich_console(console), transient=True) as progress,
    ):

        def on_table(name: str, total: int) -> Advance:
            task = progress.add_task(name, total=total)
            return lambda rows: progress.advance(task, rows)

        return run_import(
            raw,
            sqlite,
            found.tables,
            rejects,
            path=path,
            append=append,
            accept_rejects=accept_rejects,
            on_table=on_table,
        )


def _report(console: Console, outcome: Outcome) -> int:
    from rich.table import Table

    table = Table("table", "SQLite rows", "loaded", "rejected", "rows", "checksum")
    for check in outcome.checks:
        load = check.load
        unchecked = load.plan.unchecked
        table.add_row(
            load.plan.target.name,
            str(load.read),
            str(load.sent.rows),
            str(load.rejected),
            "ok" if check.counts_match else f"MISMATCH: {check.stored_rows} stored",
            ("ok" if check.sums_match else "MISMATCH")
            + (f" (without {', '.join(unchecked)})" if unchecked else ""),
        )
    console.print(table)
    if outcome.sequences:
        output.info(console, f"Sequences advanced: {', '.join(outcome.sequences)}")
    if not outcome.committed:
        output.failure(console, f"{outcome.refusal}; the target is unchanged")
        if outcome.rejected and outcome.verified:
            output.info(
                console, "hint: fix them in the SQLite file, or rerun with --accept-rejects"
            )
        return 1
    loaded = sum(check.load.sent.rows for check in outcome.checks)
    note = f", {outcome.rejected} rejected (accepted)" if outcome.rejected else ""
    output.success(
        console, f"Imported {loaded} row(s) into {len(outcome.checks)} table(s){note}; verified"
    )
    return 0

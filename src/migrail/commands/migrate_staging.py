"""``migrail migrate-staging``: prove the whole history on a throwaway database, then drop it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail import output
from migrail.diffs import describe_all
from migrail.executor import Executor
from migrail.history import short_name

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.config import Config
    from migrail.staging import StagingReport


def migrate_staging(config: Config, *, console: Console) -> int:
    """Up, check the models, down, up again; 0 when all of it held, 1 when something failed."""
    from migrail.database import connect
    from migrail.ephemeral import ephemeral_server
    from migrail.models import load_metadata
    from migrail.staging import prove

    executor = Executor(config, load_metadata(config))
    if not executor.revisions():
        output.info(console, f"No revisions in {config.versions_dir}: nothing to prove")
        return 0
    with ephemeral_server() as server:
        output.info(
            console,
            f"Staging on a throwaway database: {server.description}, PostgreSQL {server.version}",
        )
        with server.database() as url, connect(url) as connection, _progress(console) as step:
            report = prove(executor, connection, step)
    _summary(console, report)
    return 0 if report.ok else 1


def _progress(console: Console):  # type: ignore[no-untyped-def]
    """A live line per phase on a terminal; silent in CI logs, where the summary says it all."""
    from contextlib import contextmanager

    from rich.progress import Progress

    @contextmanager
    def running():  # type: ignore[no-untyped-def]
        with Progress(console=console, transient=True) as progress:
            tasks: dict[str, int] = {}

            def step(phase: str, done: object) -> None:
                if phase not in tasks:
                    tasks[phase] = progress.add_task(phase)
                progress.advance(tasks[phase])
                progress.update(tasks[phase], description=f"{phase}: {short_name(done.revision)}")  # type: ignore[attr-defined]

            yield step

    return running()


def _summary(console: Console, report: StagingReport) -> None:
    from rich.table import Table

    table = Table(title="migrate-staging", title_justify="left")
    table.add_column("revision")
    for phase in ("upgrade", "downgrade", "upgrade again"):
        table.add_column(phase, justify="right")
    table.add_column("notes")
    failed = report.failure.revision.revision if report.failure and report.failure.revision else None
    for revision in report.revisions:
        cells = [_ms(report.timings[phase].get(revision.revision)) for phase in ("upgrade", "downgrade", "upgrade again")]
        note = ""
        if revision.revision == failed:
            note = f"[red]{report.failure.direction} failed[/red]"  # type: ignore[union-attr]
        elif revision.revision == report.floor:
            note = f"irreversible: {report.floor_reason}"
        table.add_row(short_name(revision), *cells, note)
    console.print(table)
    _verdicts(console, report)


def _verdicts(console: Console, report: StagingReport) -> None:
    if not report.models_checked:
        output.info(console, "models: check skipped (no [tool.migrail] metadata configured)")
    elif report.model_diffs:
        output.failure(console, "models and migrations disagree; at head the database differs from the models:")
        for line in describe_all(report.model_diffs):
            output.info(console, f"  {line}")
        output.info(console, "hint: generate the missing revision: nox -s generate -- NAME")
    elif report.model_diffs is not None:
        output.success(console, "models match the schema at head")
    if report.failure is not None:
        failure = report.failure
        output.failure(console, str(failure))
        if failure.statement:
            output.info(console, f"  statement: {failure.statement.strip()}")
        where = ", ".join(report.final_revision) if report.final_revision else "base (empty)"
        if report.final_revision is None:
            where = "unknown (could not be read back)"
        output.info(console, f"  the database was at revision {where} when it stopped")
        return
    floor = "base" if report.floor == "base" else f"{report.floor} (irreversible: {report.floor_reason})"
    output.success(console, f"round trip: down to {floor} and up to head again")


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.0f} ms"

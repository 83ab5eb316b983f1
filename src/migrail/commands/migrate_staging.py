"""``migrail migrate-staging``: prove the whole history on a throwaway database, then drop it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import generate_command
from migrail.core.errors import FatalError
from migrail.engine.executor import Executor
from migrail.engine.steps import Step
from migrail.history.revisions import display_name
from migrail.staging.run import Options

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config
    from migrail.staging.summary import Verdict


def migrate_staging(
    config: Config,
    *,
    console: Console,
    start: str = "base",
    step_roundtrip: bool = False,
    report: Path | None = None,
    data: bool = True,
    from_plan: Path | None = None,
    cache: bool = True,
) -> int:
    """Up, check the models, down, up again; 0 when all of it held, 1 when something failed.

    With ``report``, a run stopped by an error still writes the page, saying so: a CI job's
    summary then shows why there is no proof.
    """
    from migrail.staging.run import write_error_report

    try:
        options = Options(step_roundtrip, data, cache)
        return _migrate_staging(config, console, start, options, report, from_plan)
    except FatalError as error:
        if report is not None:
            write_error_report(report, error)
        raise


def _migrate_staging(
    config: Config,
    console: Console,
    start: str,
    options: Options,
    report: Path | None,
    from_plan: Path | None,
) -> int:
    from migrail.engine.models import load_metadata
    from migrail.release.plan import plan_start
    from migrail.staging.run import run_staging, start_revision, write_report
    from migrail.staging.summary import summary_table, verdicts

    executor = Executor(config, load_metadata(config))
    if not executor.revisions():
        output.info(console, f"No revisions in {config.versions_dir}: nothing to prove")
        return 0
    if from_plan is not None:
        start = plan_start(executor, from_plan)
    start = start_revision(executor, start)
    if start == executor.head:
        output.info(console, f"{executor.label((start,))} is the head: nothing newer to prove")
        return 0
    run = run_staging(
        executor,
        start,
        options,
        note=lambda message: output.info(console, message),
        progress=lambda: _progress(console),
    )
    if run.kept:
        output.info(
            console,
            f"template cache: kept the database at {executor.label(run.kept)} for next runs",
        )
    console.print(summary_table(run.proof))
    for verdict in verdicts(run.proof, executor.label, generate_command(executor.config.root)):
        _show(console, verdict)
    if report is not None:
        write_report(report, run.proof, executor)
        output.info(console, f"report written to {report}")
    return 0 if run.proof.ok else 1


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str, Step], None]]:
    """A live bar per phase on a terminal; nothing in CI logs, where the summary says it all."""
    from rich.progress import Progress, TaskID

    with Progress(console=output.rich_console(console), transient=True) as progress:
        bars: dict[str, TaskID] = {}

        def step(phase: str, done: Step) -> None:
            if phase not in bars:
                bars[phase] = progress.add_task(phase, total=None)
            bar = bars[phase]
            progress.update(bar, advance=1, description=f"{phase}: {display_name(done.revision)}")

        yield step


def _show(console: Console, verdict: Verdict) -> None:
    show = {"info": output.info, "success": output.success, "failure": output.failure}
    show[verdict.kind](console, verdict.message)
    output.items(console, verdict.items)

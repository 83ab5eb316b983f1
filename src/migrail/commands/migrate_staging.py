"""``migrail migrate-staging``: prove the whole history on a throwaway database, then drop it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import output
from migrail.engine.diffs import describe_all
from migrail.engine.executor import Executor
from migrail.engine.steps import Step
from migrail.history.revisions import short_name
from migrail.staging.proof import PHASES

Label = Callable[[Sequence[str]], str]

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config
    from migrail.core.errors import FatalError
    from migrail.postgres.ephemeral import Server
    from migrail.staging.proof import StagingReport
    from migrail.staging.templates import TemplateCache


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
    from migrail.core.errors import FatalError

    try:
        return _migrate_staging(
            config, console, start, step_roundtrip, report, data, from_plan, cache
        )
    except FatalError as error:
        if report is not None:
            _write_error_report(report, error)
        raise


def _migrate_staging(
    config: Config,
    console: Console,
    start: str,
    step_roundtrip: bool,
    report: Path | None,
    data: bool,
    from_plan: Path | None,
    cache: bool,
) -> int:
    from migrail.engine.models import load_metadata
    from migrail.postgres.ephemeral import TemplateGone, ephemeral_server

    executor = Executor(config, load_metadata(config))
    if not executor.revisions():
        output.info(console, f"No revisions in {config.versions_dir}: nothing to prove")
        return 0
    if from_plan is not None:
        start = _plan_start(executor, from_plan)
    start = _start_revision(executor, start)
    if start == executor.head:
        output.info(console, f"{executor.label((start,))} is the head: nothing newer to prove")
        return 0
    options = _Options(step_roundtrip, data)
    with ephemeral_server() as server:
        output.info(
            console,
            f"Staging on a throwaway database: {server.description}, PostgreSQL {server.version}",
        )
        templates = _template_cache(console, executor, server, start, options, cache)
        cached = templates.longest() if templates is not None else 0
        try:
            proof, kept = _prove_on(console, server, executor, templates, cached, start, options)
        except TemplateGone:  # another run dropped it after it was found: go without it
            output.info(console, "template cache: its template was just dropped by another run")
            if templates is not None:
                templates.present.clear()  # so that this run makes them again
            proof, kept = _prove_on(console, server, executor, templates, 0, start, options)
    if kept:
        output.info(
            console, f"template cache: kept the database at {executor.label(kept)} for next runs"
        )
    _summary(console, proof, executor.label)
    if report is not None:
        _write_report(report, proof, executor, console)
    return 0 if proof.ok else 1


@dataclass(frozen=True)
class _Options:
    step_roundtrip: bool
    data: bool


def _prove_on(
    console: Console,
    server: Server,
    executor: Executor,
    templates: TemplateCache | None,
    cached: int,
    start: str,
    options: _Options,
) -> tuple[StagingReport, list[str]]:
    """One proof on a new database of ``server`` (a copy of the template at ``cached``, when
    not 0): the report, and the revisions whose templates it kept."""
    from migrail.staging.proof import prove
    from migrail.staging.sample_data import SampleData
    from migrail.staging.templates import RunDatabase

    if templates is not None and cached:
        start = templates.revisions[cached - 1]
        output.info(
            console,
            f"template cache: starting from a copy of the database at "
            f"{executor.label((start,))}, proven by an earlier run and unchanged since",
        )
    elif start != "base":
        output.info(
            console,
            f"built at {executor.label((start,))} (as deployed); proving only what is newer",
        )
    config = executor.config
    rows = SampleData(config.seeds_dir, shown=config.shown) if options.data else None
    copy_after = templates.copy_points(cached, options.step_roundtrip) if templates else []
    proof: StagingReport | None = None
    with server.database(templates.name(cached) if templates and cached else None) as url:
        run = RunDatabase(url, templates)
        try:
            with _progress(console) as step:
                proof = prove(
                    executor,
                    run.connection,
                    step,
                    start,
                    options.step_roundtrip,
                    rows,
                    cloned=bool(cached),
                    copy_after=copy_after,
                    copy=run.copy if templates is not None else None,
                )
        finally:
            run.close()
            # Still inside the run: its lock keeps sweeps of other runs off the copies.
            kept = _settle(templates, proof)
    return proof, kept


def _template_cache(
    console: Console,
    executor: Executor,
    server: Server,
    start: str,
    options: _Options,
    wanted: bool,
) -> TemplateCache | None:
    """The template cache for this run, or ``None`` (and why not, said) where it has none."""
    import alembic
    import sqlalchemy

    import migrail
    from migrail.history.revisions import is_linear
    from migrail.staging.templates import files_content, template_cache

    off = None
    if not wanted:
        off = "off (--no-cache)"
    elif start != "base":
        off = "not used when building at a given revision"
    elif not is_linear(executor.revisions()):
        off = "not used for a history with branches"
    elif not server.persistent:
        off = (
            "off: this private cluster lives for one run "
            "(MIGRAIL_KEEP_WARM=1 or MIGRAIL_ADMIN_URL keep a server, and templates, between runs)"
        )
    if off is not None:
        output.info(console, f"template cache: {off}")
        return None
    config = executor.config
    settings = (
        f"data={options.data} step={options.step_roundtrip} server={server.version}"
        f" migrail={migrail.__version__}"
        f" lock_timeout={config.lock_timeout} statement_timeout={config.statement_timeout}"
        f" alembic={alembic.__version__} sqlalchemy={sqlalchemy.__version__}\n"
    ).encode() + (files_content(config.seeds_dir) if options.data else b"")
    return template_cache(server.admin_url, executor, settings)


def _settle(templates: TemplateCache | None, proof: StagingReport | None) -> list[str]:
    """Keep the run's copies as templates when it proved the history; otherwise drop them.
    The revisions whose templates were kept."""
    if templates is None:
        return []
    if proof is None or not proof.history_proven:
        templates.discard()
        return []
    return [templates.revisions[position - 1] for position in templates.keep()]


def _write_report(path: Path, proof: StagingReport, executor: Executor, console: Console) -> None:
    """The Markdown report, with each proven revision's lint findings (squawk and migrail's)."""
    from migrail.core.errors import FatalError
    from migrail.lint.linter import lint_history
    from migrail.staging.staging_markdown import render

    findings, lint_error = None, None
    try:
        proven = {revision.revision for revision in proof.revisions}
        findings = [f for f in lint_history(executor).findings if f.revision in proven]
    except FatalError as exc:
        lint_error = exc.message
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(proof, executor.label, findings, lint_error), encoding="utf-8")
    except OSError as exc:
        raise FatalError(f"cannot write the report {path}: {exc.strerror}") from None
    output.info(console, f"report written to {path}")


def _write_error_report(path: Path, error: FatalError) -> None:
    """The page of a run that stopped on an error; best effort, the error is what matters."""
    from migrail.staging.staging_markdown import render_error

    with suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_error(error.message, error.hint), encoding="utf-8")


def _plan_start(executor: Executor, path: Path) -> str:
    """The revision a release plan starts from; refused when the plan is for another head."""
    from migrail.core.errors import FatalError
    from migrail.release.plan import load_plan

    plan = load_plan(path)
    if plan.to_revision != executor.head:
        raise FatalError(
            f"{path} takes {plan.environment} to {_label(executor, plan.to_revision)}, "
            f"but this checkout's head is {_label(executor, executor.head)}",
            hint="check out the commit the plan was made from, or plan again",
        )
    if len(plan.from_revision) > 1:
        raise FatalError(
            f"{path} starts from {len(plan.from_revision)} heads "
            f"({executor.label(plan.from_revision)}): staging builds from one revision",
        )
    return plan.from_revision[0] if plan.from_revision else "base"


def _label(executor: Executor, revision: str | None) -> str:
    return executor.label((revision,) if revision else ())


def _start_revision(executor: Executor, name: str) -> str:
    """The revision id ``--from`` names (id, unique prefix or file stem), or a usage error."""
    from migrail.core.errors import FatalError
    from migrail.history.revisions import find_revision, is_linear

    if name == "base":
        return name
    revisions = executor.revisions()
    if not is_linear(revisions):
        raise FatalError(
            "--from needs a history without branches: what comes after a revision is ambiguous",
            hint="merge the heads first (alembic merge), or prove the whole history",
        )
    found = find_revision(revisions, name)
    if found is None:
        known = ", ".join(short_name(r) for r in revisions[-5:])
        raise FatalError(
            f"--from {name}: no such revision in {executor.config.versions_dir}",
            hint=f"name a revision by its id or file name, e.g. one of: {known}",
        )
    return found.revision


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
            progress.update(bar, advance=1, description=f"{phase}: {short_name(done.revision)}")

        yield step


def _summary(console: Console, report: StagingReport, label: Label) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="migrate-staging", title_justify="left")
    table.add_column("revision")
    for phase in PHASES:
        table.add_column(phase, justify="right")
    table.add_column("locks and rewrites (measured)")
    table.add_column("notes")
    failure = report.failure
    for revision in report.revisions:
        note = ""
        if failure is not None and failure.revision is revision:
            note = f"[red]{failure.direction} failed[/red]"
        elif revision.revision == report.floor:
            note = f"irreversible: {report.floor_reason}"
        times = report.times(revision.revision)
        effects = report.effects.get(revision.revision)
        measured = escape(effects.summary()) if effects else ""
        if effects is not None and effects.flagged:
            measured = f"[yellow]{measured}[/yellow]"
        table.add_row(short_name(revision), *times, measured, note)
    console.print(table)
    _data_verdict(console, report)
    _locks_verdict(console, report)
    _step_verdict(console, report)
    _models_verdict(console, report)
    _history_verdict(console, report, label)


def _data_verdict(console: Console, report: StagingReport) -> None:
    """The rows the revisions met, and the tables that got none (they prove less)."""
    if report.data is None:
        output.info(console, "data: none (--no-data): the revisions ran on empty tables")
        return
    output.info(console, f"data: {report.data.summary()}")
    output.items(console, report.data.problems())


def _locks_verdict(console: Console, report: StagingReport) -> None:
    """Name the revisions that block a live table: squawk may have passed them."""
    for revision in report.revisions:
        effects = report.effects.get(revision.revision)
        if effects is not None and effects.flagged:
            output.info(
                console,
                f"flagged: {short_name(revision)} {effects.summary()} "
                "(it blocks reads and writes of a table that existed before it)",
            )


def _step_verdict(console: Console, report: StagingReport) -> None:
    """Name each revision whose downgrade did not give back the schema its upgrade started from."""
    if not report.step_round_trip:
        return
    by_id = {revision.revision: revision for revision in report.revisions}
    for rev, reason in report.step_skipped.items():
        output.info(console, f"step round trip: skipped {short_name(by_id[rev])} ({reason})")
    for rev, lines in report.step_diffs.items():
        output.failure(
            console,
            f"{short_name(by_id[rev])}: its downgrade does not restore the schema "
            "from before its upgrade (+ left behind, - removed):",
        )
        output.items(console, lines)
    if not report.step_diffs and report.failed_phase not in ("build", "upgrade"):
        output.success(console, "step round trip: every downgrade restored the schema")


def _models_verdict(console: Console, report: StagingReport) -> None:
    if not report.models_configured:
        output.info(console, "models: check skipped (no [tool.migrail] metadata configured)")
    elif report.model_diffs is None:
        output.info(console, "models: not checked (the upgrade failed first)")
    elif report.model_diffs:
        output.failure(console, "the models and the schema at head differ:")
        output.items(console, describe_all(report.model_diffs))
        output.info(console, "hint: write the missing revision: nox -s generate -- NAME")
    else:
        output.success(console, "models match the schema at head")


def _history_verdict(console: Console, report: StagingReport, label: Label) -> None:
    failure = report.failure
    if failure is None:
        floor = report.floor_description(label)
        output.success(console, f"round trip: down to {floor} and up to head again")
        return
    if report.failed_phase == "build":
        output.failure(console, f"could not build the database at {label((report.start,))}:")
    output.failure(console, str(failure))
    if failure.statement:
        output.info(console, f"  statement: {failure.statement.strip()}")
    if report.data is not None and report.data.rows and report.failed_phase != "build":
        output.info(
            console,
            "  the tables held sample rows, as production's do (--no-data runs without them)",
        )
    where = "an unknown revision (it could not be read back)"
    if report.final_revision is not None:
        where = f"revision {label(report.final_revision)}" if report.final_revision else "base"
    output.info(console, f"  the database was at {where} when it stopped")

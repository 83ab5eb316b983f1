"""``migrail migrate-staging``: prove the whole history on a throwaway database, then drop it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.core import output
from migrail.core.config import generate_command
from migrail.core.errors import FatalError
from migrail.staging.run import Options

# Imported where used: a run that answers from a receipt (``staging.receipts``) needs none of
# the engine.
if TYPE_CHECKING:
    from alembic.script import Script
    from rich.console import Console

    from migrail.core.config import Config
    from migrail.core.environ_reads import Reads
    from migrail.engine.executor import Executor
    from migrail.engine.steps import Step
    from migrail.staging.proof import PhaseEvents
    from migrail.staging.run import StagingRun, Version
    from migrail.staging.scope import StepMode
    from migrail.staging.summary import Verdict


def migrate_staging(
    config: Config,
    *,
    console: Console,
    start: str = "base",
    step: StepMode = "branch",
    report: Path | None = None,
    data: bool = True,
    from_plan: Path | None = None,
    cache: bool = True,
    allow_version_mismatch: bool = False,
) -> int:
    """Up, check the models, down, up again; 0 when all of it held, 1 when something failed.
    ``step``: which revisions are also undone and redone on their own (``staging.scope``).

    With ``report``, a run stopped by an error still writes the page, saying so: a CI job's
    summary then shows why there is no proof. A staging server of another major version than
    production's (``pg_version``) fails the run in CI unless ``allow_version_mismatch``.
    """
    from migrail.staging.run import write_error_report

    try:
        options = Options(step, data, cache)
        receipt = match = None
        if start == "base" and from_plan is None and report is None and cache:
            common = _common_inputs(config)
            if common is not None:
                receipt = _receipt_key(config, options, allow_version_mismatch, common)
                answered = _recorded_answer(config, receipt)
                if answered is not None:
                    return answered
                match = _match_key(config, common)
        from migrail.core.environ_reads import recording
        from migrail.engine.usercode import running_here

        # What the answer depends on besides the files: what the project's code reads of the
        # environment (a receipt or a template records it), not what migrail reads meanwhile.
        with recording(running_here) as reads:
            return _migrate_staging(
                config,
                console,
                start,
                options,
                report,
                from_plan,
                allow_version_mismatch,
                receipt,
                reads,
                match,
            )
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
    allow_version_mismatch: bool,
    receipt: str | None = None,
    reads: Reads | None = None,
    match: str | None = None,
) -> int:
    from migrail.engine.executor import Executor
    from migrail.engine.models import load_metadata
    from migrail.release.plan import plan_start
    from migrail.staging.run import run_staging, start_revision, write_report
    from migrail.staging.summary import summary_table, verdicts

    # The revision files are imported as the run needs them (``run_staging`` imports those it
    # proves, before any runs): from a template, the older ones never are. The report lints
    # every revision, which takes them all.
    executor = Executor(config, load_metadata(config), needed=() if report is None else None)
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
    said = verdicts(run.proof, executor.label, generate_command(executor.config.root))
    for verdict in said:
        _show(console, verdict)
    version = _version_check(config, console, run.server_version, allow_version_mismatch)
    if report is not None:
        write_report(report, run.proof, executor, version)
        output.info(console, f"report written to {report}")
    code = 0 if run.proof.ok and not (version and version.fails) else 1
    if match is not None and reads is not None and not reads.whole:
        _record_models_match(executor, run, match, reads)
    if receipt is not None and reads is not None and run.head_template is not None and code == 0:
        from migrail.staging import receipts

        if reads.whole:  # it walked the environment: every variable counts, and none is stable
            return code

        lines = receipts.plain_lines(said)
        if version is not None:
            lines.append(f"warning: {version.difference}")
        admin_url, template = run.head_template
        head = executor.label((executor.head,)) if executor.head else ""
        root = executor.config.root
        receipts.record(
            admin_url, template, receipt, head, lines, run.extensions, reads.seen, root=root
        )
    return code


def _common_inputs(config: Config) -> str | None:
    """The digest of what every answer over the history stands on (``receipts``); ``None``
    where it cannot all be read, or where no warm cluster keeps receipts."""
    from migrail.postgres.ephemeral import keep_warm
    from migrail.staging import receipts

    if not keep_warm():
        return None
    try:
        return receipts.common_inputs(config)
    except (OSError, FatalError):
        return None


def _receipt_key(
    config: Config, options: Options, allow_version_mismatch: bool, common: str
) -> str | None:
    """The key of this run's inputs (``receipts``); ``None`` where they cannot all be read."""
    from migrail.staging import receipts

    try:
        return receipts.receipt_key(config, options, allow_version_mismatch, common)
    except (OSError, FatalError):
        return None


def _match_key(config: Config, common: str) -> str | None:
    """The key under which "the models match the head" answers ``generate``, where the run
    compares the models."""
    from migrail.staging.generate_receipt import match_key

    return match_key(common) if config.metadata is not None else None


def _record_models_match(executor: Executor, run: StagingRun, key: str, reads: Reads) -> None:
    """The model check found the models match the schema at head, which a template keeps:
    ``generate``, with these inputs, may say so without comparing again, where its comparison
    is this one whatever the new revision is named (``generate_receipt``)."""
    from migrail.history.file_names import project_template
    from migrail.staging import generate_receipt

    proof = run.proof
    if run.at_head is None or executor.head is None or proof.model_diffs != []:
        return
    if not generate_receipt.any_name(executor.known_env_options(), executor.metadata):
        return
    ids = [revision.revision for revision in executor.revisions()]
    found = project_template(executor.config)
    template = found.template if found is not None else None
    named = generate_receipt.next_name(executor.config, ids, template)
    head = executor.label((executor.head,))
    root = executor.config.root
    generate_receipt.record(run.at_head, key, head, run.extensions, reads.seen, named, root=root)


def _recorded_answer(config: Config, key: str | None) -> int | None:
    """Print the answer an earlier run with exactly these inputs recorded, and return its exit
    code; ``None`` when there is none (the full run then answers)."""
    from migrail.staging import receipts

    answer = receipts.recorded_answer(config, key) if key is not None else None
    if answer is None:
        return None
    receipts.say(answer, "proved this history")
    return 0


def _version_check(
    config: Config, console: Console, server_version: str, allowed: bool
) -> Version | None:
    """Say when staging's PostgreSQL is not production's major version; that fails the run in
    CI, unless allowed."""
    from migrail.staging.run import Version, in_ci, version_difference

    difference = version_difference(config.lint.pg_version, server_version)
    if difference is None:
        return None
    if in_ci() and not allowed:
        output.failure(
            console,
            difference,
            hint="run staging on production's version (MIGRAIL_ADMIN_URL to a "
            "postgres:<version> server), or accept the difference: --allow-version-mismatch",
        )
        return Version(difference, fails=True)
    output.warning(console, difference)
    return Version(difference, fails=False)


@contextmanager
def _progress(console: Console) -> Iterator[PhaseEvents]:
    """A bar per phase on a terminal, naming the revision running now with its count
    (``upgrade 7/12: 0007_slow``); a finished phase is marked done. Nothing in CI logs, where
    the summary says it all."""
    from rich.progress import Progress

    with Progress(console=output.rich_console(console), transient=True) as progress:
        yield _PhaseBars(progress)


class _PhaseBars:
    """``PhaseEvents`` shown as rich progress bars."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.bars: dict[str, Any] = {}
        self.order: dict[str, dict[str, int]] = {}  # each phase's revisions: their place in it
        self.names: dict[str, list[str]] = {}
        self.count: dict[str, int] = {}

    def begin(self, phase: str, revisions: Sequence[Script]) -> None:
        from migrail.history.revisions import display_name

        self.order[phase] = {revision.revision: at for at, revision in enumerate(revisions)}
        self.names[phase] = [display_name(revision) for revision in revisions]
        self.bars[phase] = self.progress.add_task(self._running(phase, 0), total=len(revisions))

    def done(self, phase: str, step: Step) -> None:
        self.count[phase] = self.count.get(phase, 0) + 1
        at = max(self.order[phase].get(step.revision.revision, -1) + 1, self.count[phase])
        self.progress.update(self.bars[phase], completed=at, description=self._running(phase, at))

    def _running(self, phase: str, at: int) -> str:
        names = self.names[phase]
        if at >= len(names):
            return f"{phase}: done ({len(names)})"
        return f"{phase} {at + 1}/{len(names)}: {names[at]}"


def _show(console: Console, verdict: Verdict) -> None:
    show = {"info": output.info, "success": output.success, "failure": output.failure}
    show[verdict.kind](console, verdict.message)
    output.items(console, verdict.items)

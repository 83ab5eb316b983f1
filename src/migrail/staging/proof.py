"""The proof ``migrate-staging`` runs on a throwaway database, as data: what ran, what failed.

Up from base (or from the deployed revision) to head one revision at a time, the models compared
with the result, down again (no lower than the newest revision declared irreversible), and up to
head again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrail.engine.executor import Executor
from migrail.engine.steps import MigrationFailed, Step
from migrail.history.revisions import irreversible_reason, is_linear, parents, round_trip_floor
from migrail.postgres.observe import Effects, Observer
from migrail.staging.sample_data import DataReport, SampleData

if TYPE_CHECKING:
    from alembic.script import Script
    from sqlalchemy.engine import Connection

PHASES = ("upgrade", "downgrade", "upgrade again")


@dataclass
class StagingReport:
    """Everything the summary shows; ``ok`` is whether the history proved itself."""

    revisions: list[Script]
    timings: dict[str, dict[str, float]] = field(default_factory=lambda: {p: {} for p in PHASES})
    models_configured: bool = True
    model_diffs: list[Any] | None = None  # None: the check was not reached
    model_sql: str = ""  # what would make the schema match the models, when they differ
    start: str = "base"  # the revision the database was built at before the proof
    floor: str = "base"
    floor_reason: str | None = None
    failure: MigrationFailed | None = None
    failed_phase: str | None = None
    final_revision: tuple[str, ...] | None = None
    # Measured during the first upgrade: locks on, and rewrites of, tables that existed before.
    effects: dict[str, Effects] = field(default_factory=dict)

    # With --step-roundtrip: what each revision's downgrade failed to restore, and what was skipped.
    step_round_trip: bool = False
    step_diffs: dict[str, list[str]] = field(default_factory=dict)
    step_skipped: dict[str, str] = field(default_factory=dict)

    # The sample rows the tables were given before each revision; None: staging ran without.
    data: DataReport | None = None
    cloned: bool = False  # start is a template cache's copy: revisions up to it proven before

    @property
    def ok(self) -> bool:
        return self.history_proven and not self.model_diffs

    @property
    def history_proven(self) -> bool:
        """Every revision went up, down and up again (and, stepwise, restored its schema)."""
        return self.failure is None and not self.step_diffs

    def times(self, revision: str) -> list[str]:
        """Each phase's time for ``revision``, as ``12 ms``; empty where it did not run."""
        seconds = (self.timings[phase].get(revision) for phase in PHASES)
        return ["" if s is None else f"{s * 1000:.0f} ms" for s in seconds]

    def floor_description(self, label: Callable[[Sequence[str]], str]) -> str:
        """Where the round trip went down to: ``base``, or a revision and why no further."""
        floor = label((self.floor,))
        return floor if self.floor_reason is None else f"{floor} ({self.floor_reason})"


def prove(
    executor: Executor,
    connection: Connection,
    on_step: Callable[[str, Step], None] | None = None,
    start: str = "base",
    step_round_trip: bool = False,
    data: SampleData | None = None,
    *,
    cloned: bool = False,
    copy_after: Collection[str] = (),
    copy: Callable[[str], Connection] | None = None,
) -> StagingReport:
    """Run the whole proof on ``connection`` (an empty database) and report what happened.

    With ``start``, a revision id, the database is first built at ``start`` (untimed, as what is
    deployed) and only the newer revisions are proven, as production will apply them; the round
    trip then goes no lower than ``start``. With ``step_round_trip``, each revision is also
    undone and redone right after its upgrade, and the schema before it is compared with the
    schema after its downgrade. With ``data``, every table gets sample rows before each
    revision of the first upgrade (in the transaction of the revision before), so that revisions
    that fail only on tables with rows fail here.

    ``cloned``: the database is a copy of the template cache's at ``start``, with its rows.
    ``copy`` is called once the first upgrade reaches each revision of ``copy_after``, and
    returns the connection to go on with: the template cache copies the database there.
    """
    revisions = executor.revisions()
    if start != "base":
        older = {r.revision for r in executor.script.iterate_revisions(start, "base")}
        revisions = [r for r in revisions if r.revision not in older]
    report = StagingReport(
        revisions=revisions,
        models_configured=executor.metadata is not None,
        start=start,
        step_round_trip=step_round_trip,
        data=data.report if data is not None else None,
        cloned=cloned,
    )
    report.floor, report.floor_reason = round_trip_floor(revisions)
    if report.floor_reason is None:
        report.floor = start
    observer: Observer | None = None

    def fill(step: Step | None = None) -> None:
        if data is not None:
            data.fill(connection)

    def observe(step: Step) -> None:
        assert observer is not None
        report.effects[step.revision.revision] = observer.during()
        fill()  # after measuring: the rows are the next revision's, not this one's doing

    try:
        if start != "base":
            report.failed_phase = "build"
            executor.upgrade(connection, start)
            report.failed_phase = None
        if cloned and data is not None:
            data.adopt(connection)  # the template's tables have their rows already
        fill()
        connection.commit()
        observer = Observer(connection)  # after the build: its tables are the pre-existing ones
        watched = observer

        def upgrade(cb: Callable[[Step], None]) -> list[Step]:
            nonlocal connection
            if step_round_trip:
                steps = _step_by_step(executor, connection, report, cb, observe, fill, watched)
            else:
                steps = []
                for stop in [r.revision for r in revisions if r.revision in copy_after]:
                    steps += executor.upgrade(connection, stop, cb, in_transaction=observe)
                    if copy is not None and stop != executor.head:
                        connection = watched.connection = copy(stop)
                steps += executor.upgrade(connection, "heads", cb, in_transaction=observe)
            head = executor.head
            if copy is not None and head is not None and head in copy_after:
                connection = watched.connection = copy(head)
            return steps

        _phase(report, "upgrade", upgrade, on_step)
        if report.models_configured:
            report.model_diffs = executor.compare(connection)
            if report.model_diffs:
                report.model_sql = _missing_sql(executor, connection)
        _phase(
            report,
            "downgrade",
            lambda cb: executor.downgrade(connection, report.floor, cb),
            on_step,
        )
        _phase(
            report, "upgrade again", lambda cb: executor.upgrade(connection, "heads", cb), on_step
        )
    except MigrationFailed as failed:
        report.failure = failed
    report.final_revision = _read_back(executor, connection)
    return report


def _phase(
    report: StagingReport,
    phase: str,
    run: Callable[[Callable[[Step], None]], list[Step]],
    on_step: Callable[[str, Step], None] | None,
) -> None:
    def record(step: Step) -> None:
        report.timings[phase][step.revision.revision] = step.seconds
        if on_step is not None:
            on_step(phase, step)

    report.failed_phase = phase
    run(record)
    report.failed_phase = None


def _step_by_step(
    executor: Executor,
    connection: Connection,
    report: StagingReport,
    on_step: Callable[[Step], None],
    observe: Callable[[Step], None],
    fill: Callable[[Step], None],
    observer: Observer,
) -> list[Step]:
    """Each revision up, down and up again; a downgrade that does not restore the schema as it
    was before the upgrade (it leaves something behind, or removes more) is recorded."""
    from migrail.postgres.catalog import describe_difference, schema_facts

    if not is_linear(executor.revisions()):
        for revision in report.revisions:
            report.step_skipped[revision.revision] = "the history has branches"
        return executor.upgrade(connection, "heads", on_step, in_transaction=observe)
    steps: list[Step] = []
    for revision in report.revisions:
        before = schema_facts(connection)
        steps += executor.upgrade(connection, revision.revision, on_step, in_transaction=observe)
        reason = irreversible_reason(revision)
        if reason is not None:
            report.step_skipped[revision.revision] = reason
            continue
        executor.downgrade(connection, (parents(revision) or ("base",))[0])
        after = schema_facts(connection)
        if after != before:
            report.step_diffs[revision.revision] = describe_difference(before, after)
        executor.upgrade(connection, revision.revision, in_transaction=fill)
        observer.reset()  # undone and redone: the next revision's tables are new relations
    return steps


def _missing_sql(executor: Executor, connection: Connection) -> str:
    """The SQL of the revision the models are missing, as autogenerate would write it."""
    from migrail.engine.push import changes_sql, planned_changes

    assert executor.metadata is not None
    return changes_sql(planned_changes(connection, executor.metadata))


def _read_back(executor: Executor, connection: Connection) -> tuple[str, ...] | None:
    """The revision the database is really at, never assumed; ``None`` when it cannot be read."""
    try:
        connection.rollback()
        return executor.current(connection)
    except Exception:
        return None

"""The proof ``migrate-staging`` runs on a throwaway database, as data: what ran, what failed.

Up from base (or from the deployed revision) to head one revision at a time, the models compared
with the result, down again (undoing no revision declared irreversible, nor what it needs), and
up to head again. With the step round trip, each revision it names (by default those the branch
adds: ``scope``) is also undone and redone on its own (``stepwise``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from migrail.engine.executor import Executor
from migrail.engine.interrupts import RevisionInterrupted
from migrail.engine.revision_end import ReadAtEnd
from migrail.engine.steps import MigrationFailed, Step
from migrail.history.revisions import (
    irreversible_reason,
    is_linear,
    round_trip_floor,
    undo_order,
    upgrade_plan,
)
from migrail.postgres.observe import Effects, Observer
from migrail.staging.lock_policy import LockFinding
from migrail.staging.sample_data import DataReport, SampleData
from migrail.staging.stepwise import OUT_OF_COLUMN_NUMBERS, Hooks, round_trip_each

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
    # Those measurements judged by the lock policy (set by the run, which knows the config).
    locks: list[LockFinding] = field(default_factory=list)
    lock_timeout: str = ""  # what bounds a brief lock's wait, for the note that says so

    # The step round trip: the revisions it undid and redid (by default those the branch adds),
    # what it covered in words, what each downgrade failed to restore, the downgrades that
    # failed (or after which the upgrade, run again, failed), and what was skipped.
    stepped: frozenset[str] = frozenset()
    step_scope: str = ""
    step_diffs: dict[str, list[str]] = field(default_factory=dict)
    step_failures: dict[str, MigrationFailed] = field(default_factory=dict)
    step_skipped: dict[str, str] = field(default_factory=dict)

    # The sample rows the tables were given before each revision; None: staging ran without.
    data: DataReport | None = None
    cloned: bool = False  # start is a template cache's copy: revisions up to it proven before
    # Those revisions, when the template recorded what was proven of them (``earlier``): their
    # effects, floor and steps are merged in, and the verdicts speak of the whole history.
    earlier: list[Script] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.history_proven and not self.model_diffs and not self.lock_errors

    @property
    def lock_errors(self) -> list[LockFinding]:
        """What the lock policy fails the run for: measured, at ``error``, not allowed."""
        return [finding for finding in self.locks if finding.failing]

    @property
    def history_proven(self) -> bool:
        """Every revision went up, down and up again (and, stepwise, restored its schema)."""
        return self.failure is None and not self.step_broken

    @property
    def history(self) -> list[Script]:
        """The revisions the verdicts speak of: those proven before (``earlier``) and this run's."""
        return [*self.earlier, *self.revisions]

    @property
    def step_round_trip(self) -> bool:
        """Whether the step round trip undid and redid any revision of this run."""
        return bool(self.stepped)

    @property
    def step_broken(self) -> list[str]:
        """The revisions whose downgrade the step round trip found broken, oldest first."""
        broken = self.step_diffs.keys() | self.step_failures.keys()
        return [r.revision for r in self.history if r.revision in broken]

    @property
    def step_tried(self) -> int:
        """How many downgrades the step round trip ran (skipped ones and those after a failed
        upgrade not counted)."""
        reached = [r for r in self.history if r.revision in self.stepped]
        if self.failure is not None and self.failed_phase == "upgrade":
            ran = {r.revision for r in self.earlier} | self.timings["upgrade"].keys()
            reached = [r for r in reached if r.revision in ran]
        return len([r for r in reached if r.revision not in self.step_skipped])

    def step_outcome(self) -> tuple[Literal["info", "success", "failure"], str]:
        """The step round trip in one sentence, and its kind (``success``, ``failure`` or
        ``info``): success only for what it ran, with what it skipped or did not reach said,
        after what it took where that was not every revision (``the 2 revisions this branch
        adds (not on main): ...``)."""
        kind, message = self._step_outcome()
        if self.step_scope in ("", "every revision") or self.failed_phase == "build":
            return kind, message
        return kind, f"{self.step_scope}: {message}"

    def _step_outcome(self) -> tuple[Literal["info", "success", "failure"], str]:
        if self.failed_phase == "build":
            return "info", "not run (the database could not be built)"
        tried, broken = self.step_tried, len(self.step_broken)
        notes = []
        exhausted = sum(why == OUT_OF_COLUMN_NUMBERS for why in self.step_skipped.values())
        if len(self.step_skipped) > exhausted:
            notes.append(f"{len(self.step_skipped) - exhausted} skipped (declared irreversible)")
        if exhausted:
            notes.append(f"{exhausted} not judged ({OUT_OF_COLUMN_NUMBERS})")
        if self.failure is not None and self.failed_phase == "upgrade":
            unreached = len(self.stepped) - tried - len(self.step_skipped)
            notes.append(f"{unreached} not reached (the upgrade failed)")
        said = "".join(f"; {note}" for note in notes)
        if broken:
            return "failure", f"{broken} of {tried} downgrades broken{said}"
        if notes:
            stopped = self.failed_phase == "upgrade"
            return (
                "info" if stopped else "success",
                f"{tried} downgrade(s) restored the schema{said}",
            )
        if self.step_scope not in ("", "every revision"):  # the scope's words count them
            return "success", "every downgrade restored the schema"
        return "success", f"every downgrade restored the schema ({tried} revisions)"

    def times(self, revision: str) -> list[str]:
        """Each phase's time for ``revision``, as ``12 ms``; empty where it did not run."""
        seconds = (self.timings[phase].get(revision) for phase in PHASES)
        return ["" if s is None else f"{s * 1000:.0f} ms" for s in seconds]

    def floor_description(self, label: Callable[[Sequence[str]], str]) -> str:
        """Where the round trip went down to: ``base``, or a revision and why no further."""
        floor = label((self.floor,))
        return floor if self.floor_reason is None else f"{floor} ({self.floor_reason})"


class PhaseEvents(Protocol):
    """Told as each phase begins (the revisions it will run, in order) and as each revision of
    it is done: enough for a display to name the revision running now, with its count."""

    def begin(self, phase: str, revisions: Sequence[Script]) -> None: ...

    def done(self, phase: str, step: Step) -> None: ...


def prove(
    executor: Executor,
    connection: Connection,
    on_step: PhaseEvents | None = None,
    start: str = "base",
    stepped: Collection[str] = (),
    data: SampleData | None = None,
    *,
    cloned: bool = False,
    copy_after: Collection[str] = (),
    copy: Callable[[str], Connection] | None = None,
    fresh: Callable[[], Connection] | None = None,
    held: Sequence[Script] = (),
) -> StagingReport:
    """Run the whole proof on ``connection`` (an empty database) and report what happened.

    With ``start``, a revision id, the database is first built at ``start`` (untimed, as what is
    deployed) and only the newer revisions are proven, as production will apply them; the round
    trip then goes no lower than ``start``. Each revision in ``stepped`` (ids) is also undone and
    redone right after its upgrade, and the schema before it is compared with the schema after
    its downgrade; the revisions before the first of them go up as in the plain proof. With
    ``data``, every table gets sample rows before each revision of the first upgrade (in the
    transaction of the revision before), so that revisions that fail only on tables with rows
    fail here.

    ``cloned``: the database is a copy of the template cache's at ``start``, with its rows.
    ``copy`` is called once the first upgrade reaches each revision of ``copy_after``, and
    returns the connection to go on with: the template cache copies the database there.
    ``fresh`` returns a connection to a new empty database, which replaces the run's: the step
    round trip goes on there after a broken downgrade (it needs ``fresh``).

    ``held``: the revisions the cloned database holds (oldest first), where they are more than
    ``start`` and its ancestors: a template of a history with branches holds a prefix of its
    revisions in their order, which may end with a revision of one branch while holding
    another. A history with branches is then upgraded exactly in that order, so that each
    copy holds its prefix (an upgrade to a revision would apply its ancestors alone).
    """
    revisions = executor.revisions()
    if start != "base":
        older = {r.revision for r in held} or {
            r.revision for r in executor.script.iterate_revisions(start, "base")
        }
        revisions = [r for r in revisions if r.revision not in older]
    branched = not is_linear(executor.revisions())
    report = StagingReport(
        revisions=revisions,
        models_configured=executor.metadata is not None,
        start=start,
        stepped=frozenset(r.revision for r in revisions if r.revision in stepped),
        data=data.report if data is not None else None,
        cloned=cloned,
    )
    report.floor, report.floor_reason = round_trip_floor(revisions)
    if report.floor_reason is None:
        report.floor = start
    # Down to the floor: every revision but where it started, the irreversible ones and what
    # they need, newest first (a branch beside them too, which Alembic's downgrade would keep).
    floors = [start, *(r.revision for r in revisions if irreversible_reason(r) is not None)]
    undone = undo_order(executor.script, revisions, floors)
    observer: Observer | None = None

    def fill(step: Step | None = None) -> None:
        if data is not None:
            data.fill(connection)

    def measured(step: Step, values: Sequence[Any]) -> None:
        assert observer is not None
        effects = observer.effects(values)
        effects.seconds = step.seconds  # from its BEGIN: as long as its locks were held, at most
        report.effects[step.revision.revision] = effects
        # After measuring: the rows are the next revision's, not this one's doing. Only where
        # a table may be new (its locks say so, unless they cannot see all it did): the
        # others have their rows, and looking for tables again is a query per revision.
        if observer.made_tables or not step.one_transaction:
            fill()

    try:
        if start != "base" and not cloned:  # a copy is at ``start`` already
            report.failed_phase = "build"
            executor.upgrade(connection, start)
            report.failed_phase = None
        if cloned and data is not None:
            data.adopt(connection)  # the template's tables have their rows already
        fill()
        connection.commit()
        observer = Observer(connection)  # after the build: its tables are the pre-existing ones
        watched = observer
        # Read at each revision's end with what is read there anyway: a round trip fewer.
        observe = ReadAtEnd(observer.sql, measured, lambda: watched.connection)

        def rebuild(applied: Sequence[Script]) -> Connection:
            """A new database at exactly ``applied`` (after ``start``), its tables with rows."""
            nonlocal connection
            assert fresh is not None
            connection = watched.connection = fresh()
            if held:  # its tables seeded as each is made, as in the run that made it
                executor.apply_exactly(connection, held, "upgrade", in_transaction=fill)
            elif start != "base":
                executor.upgrade(connection, start)
            fill()
            connection.commit()
            executor.apply_exactly(connection, applied, "upgrade", in_transaction=fill)
            watched.reset()  # its relations are new: those there are now existed before
            return connection

        def exactly(line: Sequence[Script], cb: Callable[[Step], None]) -> list[Step]:
            """Up through ``line`` in its order, copied where the template cache asks."""
            nonlocal connection
            steps, done = [], 0
            for at, revision in enumerate(line):
                if revision.revision in copy_after or at == len(line) - 1:
                    ahead, done = line[done : at + 1], at + 1
                    steps += executor.apply_exactly(connection, ahead, "upgrade", cb, observe)
                    if copy is not None and revision.revision in copy_after:
                        connection = watched.connection = copy(revision.revision)
            return steps

        def upgrade(cb: Callable[[Step], None]) -> list[Step]:
            nonlocal connection
            if report.stepped:
                first = next(i for i, r in enumerate(revisions) if r.revision in report.stepped)
                plain, rest = revisions[:first], revisions[first:]
                steps = exactly(plain, cb)  # up as in the plain proof, copies too
                hooks = Hooks(cb, observe, fill, watched.take_stock)
                steps += round_trip_each(executor, connection, report, hooks, rebuild, plain, rest)
            elif branched and (cloned or copy_after):
                return exactly(revisions, cb)  # in the templates' order
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

        _phase(report, "upgrade", upgrade, on_step, revisions)
        if report.models_configured:
            report.model_diffs = executor.compare(connection)
            if report.model_diffs:
                report.model_sql = _missing_sql(executor, connection)
        _phase(
            report,
            "downgrade",
            lambda cb: executor.apply_exactly(connection, undone, "downgrade", cb),
            on_step,
            undone,
        )
        again = _again_order(executor, undone) if held and branched else undone[::-1]

        def upgrade_again(cb: Callable[[Step], None]) -> list[Step]:
            if held and branched:  # Alembic's upgrade from the template's heads may reorder
                return executor.apply_exactly(connection, again, "upgrade", cb)
            return executor.upgrade(connection, "heads", cb)

        _phase(report, "upgrade again", upgrade_again, on_step, again)
    except MigrationFailed as failed:
        report.failure = failed
    except RevisionInterrupted as stopped:
        stopped.phase = stopped.phase or report.failed_phase
        raise
    report.final_revision = _read_back(executor, connection)
    return report


def _phase(
    report: StagingReport,
    phase: str,
    run: Callable[[Callable[[Step], None]], list[Step]],
    on_step: PhaseEvents | None,
    expected: Sequence[Script],
) -> None:
    def record(step: Step) -> None:
        report.timings[phase][step.revision.revision] = step.seconds
        if on_step is not None:
            on_step.done(phase, step)

    if on_step is not None:
        on_step.begin(phase, expected)
    report.failed_phase = phase
    run(record)
    report.failed_phase = None


def _again_order(executor: Executor, undone: Sequence[Script]) -> list[Script]:
    """``undone`` in the order a run from base upgrades them again: Alembic's upgrade to heads
    from where that run's round trip stops (base, or what its irreversible revisions need).
    A run from a template stops at the template's revisions instead, and Alembic's upgrade
    from their heads may apply the rest in another order than from base (a branch's revision
    before another branch's that it needs, say), so that run applies exactly this order."""
    everything = executor.revisions()
    floors = [r.revision for r in everything if irreversible_reason(r) is not None]
    down = {r.revision for r in undo_order(executor.script, everything, floors)}
    kept = [r for r in everything if r.revision not in down]  # each with what it needs
    # What a kept revision needs (its parents, what it depends on) is no head: the kept ones
    # hold their ancestors, so the direct ones say it.
    below = {needed for r in kept for needed in r._all_down_revisions}
    heads = [r.revision for r in kept if r.revision not in below]
    plan = upgrade_plan(executor.script, heads) if kept else everything
    wanted = {r.revision for r in undone}
    return [r for r in plan if r.revision in wanted]


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

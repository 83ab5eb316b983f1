"""The step round trip: each revision up, down and up again, its downgrade judged on its own
(every revision, or those a branch adds: ``scope``).

For each revision, in the order the first upgrade applies them (merges and branches included),
the schema before its upgrade is compared with the schema after its downgrade. Each revision
is applied and undone as Alembic's own step for exactly that revision, so a merge is undone
into its parents and one branch is undone while the other stays applied.

All of it runs as one run of env.py (``Executor.apply_moves``), each step in its own
transaction, and the schema is read at the end of the transaction that leaves it (the
downgrade's, and the upgrade's before the next revision), which sees what it commits: three
runs of env.py per revision cost three times the plain proof's per-run overhead for nothing.

A downgrade that fails, or that does not give the schema back, ends that run: the database it
leaves is no longer the history's, so a new one is built at that revision (``Rebuild``) and the
round trip goes on from there in a new run. One run of the command names every broken
downgrade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrail.engine.interrupts import RevisionInterrupted
from migrail.engine.runner import Move
from migrail.engine.steps import MigrationFailed, Step
from migrail.history.revisions import irreversible_reason

if TYPE_CHECKING:
    from alembic.script import Script
    from sqlalchemy.engine import Connection

    from migrail.engine.executor import Executor
    from migrail.postgres.catalog import Schema
    from migrail.staging.proof import StagingReport

# A new database at exactly the revisions given (and what the proof started from); its connection.
Rebuild = Callable[[Sequence["Script"]], "Connection"]
# PostgreSQL's too_many_columns: a table has 1,600 column numbers, and a dropped column keeps its.
TOO_MANY_COLUMNS = "54011"
# Why a revision's round trip was not judged when it cannot be taken at all.
OUT_OF_COLUMN_NUMBERS = (
    "its table has too few column numbers left for a round trip: PostgreSQL gives a table "
    "1,600, and a dropped column keeps its"
)


@dataclass(frozen=True)
class Hooks:
    """What the proof does around each revision: show it, measure it, fill the next tables."""

    on_step: Callable[[Step], None]
    observe: Callable[[Step], None]  # in the first upgrade's transaction: locks, rewrites, rows
    fill: Callable[[Step], None]  # in the upgrade run again: the next revision's rows
    reset: Callable[[], None]  # in it too: the relations there are now count as existing before


def round_trip_each(
    executor: Executor,
    connection: Connection,
    report: StagingReport,
    hooks: Hooks,
    rebuild: Rebuild,
    applied: Sequence[Script],
    revisions: Sequence[Script],
) -> list[Step]:
    """Upgrade through ``revisions`` (after ``applied``, already up), each of
    ``report.stepped`` undone and redone right after its upgrade; what a downgrade broke goes
    in ``report.step_diffs`` / ``report.step_failures``. The first upgrade's steps; a failing
    upgrade is MigrationFailed, as in the plain proof."""
    steps: list[Step] = []
    applied = list(applied)
    todo = list(revisions)
    replay: Script | None = None
    while todo:
        trip = _Trip(connection, report, hooks, todo, replay)
        try:
            executor.apply_moves(connection, trip.moves())
        except MigrationFailed as failed:
            trip.failed(failed)  # a first upgrade's failure is the proof's: raised
        except RevisionInterrupted as stopped:
            if trip.move(stopped.failed) != "up":
                stopped.phase = "upgrade, its step round trip"
            raise
        steps += trip.steps
        applied += trip.upgraded
        todo = todo[trip.reached :]
        replay = None
        if trip.renumber is not None:
            # It ran out of column numbers, which the columns dropped by the round trips before
            # keep: it runs again on a new database, where its tables have only the numbers a
            # plain upgrade gives them; its round trip too, if its first upgrade was done.
            revision, upgraded = trip.renumber
            if upgraded:
                assert applied[-1] is revision
                applied.pop()
                replay = revision
            todo.insert(0, revision)
            connection = rebuild(applied)
        elif trip.broken:
            connection = rebuild(applied)
    return steps


class _Trip:
    """One run of env.py through ``revisions``: each one up, and each stepped one down and up
    again, until one of those breaks the database's history."""

    def __init__(
        self,
        connection: Connection,
        report: StagingReport,
        hooks: Hooks,
        revisions: Sequence[Script],
        replay: Script | None = None,
    ) -> None:
        from migrail.postgres.catalog import prepare, schema_facts

        prepare(connection)  # between transactions: the schema is read twice a revision
        self.connection, self.report, self.hooks = connection, report, hooks
        self.revisions = revisions
        # The first of ``revisions``, whose first upgrade was measured and shown already: run
        # again only to take its round trip on a new database (``renumber``).
        self.replay = replay
        # The revision that failed only because a table ran out of column numbers (PostgreSQL
        # gives a table 1,600, and a dropped column keeps its): numbers the round trips spent,
        # not a broken revision; and whether its first upgrade was done.
        self.renumber: tuple[Script, bool] | None = None
        self.spent = False  # a downgrade ran in this trip: what it dropped keeps its numbers
        self.made: list[
            tuple[Script, str]
        ] = []  # each move asked for: revision, "up"/"down"/"again"
        self.steps: list[Step] = []  # the first upgrades, committed
        self.upgraded: list[Script] = []  # the revisions they upgraded, a replayed one too
        self.reached = 0  # how many of ``revisions`` were begun
        self.broken = False  # a downgrade failed, or the schema after it differs
        self.before: Schema | None = None  # the schema before the next judged revision's upgrade
        if _judged(report, revisions[0]):
            self.before = _as_restorable(schema_facts(connection))

    def moves(self) -> Iterator[Move]:
        """Each revision's moves, asked for once the move before has committed."""
        for at, revision in enumerate(self.revisions):
            self.reached = at + 1
            following = self.revisions[at + 1] if at + 1 < len(self.revisions) else None
            judged = _judged(self.report, revision)
            self.made.append((revision, "up"))
            if revision is self.replay:
                yield Move(revision, "upgrade", in_transaction=_nothing, on_step=self._replayed)
            else:
                yield Move(
                    revision,
                    "upgrade",
                    in_transaction=self._first(None if judged else following),
                    on_step=self._done,
                )
            if not judged:
                continue
            self.made.append((revision, "down"))
            yield Move(revision, "downgrade", in_transaction=self._compare)
            self.spent = True
            self.made.append((revision, "again"))
            yield Move(revision, "upgrade", in_transaction=self._again(following))
            if self.broken:
                return

    def move(self, failed: MigrationFailed) -> str:
        """Which move ``failed`` was, of the revision's: "up", "down" or "again"."""
        return self.made[min(len(failed.completed), len(self.made) - 1)][1]

    def failed(self, failed: MigrationFailed) -> None:
        """Record what failed (``apply_moves`` says which move it was); a first upgrade's
        failure is raised."""
        revision, move = self.made[min(len(failed.completed), len(self.made) - 1)]
        if failed.sqlstate == TOO_MANY_COLUMNS and revision.revision not in self.report.step_diffs:
            if move != "up" and revision is self.replay:
                # Even on a new database, its down and up again need more numbers than its
                # table has left: no round trip can be taken, none is judged broken.
                self.report.step_skipped[revision.revision] = OUT_OF_COLUMN_NUMBERS
                self.broken = True
                return
            if move != "up" or self.spent:  # a first upgrade out of numbers on its own fails
                self.renumber = (revision, move != "up")
                self.broken = True
                return
        if move == "up":
            raise failed
        if move == "down":  # read at its end, but not committed: what failed is the downgrade
            self.report.step_diffs.pop(revision.revision, None)
        # ... or what the broken downgrade breaks: the upgrade again
        self.report.step_failures[revision.revision] = failed
        self.broken = True

    def _first(self, following: Script | None) -> Callable[[Step], None]:
        """In the first upgrade's transaction: measured, rows for the next revision, and the
        schema before ``following`` when it is judged and this one is not."""

        def first(step: Step) -> None:
            self.hooks.observe(step)
            self._read_before(following)

        return first

    def _done(self, step: Step) -> None:
        """The first upgrade committed: shown, and what a declared irreversible revision
        skips said."""
        self.hooks.on_step(step)
        self.steps.append(step)
        self.upgraded.append(step.revision)
        revision = step.revision
        reason = irreversible_reason(revision)
        if reason is not None and revision.revision in self.report.stepped:
            self.report.step_skipped[revision.revision] = reason

    def _replayed(self, step: Step) -> None:
        """The replayed first upgrade committed: shown and measured the first time."""
        self.upgraded.append(step.revision)

    def _compare(self, step: Step) -> None:
        """In the downgrade's transaction: the schema it leaves against the one before."""
        from migrail.postgres.catalog import describe_difference, read_schema

        assert self.before is not None
        after = _as_restorable(read_schema(self.connection))
        if after != self.before:
            revision = step.revision.revision
            self.report.step_diffs[revision] = describe_difference(self.before, after)
            self.broken = True

    def _again(self, following: Script | None) -> Callable[[Step], None]:
        """In the upgrade run again's transaction: the next revision's rows, the relations
        taken as they are, and the schema before ``following``."""

        def again(step: Step) -> None:
            self.hooks.fill(step)
            self.hooks.reset()  # undone and redone: the next revision's tables are new relations
            if not self.broken:
                self._read_before(following)

        return again

    def _read_before(self, following: Script | None) -> None:
        from migrail.postgres.catalog import read_schema

        if following is not None and _judged(self.report, following):
            self.before = _as_restorable(read_schema(self.connection))


def _nothing(step: Step) -> None:
    """A replayed first upgrade's hook in its transaction: measured the first time."""


def _judged(report: StagingReport, revision: Script) -> bool:
    """Whether ``revision`` is undone and redone: stepped, and not declared irreversible."""
    return revision.revision in report.stepped and irreversible_reason(revision) is None


def _as_restorable(schema: Schema) -> Schema:
    """``schema`` without its constraints' ``NOT VALID``: PostgreSQL cannot make a validated
    constraint NOT VALID again, so no downgrade can undo a ``VALIDATE CONSTRAINT`` (the safe
    second step of a foreign key or a NOT NULL added to a live table), and none needs to: the
    constraint holds either way. A downgrade that restores a constraint NOT VALID where it was
    validated (re-adding the CHECK a SET NOT NULL replaced) restores it too."""
    from migrail.postgres import catalog

    facts = {
        fact.removesuffix(" NOT VALID") if fact.startswith("constraint ") else fact
        for fact in schema.facts
    }
    return catalog.Schema(frozenset(facts), schema.definitions)

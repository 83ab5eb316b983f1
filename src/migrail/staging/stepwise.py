"""The step round trip: each revision up, down and up again, its downgrade judged on its own
(every revision, or those a branch adds: ``scope``).

For each revision, in the order the first upgrade applies them (merges and branches included),
the schema before its upgrade is compared with the schema after its downgrade. Each revision
is applied and undone as Alembic's own step for exactly that revision, so a merge is undone
into its parents and one branch is undone while the other stays applied.

A downgrade that fails, or that does not give the schema back, does not end the round trip:
the database it leaves is no longer the history's, so a new one is built at that revision
(``Rebuild``) and the round trip goes on from there. One run names every broken downgrade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


@dataclass(frozen=True)
class Hooks:
    """What the proof does around each revision: show it, measure it, fill the next tables."""

    on_step: Callable[[Step], None]
    observe: Callable[[Step], None]  # in the first upgrade's transaction: locks, rewrites, rows
    fill: Callable[[Step], None]  # in the upgrade run again: the next revision's rows
    reset: Callable[[], None]  # the relations there are now count as existing before


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
    from migrail.postgres.catalog import schema_facts

    steps: list[Step] = []
    applied = list(applied)
    for revision in revisions:
        stepped = revision.revision in report.stepped
        before = _as_restorable(schema_facts(connection)) if stepped else None
        steps += executor.apply_exactly(
            connection, [revision], "upgrade", hooks.on_step, hooks.observe
        )
        applied.append(revision)
        if before is None:
            continue
        reason = irreversible_reason(revision)
        if reason is not None:
            report.step_skipped[revision.revision] = reason
            continue
        if not _undo_and_redo(executor, connection, report, revision, before, hooks.fill):
            connection = rebuild(applied)
        hooks.reset()  # undone and redone: the next revision's tables are new relations
    return steps


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


def _undo_and_redo(
    executor: Executor,
    connection: Connection,
    report: StagingReport,
    revision: Script,
    before: Schema,
    fill: Callable[[Step], None],
) -> bool:
    """Undo ``revision``, compare, apply it again; whether the database is still the history's
    (when not, what went wrong is recorded)."""
    from migrail.postgres.catalog import describe_difference, schema_facts

    try:
        executor.apply_exactly(connection, [revision], "downgrade")
    except MigrationFailed as failed:
        report.step_failures[revision.revision] = failed
        return False
    after = _as_restorable(schema_facts(connection))
    if after != before:
        report.step_diffs[revision.revision] = describe_difference(before, after)
    try:
        executor.apply_exactly(connection, [revision], "upgrade", in_transaction=fill)
    except MigrationFailed as failed:  # what the broken downgrade breaks: the upgrade again
        report.step_failures[revision.revision] = failed
        return False
    return after == before

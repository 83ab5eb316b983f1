"""Applying revisions to a live database: upgrade and downgrade, one transaction per revision,
under the session settings every revision runs with."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrail.engine import environment
from migrail.engine.interrupts import RevisionInterrupted, interrupted
from migrail.engine.steps import MigrationFailed, Step, StepWatch
from migrail.engine.usercode import user_code
from migrail.history.revisions import downgrade_plan, upgrade_plan

if TYPE_CHECKING:
    from alembic.script import Script
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config
    from migrail.engine.executor import Executor


def session_settings(config: Config) -> str:
    """The SET statements every revision runs under, as SQL; applied and rendered alike."""
    return (
        f"SET lock_timeout = '{config.lock_timeout}';\n"
        f"SET statement_timeout = '{config.statement_timeout}';\n\n"
    )


def upgrade(
    executor: Executor,
    connection: Connection,
    target: str = "heads",
    on_step: Callable[[Step], None] | None = None,
    in_transaction: Callable[[Step], None] | None = None,
) -> list[Step]:
    """Apply revisions up to ``target``, one transaction each; a failure is MigrationFailed.

    ``in_transaction`` runs at the end of each revision, in its transaction, so that what it
    writes commits (or not) with the revision itself.
    """
    script = executor.script
    plan = upgrade_plan(script, executor.current(connection), target)

    def steps(current: Any) -> Any:
        return script._upgrade_revs(target, current)

    return _run(executor, "upgrade", connection, plan, target, steps, on_step, in_transaction)


def downgrade(
    executor: Executor,
    connection: Connection,
    target: str,
    on_step: Callable[[Step], None] | None = None,
    in_transaction: Callable[[Step], None] | None = None,
) -> list[Step]:
    """Undo revisions down to ``target`` (which stays applied), one transaction each;
    ``in_transaction`` as for ``upgrade``."""
    script = executor.script
    plan = downgrade_plan(script, executor.current(connection), target)

    def steps(current: Any) -> Any:
        return script._downgrade_revs(target, current)

    return _run(executor, "downgrade", connection, plan, target, steps, on_step, in_transaction)


def apply_exactly(
    executor: Executor,
    connection: Connection,
    revisions: Sequence[Script],
    direction: str,
    on_step: Callable[[Step], None] | None = None,
    in_transaction: Callable[[Step], None] | None = None,
) -> list[Step]:
    """Upgrade (or downgrade) exactly ``revisions``, in the order given, whatever the graph
    around them: a merge, a branch point, one branch of several. Alembic's own step for each
    keeps ``alembic_version`` right (a merge undone gives back its parents as heads). Each
    upgrade needs its parents applied, each downgrade needs its revision to be a head by its
    turn; ``in_transaction`` as for ``upgrade``."""
    from alembic.runtime.migration import MigrationStep

    from migrail.engine.downgrade_step import DowngradeStep

    script = executor.script
    up = direction == "upgrade"
    make = MigrationStep.upgrade_from_script if up else DowngradeStep
    plan = list(revisions)

    def steps(current: Any) -> Any:
        return [make(script.revision_map, revision) for revision in plan]

    target = plan[-1].revision if plan else "heads"
    return _run(executor, direction, connection, plan, target, steps, on_step, in_transaction)


@dataclass(frozen=True)
class Move:
    """One revision applied (``upgrade``) or undone (``downgrade``) among several run in turn,
    with what runs at its end inside its transaction and what is told once it committed."""

    revision: Script
    direction: str
    in_transaction: Callable[[Step], None] | None = None
    on_step: Callable[[Step], None] | None = None


def apply_moves(executor: Executor, connection: Connection, moves: Iterable[Move]) -> list[Step]:
    """Apply or undo each of ``moves`` in turn, each in its own transaction, all in ONE run of
    env.py: a revision applied, undone and applied again pays once, not three times, for
    env.py, the session settings and the version table read.

    ``moves`` is read lazily: the next move is asked for once the one before it has committed,
    so that what its transaction found can end the run there. A failure is MigrationFailed
    with the direction of the move that failed; that move is the one at
    ``len(failed.completed)``, or the last when every move committed and what failed came
    after them."""
    from alembic.runtime.migration import MigrationStep

    from migrail.engine.downgrade_step import DowngradeStep

    pending = iter(moves)
    first = next(pending, None)
    if first is None:
        return []
    ran = [first]  # the moves asked for so far; their revisions are the plan, as it grows
    plan = [first.revision]
    script = executor.script
    up, down = MigrationStep.upgrade_from_script, DowngradeStep

    def steps(current: Any) -> Iterator[Any]:
        for at in itertools.count():
            if at == len(ran):
                move = next(pending, None)
                if move is None:
                    return
                ran.append(move)
                plan.append(move.revision)
            move = ran[at]
            yield (up if move.direction == "upgrade" else down)(script.revision_map, move.revision)

    # StepWatch tells each move's end and commit once per move, in order.
    ended, committed = itertools.count(), itertools.count()
    settings = session_settings(executor.config).split(";")[:-1]

    def in_transaction(step: Step) -> None:
        """The move's own callback; then the session settings, set again and committed with
        it: the next move runs under them, as a run of its own would, and not under a
        ``SET statement_timeout`` the revision before it left on the session."""
        _call(ran[next(ended)].in_transaction, step)
        for setting in settings:
            connection.exec_driver_sql(setting.strip())

    def on_step(step: Step) -> None:
        _call(ran[next(committed)].on_step, step)

    target = first.revision.revision
    try:
        return _run(
            executor,
            "upgrade",
            connection,
            plan,
            target,
            steps,
            on_step,
            in_transaction,
        )
    except MigrationFailed as failed:
        failed.direction = ran[min(len(failed.completed), len(ran) - 1)].direction
        raise
    except RevisionInterrupted as stopped:
        stopped.failed.direction = ran[min(len(stopped.failed.completed), len(ran) - 1)].direction
        raise


def _call(callback: Callable[[Step], None] | None, step: Step) -> None:
    if callback is not None:
        callback(step)


def _run(
    executor: Executor,
    direction: str,
    connection: Connection,
    plan: list[Script],
    target: str,
    steps: Callable[[Any], Any],
    on_step: Callable[[Step], None] | None,
    in_transaction: Callable[[Step], None] | None = None,
) -> list[Step]:
    """Run env.py once, with ``steps`` (given the database's heads) as Alembic's work
    function: the revision steps to apply, as ``plan`` names them."""
    if not plan:
        return []
    root = executor.config.root
    for setting in session_settings(executor.config).split(";")[:-1]:
        connection.exec_driver_sql(setting.strip())
    connection.commit()  # session settings, outside the revisions' own transactions
    script = executor.script
    watch = StepWatch(plan, on_step, in_transaction, root=root)
    cfg = executor.alembic_config(connection=connection, on_version_apply=[watch.applied])
    with watch.watching(connection):
        try:
            socket = connection.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
            with user_code(root, sockets=[socket]):
                environment.run_env(
                    cfg,
                    executor.config,
                    script,
                    connection,
                    settings=session_settings(executor.config),
                    fn=lambda current, context: steps(current),
                    destination_rev=target,
                )
        except environment.EnvRefused:
            raise
        except Exception as exc:
            raise watch.failure(direction, exc) from exc
        except KeyboardInterrupt as exc:  # SIGTERM's Terminated too
            raise interrupted(exc, watch.stopped(direction)) from exc
        watch.committed()
    return watch.steps

"""Applying revisions to a live database: upgrade and downgrade, one transaction per revision,
under the session settings every revision runs with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from migrail.engine import environment
from migrail.engine.steps import Step, StepWatch
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
        watch.committed()
    return watch.steps

"""``migrail apply``: apply exactly the approved plan, or refuse and say why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.history.revisions import display_name

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from migrail.core.config import Config
    from migrail.release.apply import ApplyFailure


def apply(config: Config, *, plan_path: Path, console: Console) -> int:
    """0 when every planned revision was applied; 1 when one failed (and was rolled back)."""
    from migrail.release.apply import apply_plan
    from migrail.release.plan import load_plan

    made = load_plan(plan_path)
    applied = apply_plan(
        config,
        made,
        plan_path,
        on_wait=lambda: output.info(console, "Waiting for another migrate to finish..."),
        on_step=lambda step: output.success(console, display_name(step.revision)),
        on_retry=lambda pause: output.info(
            console, f"  a lock stayed taken; trying again in {pause:.1f} s"
        ),
    )
    if not made.revisions:
        output.success(console, "Nothing to apply: the plan is empty")
        return 0
    if applied.failure is not None:
        _report_failure(console, config, applied.failure)
        return 1
    if made.direction == "stamp":
        output.success(console, f"Applied plan {made.plan_id[:19]}: stamped, nothing run")
        return 0
    output.success(console, f"Applied plan {made.plan_id[:19]}: {len(applied.steps)} revision(s)")
    return 0


def _report_failure(console: Console, config: Config, failure: ApplyFailure) -> None:
    from migrail.engine.steps import lost_connection_note, partly_committed_note

    failed = failure.failed
    if failure.lost:
        rerun = "apply again, or plan again if it says the database moved on"
        output.failure(console, str(failed))
        output.info(console, lost_connection_note(failed, rerun))
        return
    name = display_name(failed.revision) if failed.revision else "?"
    output.failure(console, f"{failed.direction} of {name} failed: {failed.error}")
    partly = partly_committed_note(failed)
    if partly is not None:
        output.info(console, partly)
    if failure.unrecorded is not None:
        output.info(console, f"  not recorded: {failure.unrecorded}")
    if failure.gave_up_after is not None:
        output.info(
            console,
            f"  gave up after {failure.gave_up_after} tries: a lock it needs stayed taken "
            f"(lock_timeout {config.lock_timeout}); the revision was rolled back",
        )
    output.info(console, f"  the database is at {failure.database_at}")

"""``migrail plan``: read the database (read-only) and write what a release would run, for
approval."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.engine.executor import Executor

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from migrail.core.config import Config


def plan(
    config: Config,
    *,
    env_name: str | None,
    out: Path,
    force: bool,
    console: Console,
    to: str | None = None,
    stamp: bool = False,
) -> int:
    """Write ``out`` (plan.json, and plan.md beside it); 1 when drift or lint stops it. ``to``:
    plan moving the database up or down to that revision instead of up to head; ``stamp``:
    plan recording it as at the head (a database adopted by ``pull``), which must not drift."""
    from migrail.commands.drift import report_drift
    from migrail.postgres.database import major_version
    from migrail.release.plan import check_plan_path, pg_version_mismatch, write_plan
    from migrail.release.planning import lint_findings, make_plan, read_live

    check_plan_path(out)
    environment, url = resolve_environment(config, env_name)
    executor = Executor(config)
    live = read_live(executor, url, to, stamp)
    if (problem := live.hidden_identity) is not None:
        output.info(
            console, f"the environment the database says it is: not shown: {problem.message}"
        )
        output.items(console, [problem.hint] if problem.hint else [])
    if live.drifted and not force:
        claimed = (live.move.target,) if stamp and live.move.target else live.current
        report_drift(console, environment.name, executor.label(claimed), live.drifted)
        output.info(console, "hint: find out who changed it and why; plan anyway with --force")
        return 1
    if (difference := pg_version_mismatch(config.lint.pg_version, live.version)) is not None:
        output.warning(console, difference)
        output.items(console, [f'set pg_version = "{major_version(live.version)}"'])
    findings = lint_findings(executor, live)
    errors = [finding for finding in findings if finding["severity"] == "error"]
    if errors and not force:
        for finding in errors:
            output.failure(console, f"{finding['rule']}: {finding['path']}: {finding['message']}")
        output.info(console, "hint: make them safe, or plan anyway with --force (the plan says so)")
        return 1
    made = make_plan(executor, environment.name, url, live, findings, out)
    summary = write_plan(made, out)
    names = ", ".join(revision.shown for revision in made.revisions) or "nothing"
    verb = {"downgrade": "undoing ", "stamp": "stamping "}.get(made.direction, "")
    output.success(console, f"planned {verb}{names} for {environment.name}: {out} and {summary}")
    output.info(console, f"plan id {made.plan_id}")
    return 0

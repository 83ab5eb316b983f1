"""``migrail plan``, ``approve`` and ``apply``: a protected database changes only as approved."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from migrail import history, ledger, output, sums
from migrail.bookkeeping import TableProblem
from migrail.config import resolve_environment
from migrail.errors import FatalError
from migrail.executor import Executor
from migrail.plan import (
    Plan,
    PlannedRevision,
    check_plan_path,
    load_plan,
    now,
    touched_tables,
    write_plan,
)
from migrail.signals import sigterm_raises
from migrail.steps import MigrationFailed, Step, lost_connection_note

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.engine import URL, Connection

    from migrail.config import Config

_LOCK_NOT_AVAILABLE = "SQLSTATE 55P03"


def plan(config: Config, *, env_name: str | None, out: Path, force: bool, console: Console) -> int:
    """Read the database (read-only) and write what a release would run, for approval."""
    from migrail.database import server_version
    from migrail.drift import find_drift
    from migrail.lint import lint_history
    from migrail.render import render_each

    check_plan_path(out)
    environment, url = resolve_environment(config, env_name)
    executor = Executor(config)
    with _reading(config, url, "plan") as connection:
        current = executor.current(connection)
        pieces = render_each(executor, current)
        identity = _stated_identity(connection, console)
        version = server_version(connection)
        connection.rollback()
        drifted, effects = find_drift(executor, connection, current, measure=True)
        sizes = _table_sizes(connection, {t for p in pieces for t in touched_tables(p.sql or "")})
    if drifted and not force:
        _report_drift(console, environment.name, executor.label(current), drifted)
        output.info(console, "hint: find out who changed it and why; plan anyway with --force")
        return 1
    pending = executor.pending(current)
    for piece in pieces:
        piece.require_sql(", so its SQL cannot be approved")
    scope = {Path(revision.path).resolve() for revision in pending}
    failing = lint_history(executor, scope).failing if pending else []
    findings = [
        {
            "rule": f.rule,
            "severity": f.severity,
            "path": str(Path(f.path).resolve().relative_to(config.root)),
            "line": f.line,
            "message": f.message,
        }
        for f in failing
    ]
    if failing and not force:
        for finding in findings:
            output.failure(console, f"{finding['rule']}: {finding['path']}: {finding['message']}")
        output.info(console, "hint: make them safe, or plan anyway with --force (the plan says so)")
        return 1
    made = Plan(
        environment=environment.name,
        database={
            "name": url.database or "",
            "identity": identity,
            "version": version,
            "env.py": sums.digest((config.migrations_dir / "env.py").read_bytes()),
        },
        from_revision=list(current),
        to_revision=executor.head,
        revisions=[
            PlannedRevision(
                revision=piece.revision.revision,
                name=history.short_name(piece.revision),
                checksum=sums.digest(Path(piece.revision.path).read_bytes()),
                sql=piece.sql or "",
                sql_checksum=sums.digest((piece.sql or "").encode()),
                measured=effects[piece.revision.revision].summary()
                if piece.revision.revision in effects
                else "",
            )
            for piece in pieces
        ],
        findings=findings,
        drift=drifted,
        tables=sizes,
        forced=bool(failing or drifted),
        author=ledger.actor(),
        created_at=now(),
    ).seal()
    summary = write_plan(made, out)
    names = ", ".join(revision.name for revision in made.revisions) or "nothing"
    output.success(console, f"planned {names} for {environment.name}: {out} and {summary}")
    output.info(console, f"plan id {made.plan_id}")
    return 0


def _stated_identity(connection: Connection, console: Console) -> str:
    """The environment the database says it is, for the plan; a read-only role that cannot read
    it still plans (apply, which can, checks it), and is told the GRANT that would show it."""
    from migrail.identity import read_identity

    try:
        identity = read_identity(connection)
    except TableProblem as problem:
        output.info(
            console, f"the environment the database says it is: not shown: {problem.message}"
        )
        output.items(console, [problem.hint] if problem.hint else [])
        return "unknown to the role that planned"
    return identity.name if identity else "nothing yet"


def drift(config: Config, *, env_name: str | None, console: Console) -> int:
    """Compare the database with the schema its recorded revision implies; 1 if they differ."""
    from migrail.drift import find_drift

    environment, url = resolve_environment(config, env_name)
    executor = Executor(config)
    with _reading(config, url, "drift") as connection:
        current = executor.current(connection)
        found, _ = find_drift(executor, connection, current)
    if found:
        _report_drift(console, environment.name, executor.label(current), found)
        return 1
    output.success(console, f"{environment.name} is exactly what {executor.label(current)} implies")
    return 0


def _reading(config: Config, url: URL, command: str) -> AbstractContextManager[Connection]:
    """The live database, read under the configured timeouts (see ``target.connect_target``)."""
    from migrail.target import connect_target

    return connect_target(
        url,
        command,
        lock_timeout=config.lock_timeout,
        statement_timeout=config.statement_timeout,
    )


def _table_sizes(connection: Connection, tables: set[str]) -> dict[str, dict[str, int]]:
    """Live row estimates (the planner's, kept by ANALYZE) and sizes of the tables named."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from migrail.target import lock_timed_out

    sizes = {}
    for table in sorted(tables):
        try:
            row = connection.execute(
                text(
                    "SELECT greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)"
                    " FROM pg_class c WHERE c.oid = to_regclass(:name)"
                ),
                {"name": table},
            ).first()
        except DBAPIError as exc:  # a name the SQL spells in a way to_regclass does not take
            if lock_timed_out(exc):
                raise
            row = None
        connection.rollback()
        if row is not None:
            sizes[table] = {"rows": int(row[0]), "bytes": int(row[1])}
    return sizes


def _report_drift(console: Console, name: str, revision: str, drift: list[str]) -> None:
    output.failure(
        console,
        f"{name} has drifted from {revision}: it differs from the schema its revision implies "
        "(+ the history has it and the database does not; - the reverse):",
    )
    output.items(console, drift)


def approve(config: Config, *, plan_path: Path, console: Console) -> int:
    """Record who approved the plan, and when, bound to its id."""
    made = load_plan(plan_path)
    approver = ledger.actor()
    if config.four_eyes and approver == made.author:
        raise FatalError(
            f"approval refused: {approver} planned it, and [tool.migrail] four_eyes asks for "
            "someone else to approve",
            hint="ask a reviewer to run: migrail approve " + str(plan_path),
        )
    record = {"plan_id": made.plan_id, "approved_by": approver, "approved_at": now()}
    _approval_path(plan_path).write_text(json.dumps(record, indent=2) + "\n")
    output.success(console, f"{approver} approved plan {made.plan_id[:19]}")
    return 0


def apply(config: Config, *, plan_path: Path, console: Console) -> int:
    """Apply exactly the approved plan, or refuse and say why; SIGTERM stops it as Ctrl-C does
    (the running revision cancelled and rolled back)."""
    from migrail.database import advisory_lock
    from migrail.identity import read_identity, record_identity
    from migrail.render import render_each
    from migrail.target import connect_target, refuse_read_only

    made = load_plan(plan_path)
    _check_approval(config, made, plan_path)
    _, url = resolve_environment(config, made.environment)
    executor = Executor(config)
    with (
        sigterm_raises(),
        connect_target(url, "apply", lock_timeout=config.lock_timeout) as connection,
    ):
        refuse_read_only(connection, "apply")
        current = list(executor.current(connection))
        if current != made.from_revision:
            raise FatalError(
                "apply is refused: the database moved on since the plan: it is at "
                f"{executor.label(current)}, and the plan starts at "
                f"{executor.label(made.from_revision)}",
                hint="plan again",
            )
        _check_applied_revisions(config, executor, connection)
        _check_planned_files(config, executor, made)
        pieces = render_each(executor, current)
        for piece in pieces:
            if piece.exited is not None:  # an exit from the revision's code: its failure
                piece.require_sql()
        rendered = [(piece.revision.revision, piece.sql) for piece in pieces]
        planned = [(revision.revision, revision.sql) for revision in made.revisions]
        if rendered != planned:
            changed = [
                name
                for (name, sql), mine in zip(planned, rendered, strict=False)
                if (name, sql) != mine
            ]
            raise FatalError(
                "apply is refused: the SQL rendered from this checkout is not the SQL that was "
                f"approved ({', '.join(changed) or 'the list of revisions differs'})",
                hint="plan again, and have the new plan approved",
            )
        if not made.revisions:
            output.success(console, "Nothing to apply: the plan is empty")
            return 0
        waiting = lambda: output.info(console, "Waiting for another migrate to finish...")  # noqa: E731
        with advisory_lock(connection, on_wait=waiting):
            if list(executor.current(connection)) != made.from_revision:  # while we waited
                raise FatalError(
                    "apply is refused: another apply changed the database while this one waited: "
                    f"it is at {executor.label(executor.current(connection))} now",
                    hint="plan again",
                )
            identity = read_identity(connection)
            if identity is not None and identity.name != made.environment:
                raise FatalError(
                    f"apply is refused: the plan is for {made.environment}, and the database says "
                    f"it is {identity.name}",
                    hint=f"check {config.environment(made.environment).url_env}: it points at "
                    f"{identity.name}'s database",
                )
            if (url.database or "") != made.database.get("name"):
                raise FatalError(
                    f"apply is refused: the plan was made on database {made.database.get('name')}, "
                    f"and this is {url.database}",
                    hint="plan again, against the database you mean to change",
                )
            ledger.ensure_ledger(connection)  # before anything is written
            planned = [(revision.revision, revision.checksum) for revision in made.revisions]
            ledger.try_records(connection, planned, made.plan_id)
            if identity is None:  # its first release says what it is
                record_identity(connection, config.environment(made.environment))
            steps = _apply_with_retries(config, executor, connection, made, console)
    if steps is None:
        return 1
    output.success(console, f"Applied plan {made.plan_id[:19]}: {len(steps)} revision(s)")
    return 0


def _apply_with_retries(
    config: Config, executor: Executor, connection: Connection, made: Plan, console: Console
) -> list[Step] | None:
    """Apply; when a lock wait times out, the revision is rolled back and tried again later."""
    done: list[Step] = []
    for attempt in range(config.lock_retries + 1):
        try:
            done += executor.upgrade(
                connection,
                on_step=lambda step: output.success(console, history.short_name(step.revision)),
                in_transaction=lambda step: _write_down(connection, step, made.plan_id),
            )
            return done
        except MigrationFailed as failed:
            done += failed.completed
            if connection.invalidated:  # lost: nothing more can be read or recorded on it
                output.failure(console, str(failed))
                output.info(
                    console,
                    lost_connection_note(
                        failed, "apply again, or plan again if it says the database moved on"
                    ),
                )
                return None
            connection.rollback()
            if refused := ledger.refused(failed, executor.label(executor.current(connection))):
                raise refused from None
            unrecorded = None
            if failed.revision is not None:  # the attempt, as migrail.history keeps every one
                checksum = sums.digest(Path(failed.revision.path).read_bytes())
                unrecorded = ledger.record_failure(
                    connection, failed.revision.revision, checksum, failed.error, made.plan_id
                )
            locked = _LOCK_NOT_AVAILABLE in failed.error
            if not locked or attempt == config.lock_retries:
                name = history.short_name(failed.revision) if failed.revision else "?"
                output.failure(console, f"{failed.direction} of {name} failed: {failed.error}")
                if unrecorded is not None:
                    output.info(console, f"  not recorded: {unrecorded.message}")
                if locked:
                    output.info(
                        console,
                        f"  gave up after {attempt + 1} tries: a lock it needs stayed taken "
                        f"(lock_timeout {config.lock_timeout}); the revision was rolled back",
                    )
                at = executor.label(executor.current(connection))
                output.info(console, f"  the database is at {at}")
                return None
            pause = 0.5 * 2**attempt
            output.info(console, f"  a lock stayed taken; trying again in {pause:.1f} s")
            time.sleep(pause)
    return None


def _write_down(connection: Connection, step: Step, plan_id: str) -> None:
    checksum = sums.digest(Path(step.revision.path).read_bytes())
    ledger.record(connection, step.revision.revision, checksum, step.seconds, plan_id=plan_id)


def _check_planned_files(config: Config, executor: Executor, made: Plan) -> None:
    """The revision files are those that were planned, byte for byte: apply runs their Python,
    which can do on a live database what it does not do when rendered offline."""
    by_id = {revision.revision: revision for revision in executor.revisions()}
    for planned in made.revisions:
        revision = by_id.get(planned.revision)
        if revision is None or sums.digest(Path(revision.path).read_bytes()) != planned.checksum:
            raise FatalError(
                f"apply is refused: {planned.name} is not the file that was planned",
                hint="plan again, and have the new plan approved",
            )
    env_py = sums.digest((config.migrations_dir / "env.py").read_bytes())
    if made.database.get("env.py", env_py) != env_py:
        raise FatalError(
            "apply is refused: migrations/env.py changed since the plan",
            hint="plan again, and have the new plan approved",
        )


def _check_approval(config: Config, made: Plan, plan_path: Path) -> None:
    path = _approval_path(plan_path)
    if not path.is_file():
        raise FatalError(
            f"apply is refused: plan {made.plan_id[:19]} has no approval",
            hint=f"a reviewer approves it: migrail approve {plan_path}",
        )
    try:
        approval = json.loads(path.read_text())
        plan_id, approver = approval["plan_id"], approval["approved_by"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise FatalError(f"apply is refused: {path} is not an approval") from None
    if plan_id != made.plan_id:
        raise FatalError(
            "apply is refused: the approval is for another plan",
            hint=f"a reviewer approves this one: migrail approve {plan_path}",
        )
    if config.four_eyes and approver == made.author:
        raise FatalError(
            f"apply is refused: {approver} both planned and approved it, and [tool.migrail] "
            "four_eyes asks for someone else to approve"
        )


def _check_applied_revisions(config: Config, executor: Executor, connection: Connection) -> None:
    """Revisions applied before are unchanged since (Flyway's validate)."""
    by_id = {revision.revision: revision for revision in executor.revisions()}
    for entry in ledger.read_ledger(connection, limit=100_000):
        revision = by_id.get(entry.revision)
        if not entry.success or revision is None:
            continue
        if sums.digest(Path(revision.path).read_bytes()) != entry.checksum:
            raise FatalError(
                f"apply is refused: {history.short_name(revision)} was edited after it was "
                f"applied on {entry.applied_at:%Y-%m-%d}",
                hint="restore it as it was applied; change the schema in a new revision",
            )


def _approval_path(plan_path: Path) -> Path:
    return plan_path.with_name(plan_path.stem + ".approval.json")


def rehearse(config: Config, *, env_name: str | None, console: Console) -> int:
    """plan, approve (as someone else) and apply, end to end, on a throwaway database standing in
    for ``env_name`` (production by default): the release, rehearsed before it is real."""
    from migrail.ephemeral import ephemeral_database
    from migrail.scratch import scratch_directory

    environment = config.environment(env_name or "production")
    output.info(console, f"Rehearsing a release to {environment.name} on a throwaway database")
    with scratch_directory("rehearsal") as directory:
        plan_path = directory / "plan.json"
        with ephemeral_database() as url:
            stand_in = url.render_as_string(hide_password=False)
            with _variables({environment.url_env: stand_in}):
                if plan(
                    config, env_name=environment.name, out=plan_path, force=False, console=console
                ):
                    return 1
                with _variables({"MIGRAIL_ACTOR": "rehearsal reviewer"}):
                    approve(config, plan_path=plan_path, console=console)
                if apply(config, plan_path=plan_path, console=console):
                    return 1
    output.success(console, "the release rehearsal passed: plan, approve and apply")
    return 0


@contextmanager
def _variables(values: dict[str, str]) -> Iterator[None]:
    """Environment variables set for the block, and put back as they were afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

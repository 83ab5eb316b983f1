"""Making a release plan: what the live database is (read only, under the configured
timeouts), what the pending revisions run and what lint says of them, sealed into a ``Plan``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.history import sums
from migrail.history.revisions import display_name, short_name
from migrail.postgres.bookkeeping import TableProblem
from migrail.release import ledger
from migrail.release.moving import (
    DOWNGRADE,
    STAMP,
    UPGRADE,
    Move,
    check_reversible,
    plan_move,
    stamp_move,
)
from migrail.release.plan import Plan, PlannedRevision, now, touched_tables

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migrail.engine.executor import Executor
    from migrail.engine.render import Rendered
    from migrail.postgres.observe import Effects


# What a stamp "runs", as its plan shows it and apply compares it: nothing but the record.
STAMP_SQL = (
    "-- Not run: recorded as applied (the version table and migrail.history), since the\n"
    "-- database already has this revision's schema (plan compared it: see Drift).\n"
)


@dataclass(frozen=True)
class LiveDatabase:
    """What ``plan`` read from the database it plans for."""

    current: tuple[str, ...]
    pieces: list[Rendered]  # the pending revisions' SQL
    identity: str  # the environment it says it is, in words for the plan
    hidden_identity: TableProblem | None  # why the role that planned could not read it
    version: str
    drifted: list[str]
    effects: dict[str, Effects]  # each pending revision's locks and rewrites, measured
    sizes: dict[str, dict[str, int]]  # the tables the pending SQL touches
    move: Move  # up to head, (``plan --to``) up or down to a revision, or (``--stamp``) a stamp


def render_move(executor: Executor, current: tuple[str, ...], move: Move) -> list[Rendered]:
    """The SQL of the revisions ``move`` applies (oldest first) or undoes (newest first), as
    ``plan`` records it and ``apply`` renders it again to compare."""
    from migrail.engine.render import Rendered, render_downgrade, render_each

    if not move.revisions:
        return []
    if move.direction == STAMP:
        return [Rendered(revision, STAMP_SQL) for revision in move.revisions]
    if move.direction == DOWNGRADE:
        return render_downgrade(executor, current[0], move.target)
    wanted = {revision.revision for revision in move.revisions}
    return [piece for piece in render_each(executor, current) if piece.revision.revision in wanted]


def planned_move(
    executor: Executor, current: tuple[str, ...], to: str | None, stamp: bool = False
) -> Move:
    """Up to head, or where ``to`` names; a downgrade through an irreversible revision refused.
    ``stamp``: the head recorded as applied, on a database with no revision yet."""
    if stamp:
        return stamp_move(executor, current, "plan")
    if to is None:
        return Move(UPGRADE, executor.head, executor.pending(current))
    move = plan_move(executor, current, to, "plan")
    check_reversible(move, "plan")
    return move


def read_live(
    executor: Executor, url: URL, to: str | None = None, stamp: bool = False
) -> LiveDatabase:
    """Read the database ``url`` names for a plan (``to``: for moving it to that revision;
    ``stamp``: for recording it as at the head, its drift measured against the head's schema);
    nothing is written to it."""
    from migrail.postgres.catalog import table_sizes
    from migrail.postgres.database import server_version
    from migrail.postgres.target import connect_target
    from migrail.release.drift import find_drift

    config = executor.config
    with connect_target(
        url, "plan", lock_timeout=config.lock_timeout, statement_timeout=config.statement_timeout
    ) as connection:
        current = executor.current(connection)
        move = planned_move(executor, current, to, stamp)
        pieces = render_move(executor, current, move)
        identity, hidden = _stated_identity(connection)
        version = server_version(connection)
        connection.rollback()
        measure = move.direction == UPGRADE  # what an upgrade does to the tables, measured
        claimed = (move.target,) if move.direction == STAMP and move.target else current
        drifted, effects = find_drift(executor, connection, claimed, measure=measure)
        sizes = table_sizes(connection, {t for p in pieces for t in touched_tables(p.sql or "")})
    return LiveDatabase(current, pieces, identity, hidden, version, drifted, effects, sizes, move)


def _stated_identity(connection: Connection) -> tuple[str, TableProblem | None]:
    """The environment the database says it is, for the plan; a read-only role that cannot read
    it still plans (apply, which can, checks it), and the problem says the GRANT that would show
    it."""
    from migrail.postgres.identity import read_identity

    try:
        identity = read_identity(connection)
    except TableProblem as problem:
        return "unknown to the role that planned", problem
    return (identity.name if identity else "nothing yet"), None


def lint_findings(executor: Executor, live: LiveDatabase) -> list[dict[str, Any]]:
    """Every lint finding in the pending revisions, warnings too (the approver sees what lint
    saw; errors stop the plan unless forced), as the plan records them; a FatalError
    for a revision that cannot be rendered as SQL, which could not be approved."""
    from migrail.lint.linter import lint_history
    from migrail.staging.lock_policy import quiet_measured

    for piece in live.pieces:
        piece.require_sql(", so its SQL cannot be approved")
    if live.move.direction in (DOWNGRADE, STAMP):  # lint judges what revisions do going up
        return []
    pending = live.move.revisions
    scope = {Path(revision.path).resolve() for revision in pending}
    found = lint_history(executor, scope).findings if pending else []
    found = quiet_measured(found, live.effects)  # a type change measured as catalog-only
    return [
        {
            "rule": f.rule,
            "severity": f.severity,
            "path": str(Path(f.path).resolve().relative_to(executor.config.root)),
            "line": f.line,
            "message": f.message,
        }
        for f in found
    ]


def make_plan(
    executor: Executor,
    environment: str,
    url: URL,
    live: LiveDatabase,
    findings: list[dict[str, Any]],
    plan_path: Path,
) -> Plan:
    """The plan of what a release runs on ``live``, sealed with its id, bound to the code in the
    git checkout (``plan_path``'s own files left out) where there is one."""
    from migrail.release.checkout import plan_files, read_checkout

    config = executor.config
    database = {
        "name": url.database or "",
        "identity": live.identity,
        "version": live.version,
        "env.py": sums.digest((config.migrations_dir / "env.py").read_bytes()),
    }
    if config.lint.pg_version is not None:  # what lint and staging were told production runs
        database["pg_version"] = config.lint.pg_version
    checkout = read_checkout(config.root, plan_files(plan_path))
    return Plan(
        environment=environment,
        database=database,
        from_revision=list(live.current),
        to_revision=live.move.target,
        direction=live.move.direction,
        revisions=[
            PlannedRevision(
                revision=piece.revision.revision,
                name=short_name(piece.revision),
                checksum=sums.digest(Path(piece.revision.path).read_bytes()),
                sql=piece.sql or "",
                sql_checksum=sums.digest((piece.sql or "").encode()),
                measured=live.effects[piece.revision.revision].summary()
                if piece.revision.revision in live.effects
                else "",
            )
            for piece in live.pieces
        ],
        findings=findings,
        drift=live.drifted,
        tables=live.sizes,
        forced=bool(live.drifted or any(f["severity"] == "error" for f in findings)),
        unmerged=_unmerged(executor, live),
        code=checkout.record() if checkout is not None else {},
        author=ledger.actor(),
        created_at=now(),
    ).seal()


def _unmerged(executor: Executor, live: LiveDatabase) -> list[str]:
    """The revisions this plan applies that the base branch does not have (none where git
    cannot tell): the approver should know a branch is being released."""
    from migrail.history.released import released
    from migrail.history.revision_files import revision_key

    if live.move.direction != UPGRADE:
        return []
    state = released(executor.config)
    if state.files is None:
        return []
    versions = executor.config.versions_dir
    return [
        display_name(piece.revision)
        for piece in live.pieces
        if not state.known_released(revision_key(Path(piece.revision.path), versions))
    ]

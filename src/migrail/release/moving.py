"""``migrate --to REV``: a database moved up or down to one revision of its history.

Going down undoes revisions, and what they added goes with them: so the revisions to undo are
named first, one that declares itself irreversible stops it before anything runs, and each one
undone is recorded in ``migrail.history`` with its direction, in its own transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.history.revisions import (
    display_name,
    downgrade_plan,
    find_revision,
    irreversible_reason,
    short_name,
    upgrade_plan,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic.script import Script

    from migrail.engine.executor import Executor

UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
STAMP = "stamp"  # the head recorded as applied to a database that already has its schema
_RELATIVE = re.compile(r"[+-][0-9]+")


@dataclass(frozen=True)
class Move:
    """Where ``--to`` leads from where the database is: the direction, the revision it ends at
    (``None`` for base, Alembic's ``heads`` for a plain migrate) and the revisions applied or
    undone, in the order they run."""

    direction: str
    target: str | None
    revisions: list[Script]

    @property
    def alembic_target(self) -> str:
        return self.target if self.target is not None else "base"


def plan_move(
    executor: Executor, current: Sequence[str], name: str, command: str = "migrate"
) -> Move:
    """The move ``--to name`` makes from ``current``: a FatalError for a name that means no
    revision (the known ones named), or a move past either end of the history. ``command``
    is the one messages name."""
    if len(current) > 1:
        raise FatalError(
            f"{command} --to is refused: the database is at several heads ({', '.join(current)})",
            hint="merge the heads (alembic merge heads), then migrate to the merge",
        )
    order = executor.revisions()
    at = current[0] if current else None
    target = _resolve(executor, order, at, name, command)
    if target == at:
        return Move(UPGRADE, target, [])
    below = {rev.revision for rev in executor.script.iterate_revisions(at, "base")} if at else set()
    if target is None or target in below:
        return Move(DOWNGRADE, target, downgrade_plan(executor.script, current, target or "base"))
    return Move(UPGRADE, target, upgrade_plan(executor.script, current, target))


def stamp_move(executor: Executor, current: Sequence[str], command: str) -> Move:
    """Recording the head as applied without running it (``pull``'s baseline on a database
    that already has its schema): only a database with no revision yet is stamped."""
    if current:
        raise FatalError(
            f"stamping is refused: the database is already at {executor.label(current)}",
            hint="a database with a revision changes through migrail "
            + ("plan, without --stamp" if command == "plan" else "migrate"),
        )
    head = executor.head
    if head is None:
        raise FatalError("stamping is refused: the history has no revision to record")
    return Move(STAMP, head, [executor.script.get_revision(head)])


def replan(executor: Executor, current: Sequence[str], direction: str, target: str | None) -> Move:
    """The move a plan recorded (its direction and target revision), from ``current``."""
    if direction == STAMP:
        move = stamp_move(executor, current, "plan")
        if move.target != target:
            head = executor.label((move.target,) if move.target else ())
            raise FatalError(
                f"the plan stamps {target}, and the history's head is {head} now",
                hint="plan again",
            )
        return move
    if direction == DOWNGRADE:
        return Move(direction, target, downgrade_plan(executor.script, current, target or "base"))
    return Move(direction, target, upgrade_plan(executor.script, current, target or "heads"))


def _resolve(
    executor: Executor, order: list[Script], at: str | None, name: str, command: str
) -> str | None:
    """The revision id ``name`` means (``None``: base)."""
    if name == "base":
        return None
    if name in ("head", "heads"):
        return executor.head
    if _RELATIVE.fullmatch(name):
        return _relative(order, at, int(name), command)
    found = find_revision(order, name, f"{command} --to")
    if found is None:
        known = ", ".join(["base", *(display_name(rev) for rev in order), "head"])
        raise FatalError(
            f"{command} --to {name}: no such revision (known: {known})",
            hint="name a revision by its id, a unique prefix of it, or its file name; "
            "or -1/+1 to move one revision down or up",
        )
    return str(found.revision)


def _relative(order: list[Script], at: str | None, offset: int, command: str) -> str | None:
    """``-1``/``+1``: so many revisions down or up the (straight) history from ``at``."""
    ids = [rev.revision for rev in order]
    position = ids.index(at) + 1 if at is not None else 0  # 0 is base
    wanted = position + offset
    if not 0 <= wanted <= len(ids):
        where = display_name(order[position - 1]) if position else "base"
        raise FatalError(
            f"{command} --to {offset:+d}: the database is at {where}, and the history has no "
            f"revision {abs(offset)} {'below' if offset < 0 else 'above'} it",
            hint="name the revision to go to, or base, or head",
        )
    return ids[wanted - 1] if wanted else None


def check_reversible(move: Move, command: str = "migrate") -> None:
    """A downgrade through a revision that declares it cannot be undone is refused, named."""
    for revision in move.revisions if move.direction == DOWNGRADE else []:
        reason = irreversible_reason(revision)
        if reason is not None:
            raise FatalError(
                f"{command} --to is refused: {display_name(revision)} cannot be undone: {reason}",
                hint=f"go down no further than it: migrail {command} --to {short_name(revision)}",
            )

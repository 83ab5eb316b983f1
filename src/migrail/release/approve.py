"""Approving a plan: who approved it and when, bound to its id, in ``<plan>.approval.json``
beside it; and the check ``apply`` makes of that approval."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.release.ledger import actor
from migrail.release.plan import now

if TYPE_CHECKING:
    from pathlib import Path

    from migrail.core.config import Config
    from migrail.release.plan import Plan


def approve_plan(config: Config, made: Plan, plan_path: Path) -> str:
    """Record the approval of ``made`` by whoever runs this, and return who that is."""
    approver = actor()
    if config.four_eyes and approver == made.author:
        raise FatalError(
            f"approval refused: {approver} planned it, and [tool.migrail] four_eyes asks for "
            "someone else to approve",
            hint="ask a reviewer to run: migrail approve " + str(plan_path),
        )
    record = {"plan_id": made.plan_id, "approved_by": approver, "approved_at": now()}
    approval_path(plan_path).write_text(json.dumps(record, indent=2) + "\n")
    return approver


def check_approval(config: Config, made: Plan, plan_path: Path) -> None:
    """The plan has an approval, of this very plan, by someone else when four eyes are asked."""
    path = approval_path(plan_path)
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


def approval_path(plan_path: Path) -> Path:
    return plan_path.with_name(plan_path.stem + ".approval.json")

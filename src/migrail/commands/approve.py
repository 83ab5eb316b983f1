"""``migrail approve``: record who approved a plan, and when, bound to its id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from migrail.core.config import Config


def approve(config: Config, *, plan_path: Path, console: Console) -> int:
    """Approve the plan at ``plan_path`` as whoever runs this."""
    from migrail.release.approve import approve_plan
    from migrail.release.plan import load_plan

    made = load_plan(plan_path)
    approver = approve_plan(config, made, plan_path)
    output.success(console, f"{approver} approved plan {made.plan_id[:19]}")
    return 0

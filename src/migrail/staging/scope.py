"""Which revisions the step round trip undoes and redoes on their own.

By default, those this branch adds: the revisions whose files the base branch does not have
(``history.released``). A released revision's downgrade was proven when it was added, and
proving it again on every run costs three steps per revision for nothing new; a new revision's
downgrade is exactly what a reviewer cannot see by reading. ``--step-roundtrip`` takes every
revision, ``--no-step-roundtrip`` none. Where git cannot tell what the branch adds (outside a
repository, no base branch), no revision is stepped, and the summary says so once: every
revision counts as released there, as it does for the sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from migrail.history.revisions import display_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic.script import Script

    from migrail.engine.executor import Executor

# "all": --step-roundtrip; "branch": the default; "off": --no-step-roundtrip.
StepMode = Literal["all", "branch", "off"]


@dataclass(frozen=True)
class StepScope:
    """The revisions to step (ids), and where they came from, for the summary's words."""

    mode: StepMode
    revisions: frozenset[str]
    base: str | None = None  # the base branch ("branch" mode, when git could tell)

    def words(self, proven: Sequence[Script]) -> str:
        """What the step round trip covered among ``proven`` (this run's revisions), in words:
        ``the 2 revisions this branch adds (not on main)``; what it did not, and why, where it
        covered none."""
        count = len([r for r in proven if r.revision in self.revisions])
        if self.mode == "off":
            return "off (--no-step-roundtrip)"
        if self.mode == "all":
            return "every revision"
        if self.base is None:
            return (
                "not run: outside a git repository, or without a base branch, every revision "
                "counts as released (--step-roundtrip runs it on all)"
            )
        if not count:
            if self.revisions:
                return (
                    f"none this run: the {len(self.revisions)} this branch adds are older than "
                    "where it started"
                )
            return f"none: this branch adds no revision to {self.base}"
        noun = "revision" if count == 1 else f"{count} revisions"
        return f"the {noun} this branch adds (not on {self.base})"

    def names(self, proven: Sequence[Script]) -> list[str]:
        """The stepped revisions among ``proven``, by name, oldest first."""
        return [display_name(r) for r in proven if r.revision in self.revisions]


def step_scope(executor: Executor, mode: StepMode) -> StepScope:
    """The revisions ``mode`` steps: all, none, or those not on the base branch."""
    if mode == "off":
        return StepScope(mode, frozenset())
    revisions = executor.revisions()
    if mode == "all":
        return StepScope(mode, frozenset(r.revision for r in revisions))
    from migrail.history.released import released
    from migrail.history.revision_files import revision_key

    state = released(executor.config)
    if state.files is None:
        return StepScope(mode, frozenset())
    versions = executor.config.versions_dir
    added = frozenset(
        r.revision
        for r in revisions
        if not state.known_released(revision_key(Path(r.path), versions))
    )
    return StepScope(mode, added, state.base)

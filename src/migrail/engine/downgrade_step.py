"""Alembic's step for undoing one revision, without a walk of the whole history per step.

To keep ``alembic_version`` right, Alembic asks of each revision it undoes whether that deletes
its branch's row (``should_delete_branch``), and answers by walking every ancestor of the
revision's parent: once per revision, so undoing a history of n revisions walks it n times.
When the revision has one parent and is the only head, the answer is known without the walk:
its parent takes its place (no revision is its own ancestor). Everything else, Alembic decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic.runtime.migration import RevisionStep

if TYPE_CHECKING:
    from alembic.script import Script
    from alembic.script.revision import RevisionMap


class DowngradeStep(RevisionStep):
    """``RevisionStep(..., is_upgrade=False)``, which answers the linear case itself."""

    def __init__(self, revision_map: RevisionMap, revision: Script) -> None:
        super().__init__(revision_map, revision, is_upgrade=False)

    def should_delete_branch(self, heads: set[str]) -> bool:
        if heads == {self.revision.revision} and len(self.to_revisions) == 1:
            return False  # one head, one parent: the parent becomes the head
        return super().should_delete_branch(heads)

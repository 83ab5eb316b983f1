"""Undoing one revision: migrail's step decides what Alembic's decides, on a history with a
branch, a merge and a dependency, from every set of heads the database can be at."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from alembic.runtime.migration import RevisionStep
from alembic.script import ScriptDirectory

from migrail.engine.downgrade_step import DowngradeStep
from testing.projects import write_revision


def _history(root: Path) -> ScriptDirectory:
    """a - b - c, then d and e branch from c, f merges them, g follows; h depends on b."""
    (root / "migrations" / "versions").mkdir(parents=True)
    for revision, down, extra in [
        ("a", None, ""),
        ("b", "a", ""),
        ("c", "b", ""),
        ("d", "c", ""),
        ("e", "c", ""),
        ("f", ("d", "e"), ""),
        ("g", "f", ""),
        ("h", "a", "depends_on = 'b'"),
    ]:
        write_revision(root, revision, revision, down, "pass", extra=extra)
    return ScriptDirectory(str(root / "migrations"))


def test_it_answers_as_alembic_does_from_every_set_of_heads(tmp_path: Path) -> None:
    script = _history(tmp_path)
    revisions = [script.get_revision(name) for name in "abcdefgh"]
    linear = 0
    for revision in revisions:
        assert revision is not None
        others = [r.revision for r in revisions if r is not None and r is not revision]
        for size in range(3):
            for more in combinations(others, size):
                heads = {revision.revision, *more}
                ours = DowngradeStep(script.revision_map, revision)
                alembic = RevisionStep(script.revision_map, revision, is_upgrade=False)
                assert ours.should_delete_branch(set(heads)) == alembic.should_delete_branch(
                    set(heads)
                ), (revision.revision, heads)
                assert ours.should_unmerge_branches(heads) == alembic.should_unmerge_branches(heads)
                linear += heads == {revision.revision} and len(ours.to_revisions) == 1
    assert linear == 5, "b, c, d, e and g answered without Alembic's walk (not h: two parents)"

"""What changed against a git base: the revisions ``lint --since`` looks at."""

from __future__ import annotations

from pathlib import Path

from migrail.core import proc
from migrail.core.errors import FatalError


def changed_files(root: Path, base: str) -> set[Path]:
    """Files added or changed since ``base``'s merge base with HEAD, committed or not.

    The merge base, so that what the base branch gained since this branch left it does not count;
    untracked files count, since a new revision is often not committed yet.
    """
    try:
        fork = _git(root, "merge-base", base, "HEAD").strip()
    except FatalError:
        raise FatalError(
            f"{base!r} is not a commit this repository knows",
            hint="fetch it first (git fetch origin), or name another base",
        ) from None
    # Both list paths relative to ``root``, and only below it, where the revisions are.
    tracked = _git(
        root, "diff", "--name-only", "--relative", "--no-renames", "--diff-filter=d", fork
    )
    untracked = _git(root, "ls-files", "--others", "--exclude-standard")
    return {(root / name).resolve() for name in parse_names(tracked + untracked)}


def parse_names(output: str) -> list[str]:
    """File names from git's ``--name-only`` output, one a line."""
    return [line for line in output.splitlines() if line.strip()]


def _git(root: Path, *args: str) -> str:
    return proc.run(["git", "-C", root, *args], timeout=60)

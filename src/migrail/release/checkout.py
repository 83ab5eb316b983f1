"""The code a release plan is bound to: the git commit it was made from, and the work tree's
changes from that commit.

A revision can import the application (``from app import backfill``), and what that code does on a
live database the rendered SQL never shows. The plan therefore records ``git rev-parse HEAD`` and
the work tree's changes (tracked files, staged or not, and untracked ``.py`` files, which an import
can pick up; ignored files are not looked at), with a digest of their content, and ``apply``
refuses a checkout that differs. The plan's own files (``plan.json``, ``plan.md`` and the
approval) are left out: writing them is part of the release.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrail.core import proc
from migrail.core.errors import FatalError
from migrail.history.released import toplevel

# The work tree against HEAD, staged or not, byte for byte, whatever the user's git settings.
_DIFF = (
    *("diff", "HEAD", "--binary", "--full-index", "--no-ext-diff", "--no-textconv", "--no-color"),
    *("--no-renames", "--src-prefix=a/", "--dst-prefix=b/"),
)
_HIDDEN = " (hidden from git status: assume-unchanged or skip-worktree)"
SHOWN_CHANGES = 10  # the work tree's changes a plan.md or a refusal lists; the rest are counted


@dataclass(frozen=True)
class Checkout:
    """A git checkout's state: its commit, and how its work tree differs from it."""

    commit: str
    changes: list[str]  # as ``git status --porcelain`` puts them: "XY path"; a plan keeps the
    # first ones (``shown``), the digest binds them all
    digest: str  # of the changes' content; "" when the work tree is the commit's

    def record(self) -> dict[str, Any]:
        """As a plan records it (``code``): the digest only where there are changes."""
        if not self.changes:
            return {"commit": self.commit}
        return {"commit": self.commit, "changes": shown(self.changes), "digest": self.digest}


def read_checkout(root: Path, skip: Iterable[Path] = ()) -> Checkout | None:
    """The state of the git checkout ``root`` is in, ``skip`` left out (a plan's own files);
    ``None`` outside git or before its first commit, where there is no commit to bind to."""
    top = toplevel(root)
    if top is None:
        return None
    try:
        commit = _git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip()
    except FatalError:
        return None
    spec = ["--", ".", *_excluded(top, skip)]
    listed = _git(top, "status", "--porcelain=v1", "-z", "--untracked-files=all", *spec)
    changes = [line for line in parse_status(listed) if _counts(line)]
    changes += [f" M {path}{_HIDDEN}" for path in _hidden(top, commit, spec)]
    if not changes:
        return Checkout(commit, [], "")
    return Checkout(commit, changes, _digest(top, changes, spec))


def _digest(top: Path, changes: list[str], spec: list[str]) -> str:
    """Of the changes' content: git's diff from HEAD, and the files it does not show."""
    content = hashlib.sha256()
    content.update(proc.run_bytes(["git", "-C", top, *_DIFF, *spec], stdin=b""))
    for line in changes:  # what git diff does not show: untracked files, hidden changes
        if line.startswith("?? ") or line.endswith(_HIDDEN):
            path = line[3:].removesuffix(_HIDDEN)
            content.update(f"\0{path}\0".encode() + _content(top / path))
    return "sha256:" + content.hexdigest()


def _hidden(top: Path, commit: str, spec: list[str]) -> list[str]:
    """Tracked files that differ from ``commit`` although git status and git diff do not say
    so: marked ``git update-index --assume-unchanged`` (or ``--skip-worktree``) and edited."""
    listed = _git(top, "ls-files", "-v", "-z", *spec)
    flagged = [
        entry[2:]
        for entry in listed.split("\0")
        if entry[:1].islower() or entry[:1] == "S"
        if "\n" not in entry and (top / entry[2:]).is_file()
    ]
    if not flagged:
        return []
    on_disk = proc.run_bytes(
        ["git", "-C", top, "hash-object", "--stdin-paths"],
        stdin="".join(f"{path}\n" for path in flagged).encode(),
    )
    committed = _git(top, "ls-tree", "-z", commit, "--", *flagged)
    blobs = {
        path: fields.split()[2]
        for fields, _, path in (entry.partition("\t") for entry in committed.split("\0") if entry)
    }
    return [
        path
        for path, blob in zip(flagged, on_disk.decode().split(), strict=True)
        if blobs.get(path) != blob
    ]


def _content(path: Path) -> bytes:
    """A file's content, or where a symbolic link points (which may be nowhere)."""
    if path.is_symlink():
        return str(path.readlink()).encode()
    return path.read_bytes()


def plan_files(plan_path: Path) -> list[Path]:
    """A plan's own files: ``plan.json``, ``plan.md`` and the approval, written as part of the
    release and so no change to the code."""
    from migrail.release.approve import approval_path

    return [plan_path, plan_path.with_suffix(".md"), approval_path(plan_path)]


def check_checkout(root: Path, code: dict[str, Any], skip: Iterable[Path] = ()) -> None:
    """Refuse (a FatalError naming what differs) a checkout that is not the one a plan
    recorded in ``code``; a plan that recorded none (made outside git) binds no code."""
    if not code:
        return
    planned_commit = code["commit"]
    now = read_checkout(root, skip)
    if now is None:
        raise FatalError(
            f"apply is refused: the plan was made from commit {planned_commit[:12]}, and "
            f"{root} is not a git checkout with a commit",
            hint=_HINT,
        )
    if now.commit != planned_commit:
        raise FatalError(
            f"apply is refused: the checkout is at commit {now.commit[:12]}, and the plan was "
            f"made from {planned_commit[:12]}",
            hint=f"check out {planned_commit[:12]}, or {_HINT}",
        )
    if now.digest != code.get("digest", ""):
        planned = "uncommitted changes of its own" if code.get("digest") else "a clean work tree"
        listed = shown(now.changes) or ["(none: the plan's uncommitted changes are gone)"]
        raise FatalError(
            f"apply is refused: the work tree differs from the one planned (it was planned "
            f"with {planned}); git status:\n  " + "\n  ".join(listed),
            hint=_HINT,
        )


def shown(changes: list[str]) -> list[str]:
    """The first changes, and how many more there are."""
    more = len(changes) - SHOWN_CHANGES
    return changes[:SHOWN_CHANGES] + ([f"... and {more} more"] if more > 0 else [])


def parse_status(output: str) -> list[str]:
    """``git status --porcelain=v1 -z`` output as "XY path" lines (a rename as its new path)."""
    entries = output.split("\0")
    lines = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        if entry[0] in "RC":  # its source path follows in an entry of its own
            index += 1
        lines.append(entry)
    return lines


def _counts(line: str) -> bool:
    """A change that can alter what runs: any to a tracked file; an untracked ``.py`` file."""
    return not line.startswith("?? ") or line.endswith(".py")


def _excluded(top: Path, skip: Iterable[Path]) -> list[str]:
    paths = []
    for path in skip:
        try:
            relative = path.resolve().relative_to(top)
        except ValueError:  # outside the checkout: git does not see it anyway
            continue
        paths.append(f":(exclude,literal){relative.as_posix()}")
    return paths


def _git(top: Path, *args: str) -> str:
    return proc.run(["git", "-C", top, *args], timeout=60)


_HINT = (
    "commit the code and plan again (have the new plan approved); in CI, apply runs on a "
    "clean checkout of the commit that was planned and approved"
)

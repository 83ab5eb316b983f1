"""Released or not: which revision files are already on the base branch.

A revision on the base branch (``[tool.migrail] base_branch``; else ``origin``'s default branch
as a clone records it, ``origin/HEAD``; else ``origin/main``, ``main``, ``origin/master`` or
``master``, the first that exists) may have run in production, so it stays
as it was recorded. One that only this branch has is a draft: it can be edited or deleted, and
``migrail.sum`` follows it. Outside a git repository, or with no base branch to be found, every
revision counts as released, so nothing is ever more lenient than the sum alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import proc
from migrail.core.errors import FatalError
from migrail.history import sums
from migrail.history.revision_files import is_revision_file
from migrail.history.tree import parse_batch

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from migrail.core.config import Config

DEFAULT_BASES = ("origin/main", "main", "origin/master", "master")


@dataclass(frozen=True)
class Released:
    """The revision files at the fork point from the base branch, by key (their path under
    ``versions/``, see ``revision_files``; ``None``: every revision file counts as released)."""

    base: str | None
    files: dict[str, bytes] | None

    def is_released(self, name: str) -> bool:
        return self.files is None or name in self.files

    def known_released(self, name: str) -> bool:
        """On the base branch for certain: leniency for released revisions (an optional SQL
        file) never extends to a revision whose state is unknown."""
        return self.files is not None and name in self.files

    def in_baseline(self, name: str, content: bytes) -> bool:
        """Known to be released, and as it was released: what this branch did not touch."""
        return self.files is not None and self.files.get(name) == content


def released(
    config: Config, only: Collection[Path] | None = None, known: Iterable[bytes] = ()
) -> Released:
    """The revision files the base branch already had where this branch left it; ``only``
    (resolved paths): of those files alone, the others left out of ``files`` (a caller that
    asks about one revision need not read a thousand). ``known``: contents the caller has read
    already (the revision files as they are now); a file the base branch has byte for byte
    among them is not read from git again."""
    fork = _fork_listing(config)
    if fork.keys is None:
        return Released(fork.base, None)
    top, keys = fork.top, fork.keys
    assert top is not None
    paths = [path for path, key in keys.items() if is_revision_file(key)]
    if only is not None:
        wanted = {path.relative_to(top).as_posix() for path in only if path.is_relative_to(top)}
        paths = [path for path in paths if path in wanted]
    found = _by_blob(known, {fork.objects[path] for path in paths if path in fork.objects})
    read: dict[str, bytes | None] = {
        path: found[fork.objects[path]] for path in paths if fork.objects.get(path) in found
    }
    asked = [path for path in paths if path not in read]
    if asked:
        # By object id, as ls-tree listed them: ``<commit>:<path>`` would have git walk the
        # trees again for each file (five times the cost, for a thousand files).
        specs = "".join(f"{fork.objects.get(path) or f'{fork.commit}:{path}'}\n" for path in asked)
        output = proc.run_bytes(["git", "-C", top, "cat-file", "--batch"], stdin=specs.encode())
        read.update(zip(asked, parse_batch(output, len(asked)), strict=True))
    return Released(
        fork.base,
        {keys[path]: content for path in paths if (content := read[path]) is not None},
    )


def _by_blob(contents: Iterable[bytes], wanted: set[str]) -> dict[str, bytes]:
    """Those of ``contents`` whose git blob id (SHA-1, or SHA-256 in a repository that uses
    it: told by the ids' length) is in ``wanted``, by that id."""
    if not wanted:
        return {}
    algorithm = "sha256" if len(next(iter(wanted))) == 64 else "sha1"
    found = {}
    for content in contents:
        digest = hashlib.new(algorithm, b"blob %d\0" % len(content), usedforsecurity=False)
        digest.update(content)
        if (blob := digest.hexdigest()) in wanted:
            found[blob] = content
    return found


def released_names(config: Config) -> tuple[str | None, frozenset[str] | None]:
    """The base branch, and the keys of the revision files it had where this branch left it
    (``None``: every one counts as released), without reading the files: what decides which
    revisions the step round trip takes, for a run that reads no more than it needs."""
    fork = _fork_listing(config)
    if fork.keys is None:
        return fork.base, None
    return fork.base, frozenset(key for key in fork.keys.values() if is_revision_file(key))


@dataclass(frozen=True)
class _Fork:
    """Where this branch left the base branch, and the files under ``versions/`` there: their
    paths from the top of the work tree, and keys (``None``: git cannot tell); ``objects``:
    the blob each path holds."""

    base: str | None
    top: Path | None = None
    commit: str = ""
    keys: dict[str, str] | None = None
    objects: dict[str, str] = field(default_factory=dict)


def _fork_listing(config: Config) -> _Fork:
    top = toplevel(config.root)
    if top is None:
        return _Fork(None)
    base = base_ref(config, top)
    if base is None:
        return _Fork(None)
    try:
        fork = _git(top, "merge-base", base, "HEAD").strip()
    except FatalError:
        return _Fork(base)  # no commit yet, or unrelated histories: all released
    folder = config.versions_dir.resolve().relative_to(top).as_posix()
    listed = _git(top, "ls-tree", "-r", "-z", fork, f"{folder}/")
    entries = [tree_entry(line) for line in listed.split("\0") if line]
    keys = {path: path.removeprefix(f"{folder}/") for _, path in entries}
    return _Fork(base, top, fork, keys, {path: blob for blob, path in entries if blob})


def tree_entry(line: str) -> tuple[str | None, str]:
    """The blob and the path of one ``git ls-tree -z`` entry (``<mode> <type> <object>\\t<path>``);
    no blob for what is not one (a submodule's commit)."""
    info, _, path = line.partition("\t")
    _, kind, name = info.split(" ", 2)
    return (name if kind == "blob" else None), path


def base_ref(config: Config, top: Path) -> str | None:
    """The configured base branch (which must exist), else the first default that exists."""
    if config.base_branch is not None:
        if not _has(top, config.base_branch):
            raise FatalError(
                f"[tool.migrail] base_branch {config.base_branch!r} is not a commit this "
                "repository knows",
                hint="fetch it first (git fetch origin), or name another branch",
            )
        return config.base_branch
    remote = _remote_default(top)
    if remote is not None:
        return remote
    return next((ref for ref in DEFAULT_BASES if _has(top, ref)), None)


def _remote_default(top: Path) -> str | None:
    """``origin``'s default branch as a clone records it (``origin/HEAD``): ``origin/develop``
    in a project whose default branch is not main or master."""
    try:
        found = _git(top, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD").strip()
    except FatalError:
        return None
    return found.removeprefix("refs/remotes/") or None


def toplevel(root: Path) -> Path | None:
    """The top of the git work tree ``root`` is in; ``None`` outside git."""
    try:
        return Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    except FatalError:
        return None


def _has(top: Path, ref: str) -> bool:
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{object}}")
    except FatalError:
        return False
    return True


def _git(root: Path, *args: str) -> str:
    return proc.run(["git", "-C", root, *args], timeout=60)


@dataclass(frozen=True)
class SumJudgement:
    """The sum against the revision files, released and not.

    ``failing``: what this branch did to released revisions (edited, removed, added
    unrecorded), whatever the sum says of them, and a sum edited by hand. ``baseline``: released
    revisions that disagreed with the sum before this branch touched them. ``followed``:
    unreleased revisions whose lines the sum must follow, and ``updated`` the sum that does.
    ``deliberate``: released revisions this branch changed and recorded so (``--force``).
    """

    failing: list[sums.SumProblem]
    baseline: list[sums.SumProblem]
    followed: list[str]
    updated: str
    deliberate: list[str]


def judge_sum(text: str, files: dict[str, bytes], state: Released) -> SumJudgement:
    """Which of the sum's disagreements with ``files`` fail, which are the baseline, and which
    the sum simply follows (revisions not released yet)."""
    failing, baseline, followed = [], [], []
    for problem in sums.verify(text, files):
        if problem.kind == "corrupt":
            failing.append(problem)
        elif not state.is_released(problem.name):
            followed.append(problem.name)
        elif problem.name in files and state.in_baseline(problem.name, files[problem.name]):
            baseline.append(problem)
        else:
            failing.append(problem)
    recorded, _, _ = sums.parse_sum(text)
    named = {problem.name for problem in failing}
    deliberate = []
    for name in departed(files, state):
        if recorded.get(name) == marked(name, files, state):
            deliberate.append(name)
        elif name not in named:  # the sum agrees with the file: edited by hand to hide it
            failing.append(_departure(name, files, state))
    for name in followed:
        recorded.pop(name, None)
        if name in files:
            recorded[name] = sums.digest(files[name])
    return SumJudgement(failing, baseline, followed, sums.render_digests(recorded), deliberate)


def departed(files: dict[str, bytes], state: Released) -> list[str]:
    """The released revisions whose files differ from the base branch's, or are gone: the sum can
    be edited along with them, the base branch cannot."""
    if state.files is None:
        return []
    return sorted(name for name, content in state.files.items() if files.get(name) != content)


def marked(name: str, files: dict[str, bytes], state: Released) -> str:
    """The sum's value that records the change of released revision ``name`` as deliberate."""
    assert state.files is not None
    now = sums.digest(files[name]) if name in files else None
    return sums.mark_released(now, sums.digest(state.files[name]))


def _departure(name: str, files: dict[str, bytes], state: Released) -> sums.SumProblem:
    if name in files:
        return sums.SumProblem(
            "changed",
            name,
            f"{name} differs from the version released on {state.base}, whatever "
            f"{sums.SUM_FILE} records",
        )
    return sums.SumProblem("removed", name, f"{name} is released on {state.base} but was removed")


def update_sum(
    text: str | None, files: dict[str, bytes], state: Released, *, force: bool
) -> tuple[str, list[str]]:
    """The sum recording ``files``, and the released revisions it records anew (edited or
    removed since recorded). Those are refused (a FatalError naming them) unless ``force``:
    re-recording a released revision is a decision, never a side effect."""
    recorded = sums.parse_sum(text)[0] if text is not None else {}
    digests = {name: sums.digest(content) for name, content in files.items()}
    changed = {
        name
        for name in recorded
        if state.is_released(name)
        and sums.split_value(recorded[name])[0] != digests.get(name, sums.REMOVED)
    }
    for name in departed(files, state):
        mark = marked(name, files, state)
        if recorded.get(name) != mark:
            changed.add(name)
        digests[name] = mark
    again = sorted(changed)
    if again and not force:
        raise FatalError(
            f"released revision(s) changed since recorded in {sums.SUM_FILE}: {', '.join(again)}",
            hint="restore them (git checkout), or, if the change is deliberate and already "
            "applied where they ran, record it: migrail sum --update --force",
        )
    return sums.render_digests(digests), again

"""Re-parent this branch's new revisions onto another branch's head, the way git rebase would.

Two branches that each add a revision on the same parent leave two heads (with sequence ids, two
revisions numbered alike). The revisions this branch adds (the files the other branch does not
have) are moved after the other branch's head, in order: their ``down_revision``, their id and
file name (the next free numbers; the id is replaced where the name holds it, so names made by
the project's ``file_template`` keep their shape), their docstring header, their SQL file and
schema snapshot, and ``migrail.sum`` (the other branch's, plus these) all follow.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from migrail.core import proc
from migrail.core.config import Config
from migrail.core.errors import FatalError
from migrail.history import file_names, graph, sums
from migrail.history.naming import SEQUENCE_WIDTH, following
from migrail.history.revision_files import is_revision_file, revision_key
from migrail.history.snapshot import SNAPSHOT_DIR


@dataclass(frozen=True)
class Move:
    """One revision moved: its old and new id and file name, and its new parent."""

    old: graph.Header
    new_id: str
    new_path: Path
    parent: str


def plan_rebase(config: Config, onto: str) -> list[Move]:
    """What ``rebase`` would do: this branch's revisions, renumbered after ``onto``'s head."""
    headers = graph.read_headers(config.versions_dir)
    theirs_names = _files_at(config, onto)

    def key(header: graph.Header) -> str:
        return revision_key(header.path, config.versions_dir)

    here = {key(header) for header in headers}
    if missing := sorted(theirs_names - here):
        raise FatalError(
            f"{onto} has revisions this checkout does not: {', '.join(missing)}",
            hint=f"merge it first (git merge {onto}), then: migrail rebase --onto {onto}",
        )
    theirs = [header for header in headers if key(header) in theirs_names]
    ours = [header for header in headers if key(header) not in theirs_names]
    tips = graph.heads(theirs)
    if len(tips) != 1:
        raise FatalError(
            f"{onto} has {len(tips)} heads in {config.versions_dir.name}; rebase onto one head"
        )
    if not ours:
        return []
    taken = {header.revision for header in theirs if header.revision}
    moves = []
    found = file_names.project_template(config)
    template = found.template if found is not None else None
    parent = tips[0].revision or ""
    for header in _oldest_first(ours):
        new_id = _next_id(header.revision or "", parent, taken, config.revision_naming)
        taken.add(new_id)
        new_path = file_names.renamed(
            header.path, config.versions_dir, header.revision or "", new_id, template
        )
        moves.append(Move(header, new_id, new_path, parent))
        parent = new_id
    return moves


def apply_rebase(config: Config, onto: str, moves: list[Move]) -> None:
    """Rewrite and rename the moved revisions, their SQL and snapshots, and the sum."""
    for move in moves:
        text = move.old.path.read_text(encoding="utf-8")
        text = _set(text, "revision", repr(move.new_id))
        text = _set(text, "down_revision", repr(move.parent))
        text = re.sub(
            r"^Revision ID: .*$", f"Revision ID: {move.new_id}", text, count=1, flags=re.M
        )
        text = re.sub(r"^Revises: .*$", f"Revises: {move.parent}", text, count=1, flags=re.M)
        move.old.path.unlink()
        move.new_path.write_text(text, encoding="utf-8")
        old_sql = config.sql_dir / f"{move.old.path.stem}.sql"
        if old_sql.is_file():  # re-rendered by the caller: it names the old ids
            old_sql.rename(config.sql_dir / f"{move.new_path.stem}.sql")
        # A moved revision's snapshot was its branch's schema alone; the caller writes the new
        # head's from the models, which now hold both branches.
        (config.migrations_dir / SNAPSHOT_DIR / f"{move.old.path.stem}.sql").unlink(missing_ok=True)
    theirs_sum = _file_at(config, onto, config.migrations_dir / sums.SUM_FILE)
    ours = {
        revision_key(move.new_path, config.versions_dir): move.new_path.read_bytes()
        for move in moves
    }
    (config.migrations_dir / sums.SUM_FILE).write_text(sums.record(theirs_sum, ours))


def _set(text: str, name: str, value: str) -> str:
    """Replace the module-level ``name = ...`` (annotated or not, over however many lines)."""
    for node in ast.parse(text).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == name and node.end_lineno is not None:
            lines = text.splitlines(keepends=True)
            first = lines[node.lineno - 1]
            head = first[: first.index("=", target.end_col_offset or 0) + 1]
            lines[node.lineno - 1 : node.end_lineno] = [f"{head} {value}\n"]
            return "".join(lines)
    raise FatalError(f"no {name} = ... line to rewrite")


def _next_id(current: str, parent: str, taken: set[str], naming: str) -> str:
    """The next sequence number after every id taken; a timestamp after its new parent's;
    any other id stays as it is unless it collides."""
    if naming == "sequence" and (current.isdigit() or not current):
        numbers = [int(rev) for rev in taken if rev.isdigit() and len(rev) <= 6]
        return str(max(numbers, default=0) + 1).zfill(SEQUENCE_WIDTH)
    if naming == "timestamp" and _is_timestamp(current) and _is_timestamp(parent):
        return current if current > parent and current not in taken else following(parent, naming)
    if current in taken:
        raise FatalError(f"revision id {current} is taken on both branches: rename one by hand")
    return current


def _is_timestamp(revision: str) -> bool:
    return bool(re.fullmatch(r"\d{8}_\d{6}", revision))


def _oldest_first(headers: list[graph.Header]) -> list[graph.Header]:
    """This branch's revisions, each after its parents among them."""
    ids = {header.revision for header in headers}
    ordered: list[graph.Header] = []
    placed: set[str | None] = set()
    pending = sorted(headers, key=lambda header: header.path.name)
    while pending:
        ready = [h for h in pending if all(p not in ids or p in placed for p in h.parents)]
        if not ready:
            raise FatalError("this branch's revisions loop: fix their down_revision by hand")
        for header in ready:
            ordered.append(header)
            placed.add(header.revision)
        pending = [h for h in pending if h not in ready]
    return ordered


def _files_at(config: Config, ref: str) -> set[str]:
    top = Path(proc.run(["git", "-C", config.root, "rev-parse", "--show-toplevel"]).strip())
    relative = config.versions_dir.resolve().relative_to(top)
    try:
        listed = proc.run(
            ["git", "-C", top, "ls-tree", "-r", "-z", "--name-only", f"{ref}:{relative.as_posix()}"]
        )
    except FatalError:
        raise FatalError(
            f"{ref!r} is not a branch or commit with {relative}",
            hint="name the branch to rebase onto: --onto main",
        ) from None
    return {name for name in listed.split("\0") if is_revision_file(name)}


def _file_at(config: Config, ref: str, path: Path) -> str | None:
    top = Path(proc.run(["git", "-C", config.root, "rev-parse", "--show-toplevel"]).strip())
    try:
        return proc.run(
            ["git", "-C", top, "show", f"{ref}:{path.resolve().relative_to(top).as_posix()}"]
        )
    except FatalError:
        return None

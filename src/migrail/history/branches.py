"""Where a history's heads part, in the few lines a person reads to decide what to rebase.

Listing every revision of each branch does not scale: a second head made long ago, in a history
of hundreds of revisions, would list nearly all of them. What a person needs is the revision the
branches share last, the first few revisions of each branch after it, and each head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from migrail.history.graph import Header

SHOWN_AT_FORK = 3  # revisions of a branch shown after the fork, before its head
SHOWN_BRANCHES = 5


@dataclass(frozen=True)
class Branch:
    """One head's own revisions, those no other head has, oldest first (the head last)."""

    head: Header
    revisions: tuple[Header, ...]


@dataclass(frozen=True)
class Fork:
    """The revisions the heads share last (none: they share nothing), and each head's branch."""

    shared: tuple[Header, ...]
    branches: tuple[Branch, ...]


def fork(headers: Sequence[Header], heads: Sequence[Header]) -> Fork:
    """Where ``heads`` part: the shared revisions their branches build on, and each branch."""
    by_id = {header.revision: header for header in headers if header.revision}
    lines = {head.revision: _ancestry(by_id, head) for head in heads}
    common = set.intersection(*(set(line) for line in lines.values())) if lines else set()
    branches, shared = [], {}
    for head in heads:
        own = [by_id[rev] for rev in lines[head.revision] if rev not in common]
        branches.append(Branch(head, tuple(own)))
        for revision in own:
            shared.update({rev: by_id[rev] for rev in revision.parents if rev in common})
    return Fork(tuple(shared[rev] for rev in sorted(shared)), tuple(branches))


def describe(found: Fork) -> list[str]:
    """``the branches from 0004_base:`` then one line per branch, indented, each from its first
    revision to its head; a long one cut short in its middle, where it matters least."""
    start = ", ".join(header.display for header in found.shared) or "base"
    lines = [f"the branches from {start}:"]
    for branch in found.branches[:SHOWN_BRANCHES]:
        names = [header.display for header in branch.revisions]
        if len(names) > SHOWN_AT_FORK + 1:
            hidden = len(names) - SHOWN_AT_FORK - 1
            names = [*names[:SHOWN_AT_FORK], f"({hidden} more)", names[-1]]
        lines.append("  " + " -> ".join(names))
    if len(found.branches) > SHOWN_BRANCHES:
        lines.append(f"  (and {len(found.branches) - SHOWN_BRANCHES} more heads)")
    return lines


def _ancestry(by_id: dict[str, Header], head: Header) -> list[str]:
    """``head`` and every revision it builds on, oldest first (each after its parents).

    Iterative, so that a history of thousands of revisions does not exhaust Python's stack.
    """
    order: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, bool]] = [(head.revision or "", False)]
    while stack:
        revision, expanded = stack.pop()
        if expanded:
            order.append(revision)
            continue
        if revision in seen or revision not in by_id:
            continue
        seen.add(revision)
        stack.append((revision, True))
        stack.extend((parent, False) for parent in reversed(by_id[revision].parents))
    return order

"""Checks of the history as a whole, cheap enough for every commit: no database, no imports.

Each check is a function of the project's configuration and a ``Tree`` (the disk, or what is
staged) that returns findings; ``migrail check`` and the commit hooks run the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from migrail import graph, sums
from migrail.findings import Finding

if TYPE_CHECKING:
    from migrail.config import Config
    from migrail.tree import Tree

Check = Callable[["Config", "Tree"], list[Finding]]


def single_head(config: Config, tree: Tree) -> list[Finding]:
    """The history has one head, no cycle, no duplicate id and no parent that does not exist.

    Two branches that each add a revision on the same parent leave two heads, and ``upgrade
    head`` then refuses to run; found at commit time, it is a rebase, not an outage.
    """
    headers = _headers(config, tree)
    found = []
    for problem in graph.problems(headers):
        hint = _HINTS.get(problem.kind)
        if problem.kind == "multiple-heads":
            tips = [h for h in headers if h.revision in problem.revisions]
            base = set(_common_ancestors(headers, tips))
            branches = [
                f"{tip.name}: "
                + " <- ".join(h.name for h in graph.branch_of(headers, tip.revision or "", base))
                for tip in tips
            ]
            hint = f"branches ({'; '.join(branches)}); {hint}"
        found.append(_finding(config, f"single-head/{problem.kind}", problem.message, hint))
    return found


def immutable(config: Config, tree: Tree) -> list[Finding]:
    """A revision recorded in ``migrail.sum`` is not edited, removed or added unrecorded.

    Released revisions have run in production: editing one changes nothing there but makes the
    repository lie about what ran. A deliberate change refreshes the sum (``migrail sum --update``).
    """
    sum_path = config.migrations_dir / sums.SUM_FILE
    text = tree.read(sum_path)
    files = {path.name: content for path, content in tree.files(config.versions_dir, ".py").items()}
    files.pop("__init__.py", None)
    if text is None:
        return [
            _finding(
                config,
                "immutable/no-sum",
                f"{_relative(config, sum_path)} does not exist",
                _SUM_HINT,
            )
        ]
    return [
        _finding(config, f"immutable/{problem.kind}", problem.message, _SUM_HINT)
        for problem in sums.verify(text.decode(errors="replace"), files)
    ]


CHECKS: dict[str, Check] = {"single-head": single_head, "immutable": immutable}


def _headers(config: Config, tree: Tree) -> list[graph.Header]:
    files = tree.files(config.versions_dir, ".py")
    return [
        graph.read_header(path, content.decode(errors="replace"))
        for path, content in files.items()
        if path.name != "__init__.py"
    ]


def _common_ancestors(headers: list[graph.Header], tips: list[graph.Header]) -> list[str]:
    by_id = {header.revision: header for header in headers}

    def ancestors(revision: str | None) -> set[str]:
        seen: set[str] = set()
        stack = [revision]
        while stack:
            current = by_id.get(stack.pop())
            for parent in current.parents if current else ():
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    common = set.intersection(*(ancestors(tip.revision) for tip in tips)) if tips else set()
    return sorted(common)


def _finding(config: Config, rule: str, message: str, hint: str | None) -> Finding:
    return Finding(
        rule=rule, severity="error", message=message, path=config.versions_dir, help=hint
    )


def _relative(config: Config, path: Path) -> str:
    return str(path.relative_to(config.root))


_SUM_HINT = "if the change is deliberate, refresh the sum: migrail sum --update"
_HINTS = {
    "multiple-heads": "put one branch's revisions after the other's: set the oldest one's "
    "down_revision to the other head, then migrail sum --update",
    "dangling-parent": "fix its down_revision, or restore the revision it names",
    "duplicate-id": "give one of them a new id (and rename its file to match)",
    "cycle": "a revision cannot come after itself: fix the down_revision that closes the loop",
    "no-revision-id": 'every revision file declares revision = "<id>"',
}

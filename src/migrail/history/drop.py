"""Dropping a revision that is not released yet: its file, SQL, snapshot and sum line.

A draft revision is often generated again after a model is changed once more (drizzle-kit's
``drop``). A released one may have run somewhere, so it is undone by a new revision instead; one
that others build on would leave them with a parent that does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.core.files import read_text
from migrail.core.writes import all_or_nothing
from migrail.history import graph, sums
from migrail.history.released import released
from migrail.history.revision_files import revision_key
from migrail.history.snapshot import snapshot_path

if TYPE_CHECKING:
    from migrail.core.config import Config


def droppable(config: Config, wanted: str) -> graph.Header:
    """The revision ``wanted`` (its id or file stem), if git says it is a draft nothing builds
    on; a FatalError saying why not otherwise."""
    headers = graph.read_headers(config.versions_dir)
    header = _find(config, headers, wanted)
    _refuse_released(config, header)
    children = sorted(h.name for h in headers if header.revision in h.parents)
    if children:
        raise FatalError(
            f"{header.name} cannot be dropped: {', '.join(children)} build(s) on it",
            hint=f"drop those first, newest first: migrail drop {children[-1]}",
        )
    return header


def drop_revision(config: Config, header: graph.Header) -> list[Path]:
    """Remove the revision ``header`` (see ``droppable``) and what belongs to it, all or
    nothing; the paths removed (the sum, when it changed, last)."""
    paths = [
        path
        for path in (
            header.path,
            config.sql_dir / f"{header.name}.sql",
            snapshot_path(config, header.name),
        )
        if path.exists() or path.is_symlink()
    ]
    sum_path = config.migrations_dir / sums.SUM_FILE
    recorded = sums.parse_sum(read_text(sum_path))[0] if sum_path.exists() else {}
    with all_or_nothing() as writes:
        for path in paths:
            writes.remove(path)
        if recorded.pop(revision_key(header.path, config.versions_dir), None) is not None:
            writes.write(sum_path, sums.render_digests(recorded))
            paths.append(sum_path)
    return paths


def _find(config: Config, headers: list[graph.Header], wanted: str) -> graph.Header:
    found = [h for h in headers if wanted in (h.revision, h.name)]
    if len(found) != 1:
        where = config.shown(config.versions_dir)
        problem = "no revision" if not found else "more than one revision"
        raise FatalError(
            f"{problem} {wanted!r} in {where}",
            hint="name it by its id or its file name without .py (migrail status lists them)",
        )
    return found[0]


def _refuse_released(config: Config, header: graph.Header) -> None:
    state = released(config)
    if not state.is_released(revision_key(header.path, config.versions_dir)):
        return
    where = (
        f"it is on {state.base}"
        if state.base and state.files is not None
        else "outside a git repository with a base branch, every revision counts as released"
    )
    raise FatalError(
        f"{header.name} is released ({where}), so it may have run somewhere",
        hint="undo it with a new revision instead: migrail generate NAME",
    )

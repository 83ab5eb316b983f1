"""The revision graph from the migrations folder: order, plans, and what a revision declares."""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

    from migrail.core.config import Config

IRREVERSIBLE_MARKER = "irreversible"
# ``# migrail: allow RULE[, RULE] -- reason``: a finding accepted, next to the code it is about.
ALLOW_COMMENT = re.compile(
    r"#\s*migrail:\s*allow\s+(?P<rules>[\w\-,\s]+?)\s*(?:--\s*(?P<reason>.*?))?\s*$"
)


def check_versions_folder(config: Config) -> None:
    """Refuse a versions folder that is a file, or that cannot be listed: either would read as
    a history without revisions ("nothing to prove", "up to date"). One that does not exist is
    a history without revisions (git keeps no empty folder), unless ``migrail.sum`` records
    revisions: then it was lost, and ``sum --update`` would record its loss."""
    versions = config.versions_dir
    shown = config.shown(versions)
    if not versions.exists() and not versions.is_symlink():
        _check_nothing_recorded(config, shown)
        return
    if not versions.is_dir():
        raise FatalError(
            f"{shown} is not a folder: it should hold the revision files",
            hint="move it aside and restore the folder of revision files (git checkout)",
        )
    try:
        next(versions.iterdir(), None)
    except OSError as exc:
        raise FatalError(
            f"cannot read the revision files in {shown}: {exc.strerror}",
            hint=f"let this user read it: chmod u+rx {shown} (or run as its owner)",
        ) from None


def _check_nothing_recorded(config: Config, shown: str) -> None:
    from migrail.core import files
    from migrail.history import sums

    path = config.migrations_dir / sums.SUM_FILE
    if not path.exists():
        return
    recorded = len(sums.parse_sum(files.read_text(path))[0])
    if recorded:
        raise FatalError(
            f"{shown} does not exist, but {config.shown(path)} records {recorded} revision(s)",
            hint=f"restore the folder (git checkout {shown}); to start the history anew, "
            f"remove {config.shown(path)} too",
        )


def ordered_revisions(script: ScriptDirectory) -> list[Script]:
    """Every revision from base to head, oldest first."""
    return list(reversed(list(script.walk_revisions("base", "heads"))))


def upgrade_plan(
    script: ScriptDirectory, current: Sequence[str], target: str = "heads"
) -> list[Script]:
    """The revisions an upgrade from ``current`` to ``target`` applies, in the order Alembic
    applies them: computed by Alembic itself, so that a database at one branch of a merge gets
    the other branch too, and each step is named as the revision it really is."""
    # Alembic's migration context passes the database's heads as a tuple, as here; the
    # annotation says one revision.
    with _as_history_error():
        steps = script._upgrade_revs(target, tuple(current))  # type: ignore[arg-type]
    return [step.revision for step in steps]


def downgrade_plan(script: ScriptDirectory, current: Sequence[str], target: str) -> list[Script]:
    """The revisions a downgrade from ``current`` to ``target`` undoes, newest first, as
    Alembic undoes them (every branch of a merge included)."""
    if not current or (len(current) == 1 and current[0] == target):
        return []
    with _as_history_error():
        steps = script._downgrade_revs(target, tuple(current))  # type: ignore[arg-type]
    return [step.revision for step in steps]


@contextmanager
def _as_history_error() -> Iterator[None]:
    """Alembic's refusal to plan (overlapping heads in the database, say), in words."""
    from alembic.util import CommandError

    try:
        yield
    except CommandError as exc:
        raise FatalError(
            f"the revisions to apply cannot be worked out: {exc}",
            hint="check what the database's alembic_version holds against the history",
        ) from None


def irreversible_reason(revision: Script) -> str | None:
    """The reason a revision gives for having no working downgrade, if it declares one.

    A revision declares it with a module-level ``irreversible = "why"``; the staging round trip
    then goes down to it and no further.
    """
    reason = getattr(revision.module, IRREVERSIBLE_MARKER, None)
    if reason is None or reason is False:
        return None
    return reason if isinstance(reason, str) and reason.strip() else "declared irreversible"


def allows(revision: Script, rule: str) -> bool:
    """Whether the revision's file accepts ``rule`` with a ``# migrail: allow`` comment that
    gives a reason: what runs the revision lets it do what the rule is about (lint holds the
    comment to the lines it covers). The file is read once for each time it was loaded (each
    ``Script``): every revision asks as its transaction begins, in each phase."""
    rules = _RULES.get(revision)
    if rules is None:
        rules = _RULES[revision] = _allowed_rules(Path(revision.path))
    return rule in rules


_RULES: weakref.WeakKeyDictionary[Script, frozenset[str]] = weakref.WeakKeyDictionary()


def _allowed_rules(path: Path) -> frozenset[str]:
    """The rules the file at ``path`` accepts, each with a reason."""
    try:
        source = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    found = (ALLOW_COMMENT.search(line) for line in source.splitlines() if "migrail:" in line)
    return frozenset(
        name.strip()
        for comment in found
        if comment and (comment["reason"] or "").strip()
        for name in comment["rules"].split(",")
    )


def round_trip_floor(revisions: Sequence[Script]) -> tuple[str, str | None]:
    """How far down the round trip goes: ``("base", None)`` or the newest irreversible revision."""
    for revision in reversed(revisions):
        reason = irreversible_reason(revision)
        if reason is not None:
            return revision.revision, reason
    return "base", None


def undo_order(
    script: ScriptDirectory, revisions: Sequence[Script], floors: Sequence[str]
) -> list[Script]:
    """The revisions of ``revisions`` (oldest first) that going down to ``floors`` undoes, in
    the order to undo them: all but the floors (``base`` is none) and their ancestors, newest
    first. Unlike Alembic's downgrade to a revision, this includes branches beside it, whatever
    the graph, and never an irreversible revision of another branch (pass them all as floors);
    each revision is a head by its turn."""
    kept = set()
    for floor in floors:
        if floor != "base":
            kept |= {r.revision for r in script.iterate_revisions(floor, "base")}
    return [r for r in reversed(revisions) if r.revision not in kept]


def parents(revision: Script) -> tuple[str, ...]:
    """The revisions ``revision`` follows: none for the first, two or more for a merge."""
    down = revision.down_revision
    return (down,) if isinstance(down, str) else tuple(down or ())


def is_linear(revisions: Sequence[Script]) -> bool:
    """Whether the history is one straight line: no merges, no revision with two children."""
    seen: set[str] = set()
    for revision in revisions:
        ups = parents(revision)
        if len(ups) > 1 or (ups and ups[0] in seen):
            return False
        seen.update(ups)
    return True


def find_revision(revisions: Sequence[Script], name: str, option: str) -> Script | None:
    """The revision ``name`` means: its id, a unique prefix of it, or its file stem; ``None``
    when none is. A prefix that begins several ids is refused with them listed: told "no such
    revision", one would look for a typo that is not there. ``option`` names where ``name``
    was given (``--to``)."""
    exact = [r for r in revisions if name in (r.revision, short_name(r))]
    if exact:
        return exact[0]
    prefixed = [r for r in revisions if r.revision.startswith(name)]
    if len(prefixed) > 1:
        shown = ", ".join(display_name(r) for r in prefixed[:5])
        more = f" and {len(prefixed) - 5} more" if len(prefixed) > 5 else ""
        raise FatalError(
            f"{option} {name}: {len(prefixed)} revisions' ids begin with it: {shown}{more}",
            hint="give more of the id, or the revision's file name",
        )
    return prefixed[0] if prefixed else None


def short_name(revision: Script) -> str:
    """The file stem people know a revision by, e.g. ``0002_add_priority``: what its SQL and
    snapshot files are named after. Output names a revision with ``display_name``."""
    return file_stem(os.path.split(revision.path)[1])


def file_stem(name: str) -> str:
    """``Path(name).stem`` of a file name, without making a Path: lint asks it of every
    revision and every SQL file, a thousand of each in a long history."""
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def display_name(revision: Script) -> str:
    """How output names a revision: its file stem, and its id when the stem does not hold it
    (``2024-11-07-1502_remove_x (ab12cd34ef56)``), so that what is shown can be searched for."""
    from migrail.history.file_names import with_id

    return with_id(short_name(revision), revision.revision)

"""Revision ids and file names: ``0002_add_user_roles.py`` (sequence), a timestamp prefix, or
Alembic's random 12-hex id (``alembic``, for histories adopted from plain Alembic)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from migrail.core.errors import FatalError

_WORD = re.compile(r"[a-z0-9]+")
SEQUENCE_WIDTH = 4
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"


def slugify(name: str) -> str:
    """``"Add user-roles"`` -> ``"add_user_roles"``; a name with no letters or digits is refused."""
    slug = "_".join(_WORD.findall(name.lower()))
    if not slug:
        raise FatalError(
            f"{name!r} is not a usable revision name",
            hint="name the change in a few words, e.g. add_user_roles",
        )
    return slug[:60]


def next_revision_id(existing: Iterable[str], naming: str, now: datetime | None = None) -> str:
    """The id of the next revision: one more than the highest sequence number, or the time."""
    taken = set(existing)
    if naming == "alembic":
        return _alembic_id(taken)
    if naming == "timestamp":
        revision_id = (now or datetime.now(UTC)).strftime(TIMESTAMP_FORMAT)
        if revision_id in taken:
            raise FatalError(f"a revision {revision_id} already exists: wait a second and retry")
        return revision_id
    # Only short all-digit ids are sequence numbers; Alembic's hex ids can start with digits.
    numbers = [int(rev) for rev in taken if re.fullmatch(r"\d{1,6}", rev)]
    highest = max(numbers, default=len(taken))
    return str(highest + 1).zfill(SEQUENCE_WIDTH)


def following(revision_id: str, naming: str) -> str:
    """The id right after ``revision_id``: the next number, one second later, or a new random id."""
    if naming == "alembic":
        return _alembic_id({revision_id})
    if naming == "timestamp":
        moment = datetime.strptime(revision_id, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        return (moment + timedelta(seconds=1)).strftime(TIMESTAMP_FORMAT)
    return str(int(revision_id) + 1).zfill(SEQUENCE_WIDTH)


def _alembic_id(taken: set[str]) -> str:
    """A new id the way ``alembic revision`` makes one, never one already taken."""
    from alembic.util import rev_id

    revision_id = rev_id()
    while revision_id in taken:
        revision_id = rev_id()
    return revision_id

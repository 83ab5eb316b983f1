"""``generate``'s receipt: its "no schema changes", said again at once while nothing it stands on
has changed.

A warm ``generate`` with no model change copies the template at head, compares the models with
it and finds nothing to write. That takes a second or more (Python's imports, the history's
headers, reflecting every table and column), and more as the history grows, for an answer its
inputs decide. So, as migrate-staging does (``receipts``), a run that found nothing records that
in the description of the template at head it compared with, under a key of every input
(``receipts.common_inputs``), with the other environment variables it read. The next run with the
same inputs says it again without importing SQLAlchemy or Alembic. Only "no change" is
recorded: a run that writes a revision is always a full one.

Two receipts answer it:

- "the models match the head" (``MATCH_FIELD``), for any revision name: recorded by generate,
  and by migrate-staging, whose model check at head is the same comparison (the project's
  filters and options; it compares server defaults even where autogenerate would not, so it
  finds at least what generate finds). Only where the project's ``env.py`` hands autogenerate
  nothing that could write a revision the comparison does not see: no
  ``process_revision_directives`` of its own (it sees the name and the id), no
  ``autogenerate_plugins``, and the models as ``target_metadata``.
- this name's (``FIELD``), where env.py has such a hook: recorded by generate only, and only
  where the next id follows from the files (``sequence``): a timestamp or a random id is new on
  every run, and the hook sees it.

Without a hook, the next revision's id decides nothing but the two refusals a full run makes
before comparing (``NextName``): an SQL file numbered like it that belongs to no revision, and a
timestamp id already taken. A run served from a receipt makes them too, so it answers as the
full run does whatever the project's ``revision_naming``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from sqlalchemy import MetaData
    from sqlalchemy.engine import URL

    from migrail.core.config import Config
    from migrail.staging.receipts import Answer

NO_CHANGES = "No schema changes, nothing to migrate"
# Their own fields in a template's description, beside migrate-staging's receipt.
FIELD = "generate_receipt"
MATCH_FIELD = "models_match"
_KIND = b"migrail generate receipt 2"
MATCH_KIND = b"migrail models match the head 1"
# What a timestamp id looks like (``naming.TIMESTAMP_FORMAT``).
_TIMESTAMP = re.compile(r"\d{8}_\d{6}")


@dataclass(frozen=True)
class Keys:
    """The keys a run may be answered under: any name's, and this name's (``None`` where its
    id is not a sequence number)."""

    match: str
    named: str | None


@dataclass(frozen=True)
class NextName:
    """What the next revision's id and file name follow from, as the recording run saw the
    history: the project's ``file_template``, the next sequence number (``sequence``), and the
    newest timestamp id (a new one must be later to be free)."""

    template: str | None
    next_sequence: str | None
    newest_timestamp: str | None

    def facts(self) -> dict[str, object]:
        return {
            "template": self.template,
            "next": self.next_sequence,
            "newest": self.newest_timestamp,
        }


def receipt_keys(config: Config, slug: str, common: str | None = None) -> Keys | None:
    """The keys of this run's inputs (``common``: ``receipts.common_inputs``, if known); ``None``
    where no receipt may answer: no warm cluster, no models, or an input that cannot be read."""
    from migrail.core.errors import FatalError
    from migrail.postgres.ephemeral import keep_warm
    from migrail.staging.receipts import common_inputs, derived_key

    if not keep_warm() or config.metadata is None:
        return None
    try:
        common = common if common is not None else common_inputs(config)
    except (OSError, FatalError):
        return None
    named = None
    if config.revision_naming == "sequence":
        named = derived_key(common, _KIND, f"generate {slug}")
    return Keys(derived_key(common, MATCH_KIND), named)


def match_key(common: str) -> str:
    """The key "the models match the head" is recorded under, for inputs ``common``."""
    from migrail.staging.receipts import derived_key

    return derived_key(common, MATCH_KIND)


def recorded_answer(config: Config, keys: Keys) -> Answer | None:
    """The answer a run with these inputs recorded on the warm cluster a run would use: any
    name's first, then this name's."""
    from migrail.staging.receipts import recorded_answer

    answer = recorded_answer(config, keys.match, MATCH_FIELD)
    if answer is None and keys.named is not None:
        answer = recorded_answer(config, keys.named, FIELD)
    return answer


def any_name(options: Mapping[str, Any] | None, metadata: MetaData | None) -> bool:
    """Whether "no difference" from a comparison of the models with the head is generate's
    answer whatever the revision's name and id: env.py (its ``configure()`` ``options``, as
    ``environment.options`` read them) hands autogenerate nothing else that could write one."""
    if options is None or metadata is None:
        return False
    return (
        options.get("process_revision_directives") is None
        and options.get("autogenerate_plugins") is None
        and options.get("target_metadata") is metadata
    )


def next_name(config: Config, ids: Iterable[str], template: str | None) -> NextName:
    """What the next revision's id follows from, for a history of revisions ``ids`` and the
    project's ``file_template`` (``file_names.project_template``'s)."""
    from migrail.history.naming import next_revision_id

    taken = list(ids)
    following = None
    if config.revision_naming == "sequence":
        following = next_revision_id(taken, "sequence")
    newest = max((rev for rev in taken if _TIMESTAMP.fullmatch(rev)), default=None)
    return NextName(template, following, newest)


def next_id(config: Config, answer: Answer) -> tuple[str, str | None] | None:
    """The id a full run would give the new revision now, with the file template, from what
    the receipt recorded (``NextName``); ``None`` where only a full run can tell (a timestamp
    not newer than the newest taken, a receipt without them)."""
    import uuid
    from datetime import UTC, datetime

    from migrail.history.naming import TIMESTAMP_FORMAT

    facts = answer.facts
    template = facts.get("template")
    if "next" not in facts or not isinstance(template, str | None):
        return None
    naming = config.revision_naming
    if naming == "sequence":
        following = facts["next"]
        return (following, template) if isinstance(following, str) else None
    if naming == "timestamp":
        now = datetime.now(UTC).strftime(TIMESTAMP_FORMAT)
        newest = facts.get("newest")
        return (now, template) if newest is None or now > str(newest) else None
    return uuid.uuid4().hex[-12:], template  # drawn as alembic.util.rev_id draws it


def record(
    template: tuple[URL, str],
    key: str,
    head: str,
    extensions: dict[str, str],
    variables: Mapping[str, str | None],
    name: NextName,
    field: str = MATCH_FIELD,
    *,
    root: Path | None = None,
) -> None:
    """Record "no schema changes" under ``key`` (in ``field``) on ``template`` (its server's
    URL, its name), the template at head the models were compared with; ``root``: the
    project's, whose modules the run imported count too (``receipts.imported_sources``)."""
    from migrail.staging.receipts import record

    admin_url, database = template
    facts = name.facts()
    record(
        admin_url, database, key, head, [NO_CHANGES], extensions, variables, field, facts, root=root
    )

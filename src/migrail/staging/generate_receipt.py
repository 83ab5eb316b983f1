"""``generate``'s receipt: its "no schema changes", said again at once while nothing it stands on
has changed.

A warm ``generate`` with no model change copies the template at head, compares the models with
it and finds nothing to write. That takes a second or more (Python's imports, the history's
headers, reflecting every table and column), and more as the history grows, for an answer its
inputs decide. So, as migrate-staging does (``receipts``), a run that found nothing records that
in the description of the template at head it compared with, under a key of every input
(``receipts.inputs_key``) and the revision's name (the project's ``env.py`` hooks see it), with
the other environment variables it read. The next run with the same inputs says it again without
importing SQLAlchemy or Alembic. Only "no change" is recorded: a run that writes a revision is
always a full one. And only where the next revision's id follows from the files: a timestamp or
a random id is new on every run, and the hooks see it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import URL

    from migrail.core.config import Config
    from migrail.staging.receipts import Answer

NO_CHANGES = "No schema changes, nothing to migrate"
# Its own field in a template's description, beside migrate-staging's receipt.
FIELD = "generate_receipt"
_KIND = b"migrail generate receipt 1"


def receipt_key(config: Config, slug: str) -> str | None:
    """The key of this run's inputs; ``None`` where no receipt may answer: no warm cluster,
    no models, an id that is not a sequence number, or an input that cannot be read."""
    from migrail.core.errors import FatalError
    from migrail.postgres.ephemeral import keep_warm
    from migrail.staging.receipts import inputs_key

    if not keep_warm() or config.metadata is None or config.revision_naming != "sequence":
        return None
    try:
        return inputs_key(config, _KIND, f"generate {slug}")
    except (OSError, FatalError):
        return None


def recorded_answer(config: Config, key: str) -> Answer | None:
    """The answer a run with these inputs recorded on the warm cluster a run would use."""
    from migrail.staging.receipts import recorded_answer

    return recorded_answer(config, key, FIELD)


def record(
    template: tuple[URL, str],
    key: str,
    head: str,
    extensions: dict[str, str],
    variables: Mapping[str, str | None],
) -> None:
    """Record "no schema changes" under ``key`` on ``template`` (its server's URL, its name),
    the template at head the models were compared with."""
    from migrail.staging.receipts import record

    admin_url, name = template
    record(admin_url, name, key, head, [NO_CHANGES], extensions, variables, FIELD)

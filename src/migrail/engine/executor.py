"""The project's migration history as Alembic loads it, and the one object through which
migrail drives Alembic on it.

``Executor`` holds what the history is (its revisions, its head, where a database stands in
it); its other jobs live in their own modules, and its methods for them only hand over:
loading the files (``loading``), applying revisions (``runner``), comparing the models and
writing revisions (``autogenerate``); rendering offline is ``render``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from migrail.core.errors import FatalError
from migrail.engine import autogenerate, environment, runner
from migrail.engine.loading import import_after, load_script
from migrail.engine.usercode import user_code
from migrail.history.revisions import display_name, ordered_revisions, upgrade_plan

if TYPE_CHECKING:
    from pathlib import Path

    from alembic.config import Config as AlembicConfig
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config
    from migrail.engine.runner import Move
    from migrail.engine.steps import Step


class Executor:
    """The project's migration history, and the Alembic calls migrail makes on it."""

    def __init__(
        self,
        config: Config,
        metadata: MetaData | None = None,
        needed: Collection[Path] | None = None,
    ) -> None:
        """``needed``: the revision files (resolved paths) the run works on; the revisions
        older than all of them are then imported only if used (``lazy_revisions``), every
        one when it is empty. ``None``: all imported as the history is loaded."""
        self.config = config
        self.metadata = metadata
        self.needed = needed
        self._ordered: tuple[ScriptDirectory, list[Script]] | None = None
        self._env_options: dict[str, Any] | None = None
        # The revision files' contents as loading read them, by path (``revision_paths``'s):
        # what else reads every file (the template cache's keys, the extensions) reads these.
        self.sources: dict[str, bytes] = {}

    def alembic_config(self, **attributes: Any) -> AlembicConfig:
        """An Alembic ``Config``, the project's settings kept; ``attributes`` reach env.py."""
        return environment.alembic_config(self.config, target_metadata=self.metadata, **attributes)

    def env_options(self, connection: Connection) -> dict[str, Any]:
        """The options the project's env.py passes to ``configure()`` (once per run)."""
        if self._env_options is None:
            with user_code(self.config.root):
                self._env_options = environment.options(
                    self.alembic_config(connection=connection), self.config, self.script, connection
                )
        return self._env_options

    def known_env_options(self) -> dict[str, Any] | None:
        """The options env.py passed to ``configure()``, if a comparison read them already."""
        return self._env_options

    @cached_property
    def script(self) -> ScriptDirectory:
        """The revision files, all loaded, so that a broken one is reported here and clearly."""
        return load_script(self)

    def import_after(self, held: Collection[str] = ()) -> None:
        """Import the revision files an upgrade of a database holding ``held`` (ids; none: an
        empty one) runs, if they were left for later (``needed``), so that a broken one is
        reported as loading reports it."""
        if self.needed is not None:
            import_after(self, held)

    def forget_script(self) -> None:
        """Load the revision files again when next asked: they changed on disk."""
        self.__dict__.pop("script", None)

    @property
    def head(self) -> str | None:
        return self.script.get_current_head()

    def revisions(self) -> list[Script]:
        """Every revision, oldest first (walked once per loaded history: a run asks often)."""
        return list(self.ordered(self.script))

    def ordered(self, script: ScriptDirectory) -> list[Script]:
        """Every revision of ``script``, oldest first, walked once: loading walks it too."""
        if self._ordered is None or self._ordered[0] is not script:
            self._ordered = (script, ordered_revisions(script))
        return self._ordered[1]

    def current(self, connection: Connection) -> tuple[str, ...]:
        """The revision(s) the database is at, read from its ``alembic_version`` table."""
        from alembic.runtime.migration import MigrationContext

        from migrail.postgres.bookkeeping import check_version_table

        where = self.version_table(connection)
        if not where:
            check_version_table(connection)
        heads = MigrationContext.configure(connection, opts=where).get_current_heads()
        connection.commit()
        unknown = [rev for rev in heads if not self._known(rev)]
        if unknown:
            raise FatalError(
                f"the database is at revision {', '.join(unknown)}, "
                "which this repository does not have",
                hint="the database is ahead of the code: check out the branch that added it",
            )
        return heads

    def version_table(self, connection: Connection) -> dict[str, Any]:
        """Where the project's own env.py keeps the revision (``version_table_schema``...);
        empty for migrail's env.py, which keeps Alembic's ``alembic_version``."""
        if environment.is_migrails(self.config):
            return {}
        theirs = self.env_options(connection)
        return {
            key: theirs[key] for key in ("version_table", "version_table_schema") if theirs.get(key)
        }

    def label(self, revisions: Sequence[str]) -> str:
        """``0002_add_priority`` for ``("0002",)``, as people know revisions; ``base`` for none."""
        if not revisions:
            return "base"
        return ", ".join(
            display_name(self.script.get_revision(rev)) if self._known(rev) else rev
            for rev in revisions
        )

    def _known(self, revision: str) -> bool:
        from alembic.util import CommandError

        try:
            return self.script.get_revision(revision) is not None
        except CommandError:
            return False

    def pending(self, current: Sequence[str]) -> list[Script]:
        """The revisions an upgrade to head would apply to a database at ``current``."""
        return upgrade_plan(self.script, current)

    @property
    def session_settings(self) -> str:
        """The SET statements every revision runs under (``runner.session_settings``)."""
        return runner.session_settings(self.config)

    def upgrade(
        self,
        connection: Connection,
        target: str = "heads",
        on_step: Callable[[Step], None] | None = None,
        in_transaction: Callable[[Step], None] | None = None,
    ) -> list[Step]:
        """Apply revisions up to ``target`` (``runner.upgrade``)."""
        return runner.upgrade(self, connection, target, on_step, in_transaction)

    def downgrade(
        self,
        connection: Connection,
        target: str,
        on_step: Callable[[Step], None] | None = None,
        in_transaction: Callable[[Step], None] | None = None,
    ) -> list[Step]:
        """Undo revisions down to ``target`` (``runner.downgrade``)."""
        return runner.downgrade(self, connection, target, on_step, in_transaction)

    def apply_exactly(
        self,
        connection: Connection,
        revisions: Sequence[Script],
        direction: str,
        on_step: Callable[[Step], None] | None = None,
        in_transaction: Callable[[Step], None] | None = None,
    ) -> list[Step]:
        """Upgrade or downgrade exactly ``revisions``, in order (``runner.apply_exactly``)."""
        return runner.apply_exactly(self, connection, revisions, direction, on_step, in_transaction)

    def apply_moves(self, connection: Connection, moves: Iterable[Move]) -> list[Step]:
        """Apply or undo revisions in turn in one run of env.py (``runner.apply_moves``)."""
        return runner.apply_moves(self, connection, moves)

    def compare(self, connection: Connection) -> list[Any]:
        """The differences between the database and the models (``autogenerate.compare``)."""
        return autogenerate.compare(self, connection)

    def new_revision(
        self, slug: str, revision_id: str, connection: Connection | None = None
    ) -> tuple[list[Script], list[Any]] | None:
        """Write the next revision file(s) (``autogenerate.new_revision``)."""
        return autogenerate.new_revision(self, slug, revision_id, connection)

"""Alembic, driven in code, in one place: load the history, apply it, compare it, render it."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from migrail import history
from migrail.errors import FatalError
from migrail.files import read_bytes
from migrail.models import importable
from migrail.steps import Step, StepWatch
from migrail.usercode import UserExit, user_code

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

    from migrail.config import Config


MAX_REVISION_BYTES = 10_000_000


def _history_error(exc: Exception, versions: Path) -> FatalError:
    """Alembic's CommandError about the history, in words that say which file to fix."""
    import re

    found = re.search(r"Could not determine revision id from filename (.+?\.py)", str(exc))
    if found:
        return FatalError(
            f"{versions / found.group(1)} declares no revision id "
            "(an empty or unfinished revision file)",
            hint="give it revision = '<id>' and down_revision, or delete it",
        )
    return FatalError(f"the migration history is broken: {exc}")


def _check_revision_source(path: Path, content: bytes) -> None:
    from migrail.graph import misdeclared

    if b"\0" in content:
        line = content.count(b"\n", 0, content.index(b"\0")) + 1
        raise FatalError(
            f"{path}:{line}: a NUL byte in a revision file: it is not Python source",
            hint="restore it (git checkout it); an editor that saves UTF-16 writes NUL bytes "
            "too: save it as UTF-8",
        )
    wrong = misdeclared(content.decode("utf-8", errors="replace"))
    if wrong is not None:
        raise FatalError(
            f"{path}:{wrong[0]}: {wrong[1]}",
            hint="write revision ids in quotes, e.g. revision = '0002', down_revision = '0001'",
        )


class Executor:
    """The project's migration history, and the Alembic calls migrail makes on it."""

    def __init__(self, config: Config, metadata: MetaData | None = None) -> None:
        self.config = config
        self.metadata = metadata

    def alembic_config(self, **attributes: Any) -> AlembicConfig:
        """An Alembic ``Config`` built in code; ``attributes`` reach ``env.py``."""
        from argparse import Namespace

        from alembic.config import Config as AlembicConfig

        # quiet: Alembic's own "Generating ..." lines would go to stdout, which is for data.
        cfg = AlembicConfig(stdout=io.StringIO(), cmd_opts=Namespace(quiet=True))
        cfg.set_main_option("script_location", str(self.config.migrations_dir))
        cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        cfg.set_main_option("truncate_slug_length", "60")
        cfg.attributes["target_metadata"] = self.metadata
        cfg.attributes.update(attributes)
        return cfg

    @cached_property
    def script(self) -> ScriptDirectory:
        """The revision files, all loaded, so that a broken one is reported here and clearly."""
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

        env_py = self.config.migrations_dir / "env.py"
        if not env_py.is_file():
            raise FatalError(
                f"{self.config.migrations_dir} has no env.py: it is not an Alembic environment",
                hint="check [tool.migrail] migrations in pyproject.toml",
            )
        read_bytes(env_py)  # run later, for each revision: one it cannot read is not theirs
        from alembic.script.revision import CycleDetected

        history.check_versions_folder(self.config)
        self._check_revision_files()
        importable(self.config.root)
        script = ScriptDirectory.from_config(self.alembic_config())
        try:
            with warnings.catch_warnings(), user_code(self.config.root):
                # Alembic only warns about a down_revision that names no revision, and about
                # two files declaring the same revision.
                warnings.simplefilter("error", UserWarning)
                heads = script.get_heads()
        except UserExit as exc:
            raise UserExit(f"loading the revision files: {exc.call}", exc.where) from None
        except UserWarning as exc:
            hint: str | None = "fix the down_revision of the revision that names a missing parent"
            if "more than once" in str(exc):
                hint = "two revision files declare that id: give one a new id (and its child)"
            raise FatalError(f"the migration history is broken: {exc}", hint=hint) from None
        except SyntaxError as exc:
            hint = "save the file as UTF-8" if "codec can't decode" in str(exc.msg) else None
            where = f"{exc.filename}:{exc.lineno}: " if exc.filename else ""
            raise FatalError(
                f"{where}syntax error in a revision file: {exc.msg}", hint=hint
            ) from None
        except CycleDetected as exc:
            raise FatalError(
                f"the migration history has a cycle: {', '.join(exc.revisions)} "
                "descend from each other",
                hint="fix their down_revision (or depends_on): each names what it comes after",
            ) from None
        except CommandError as exc:
            raise _history_error(exc, self.config.versions_dir) from None
        except Exception as exc:
            raise FatalError(
                f"{self._culprit(exc)}a revision file failed to load: {type(exc).__name__}: {exc}"
            ) from None
        if len(heads) > 1:
            raise FatalError(
                f"the migration history has {len(heads)} heads: {', '.join(sorted(heads))}",
                hint="merge them: alembic merge, or rebase one branch's revision onto the other",
            )
        return script

    def _check_revision_files(self) -> None:
        """What Alembic would fail on without naming the file: NUL bytes (a binary file, or
        UTF-16) and a header value of the wrong type (``revision = 6``). And a revision file of
        many megabytes is data, not a migration: loading it would take long and much memory,
        on every command (the hooks too)."""
        versions = self.config.versions_dir
        for path in sorted(versions.glob("*.py")) if versions.is_dir() else ():
            if path.name.startswith((".", "_")):
                continue  # as Alembic: an editor's lock file (.#x.py), __init__.py
            try:
                size = path.stat().st_size
                content = b"" if size > MAX_REVISION_BYTES else path.read_bytes()
            except OSError:
                continue  # a dangling link, say: Alembic says what it makes of it
            if size > MAX_REVISION_BYTES:
                raise FatalError(
                    f"{path}: a revision file of {size / 1_000_000:.1f} MB "
                    f"(the limit is {MAX_REVISION_BYTES // 1_000_000} MB)",
                    hint="load bulk data from a file or a script run by the revision, "
                    "not from the revision's own source",
                )
            _check_revision_source(path, content)

    def _culprit(self, exc: BaseException) -> str:
        """``path:line: `` of the revision file an exception was raised in, if it was."""
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        versions = str(self.config.versions_dir.resolve())
        inside = [frame for frame in frames if frame.filename.startswith(versions)]
        return f"{inside[-1].filename}:{inside[-1].lineno}: " if inside else ""

    @property
    def session_settings(self) -> str:
        """The SET statements every revision runs under, as SQL; applied and rendered alike."""
        return (
            f"SET lock_timeout = '{self.config.lock_timeout}';\n"
            f"SET statement_timeout = '{self.config.statement_timeout}';\n\n"
        )

    @property
    def head(self) -> str | None:
        return self.script.get_current_head()

    def revisions(self) -> list[Script]:
        """Every revision, oldest first."""
        return history.ordered_revisions(self.script)

    def current(self, connection: Connection) -> tuple[str, ...]:
        """The revision(s) the database is at, read from its ``alembic_version`` table."""
        from alembic.runtime.migration import MigrationContext

        from migrail.bookkeeping import check_version_table

        check_version_table(connection)
        heads = MigrationContext.configure(connection).get_current_heads()
        connection.commit()
        unknown = [rev for rev in heads if not self._known(rev)]
        if unknown:
            raise FatalError(
                f"the database is at revision {', '.join(unknown)}, "
                "which this repository does not have",
                hint="the database is ahead of the code: check out the branch that added it",
            )
        return heads

    def label(self, revisions: Sequence[str]) -> str:
        """``0002_add_priority`` for ``("0002",)``, as people know revisions; ``base`` for none."""
        if not revisions:
            return "base"
        return ", ".join(
            history.short_name(self.script.get_revision(rev)) if self._known(rev) else rev
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
        return history.upgrade_plan(self.script, current)

    def upgrade(
        self,
        connection: Connection,
        target: str = "heads",
        on_step: Callable[[Step], None] | None = None,
        in_transaction: Callable[[Step], None] | None = None,
    ) -> list[Step]:
        """Apply revisions up to ``target``, one transaction each; a failure is MigrationFailed.

        ``in_transaction`` runs at the end of each revision, in its transaction, so that what it
        writes commits (or not) with the revision itself.
        """
        plan = history.upgrade_plan(self.script, self.current(connection), target)
        return self._run("upgrade", connection, plan, target, on_step, in_transaction)

    def downgrade(
        self, connection: Connection, target: str, on_step: Callable[[Step], None] | None = None
    ) -> list[Step]:
        """Undo revisions down to ``target`` (which stays applied), one transaction each."""
        plan = history.downgrade_plan(self.script, self.current(connection), target)
        return self._run("downgrade", connection, plan, target, on_step)

    def compare(self, connection: Connection) -> list[Any]:
        """Autogenerate's differences between the database and the models (empty: they match)."""
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext
        from sqlalchemy.exc import DBAPIError

        from migrail.steps import describe_error

        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        try:
            diffs = compare_metadata(context, self.metadata) if self.metadata is not None else []
        except DBAPIError as exc:  # SQLAlchemy's reflection, on a name it does not quote well
            raise FatalError(
                f"the models could not be compared with the schema: {describe_error(exc)}",
                hint="SQLAlchemy failed to read the schema back; check the names it mentions",
            ) from None
        connection.rollback()
        return list(diffs)

    def new_revision(
        self, slug: str, revision_id: str, connection: Connection | None = None
    ) -> tuple[list[Script], list[Any]] | None:
        """Write the next revision file(s), and return them with the differences they migrate.

        With a connection (a database at head), autogenerate fills it from the models, in their
        safe form (``safe_rewrite``, which may add a follow-up revision), and nothing is written
        when there is no difference (``None``); without a connection, the revision is empty.
        """
        from alembic import command
        from alembic.util import CommandError
        from mako.exceptions import MakoException  # type: ignore[import-untyped]  # no stubs

        from migrail.naming import following
        from migrail.safe_rewrite import make_safe

        found: list[Any] = []

        def write_safe_changes(context: Any, revision: Any, directives: list[Any]) -> None:
            operations = directives[0].upgrade_ops
            if connection is None:
                return
            if operations.is_empty():
                directives[:] = []
                return
            found.extend(operations.as_diffs())
            make_safe(directives, lambda rev: following(rev, self.config.revision_naming))

        cfg = self.alembic_config(
            connection=connection, process_revision_directives=write_safe_changes
        )
        template = self.config.migrations_dir / "script.py.mako"
        if not template.is_file():
            raise FatalError(
                f"{template} does not exist: Alembic writes each revision from that template",
                hint="restore it (git checkout it), or copy the one alembic init writes",
            )
        try:
            with user_code(self.config.root):
                written = command.revision(
                    cfg,
                    message=slug.replace("_", " "),
                    autogenerate=connection is not None,
                    rev_id=revision_id,
                )
        except (CommandError, MakoException) as exc:
            raise FatalError(
                f"Alembic could not write the revision: {exc}",
                hint=f"check {template}, the template revisions are written from",
            ) from None
        self.__dict__.pop("script", None)  # the history on disk just changed
        scripts = [
            script for script in (written if isinstance(written, list) else [written]) if script
        ]
        return (scripts, found) if scripts else None

    def upgrade_offline(
        self, start: list[str] | None, output: TextIO, on_step: Callable[..., None]
    ) -> None:
        """Render the upgrade from the heads ``start`` (``None``: base) to head into ``output``.

        What ``command.upgrade(sql=True)`` does, on the history already loaded here rather than
        on a second copy of it (loading 200 revision files costs as much as rendering them).
        """
        from alembic.runtime.environment import EnvironmentContext

        script = self.script
        cfg = self.alembic_config(on_version_apply=[on_step])
        cfg.output_buffer = output

        def upgrade(revision: Any, context: Any) -> Any:
            return script._upgrade_revs("heads", revision)

        with (
            user_code(self.config.root),
            EnvironmentContext(
                cfg, script, fn=upgrade, as_sql=True, starting_rev=start, destination_rev="heads"
            ),
        ):
            script.run_env()

    def _run(
        self,
        direction: str,
        connection: Connection,
        plan: list[Script],
        target: str,
        on_step: Callable[[Step], None] | None,
        in_transaction: Callable[[Step], None] | None = None,
    ) -> list[Step]:
        from alembic import command

        if not plan:
            return []
        for setting in self.session_settings.split(";")[:-1]:
            connection.exec_driver_sql(setting.strip())
        connection.commit()  # session settings, outside the revisions' own transactions
        watch = StepWatch(plan, on_step, in_transaction, root=self.config.root)
        cfg = self.alembic_config(connection=connection, on_version_apply=[watch.applied])
        with watch.watching(connection):
            try:
                socket = connection.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
                with user_code(self.config.root, sockets=[socket]):
                    if direction == "upgrade":
                        command.upgrade(cfg, target)
                    else:
                        command.downgrade(cfg, target)
            except Exception as exc:
                raise watch.failure(direction, exc) from exc
            watch.committed()
        return watch.steps

"""``migrail generate NAME``: the next revision, from the models, with its SQL beside it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.core import output
from migrail.core.errors import FatalError
from migrail.core.writes import Writes, all_or_nothing
from migrail.engine.diffs import NAMING_CONVENTION, describe_all, unnamed_constraints
from migrail.engine.executor import Executor
from migrail.engine.render import render_one
from migrail.engine.steps import MigrationFailed
from migrail.history import naming
from migrail.history.file_names import name_fits, project_template

if TYPE_CHECKING:
    from alembic.script import Script
    from rich.console import Console
    from sqlalchemy import MetaData

    from migrail.core.config import Config
    from migrail.postgres.ephemeral import Server
    from migrail.staging.at_head import HeadTemplates, Start


def generate(config: Config, *, name: str, empty: bool, console: Console) -> int:
    """Compare the models with the history's head on a throwaway database; write what differs."""
    from migrail.engine.models import load_metadata

    slug = naming.slugify(name)
    metadata = load_metadata(config)
    if metadata is None and not empty:
        raise FatalError(
            "generate compares models with the migrations, and no models are configured",
            hint="set [tool.migrail] metadata = 'package.module:metadata', "
            "or write the revision by hand: migrail generate --empty NAME",
        )
    # The revision files are imported only where they run: from the template's copy on.
    executor = Executor(config, metadata, needed=() if metadata is not None and not empty else None)
    previous = executor.head
    revision_id = naming.next_revision_id(
        (revision.revision for revision in executor.revisions()), config.revision_naming
    )
    _refuse_orphan_sql(config, revision_id)
    with all_or_nothing() as writes:  # a file that cannot be written leaves none of the others
        writes.watch(config.versions_dir)
        if empty:
            written = executor.new_revision(slug, revision_id)
        else:
            from migrail.core.environ_reads import recording
            from migrail.engine.usercode import running_here

            # A template kept records what the revisions read (templates).
            with recording(running_here):
                written = _autogenerate(executor, slug, revision_id, console)
        if written is None:
            output.info(console, "No schema changes, nothing to migrate")
            return 0
        scripts, diffs = written
        paths = [Path(script.path) for script in scripts]
        sql_paths = [config.sql_dir / f"{path.stem}.sql" for path in paths]
        for script, sql_path in zip(scripts, sql_paths, strict=True):
            writes.write(sql_path, render_one(executor, previous))
            previous = script.revision
        _record_in_sum(config, writes, paths)
        if metadata is not None and not empty:  # a hand-written revision keeps its schema
            _write_snapshots(config, writes, metadata, [path.stem for path in paths])
    output.items(console, describe_all(diffs))
    _warn_unnamed(console, metadata, diffs)
    for path, sql_path in zip(paths, sql_paths, strict=True):
        output.success(console, f"Your migration ➜ {_relative(path, config.root)}")
        output.success(console, f"Its SQL, for review ➜ {_relative(sql_path, config.root)}")
    return 0


def _warn_unnamed(console: Console, metadata: MetaData | None, diffs: list[Any]) -> None:
    """A constraint written without a name has a downgrade that cannot drop it: say which, and
    what names it (a naming convention, when the models have none)."""
    unnamed = unnamed_constraints(diffs)
    if not unnamed:
        return
    for line in unnamed:
        output.warning(console, f"{line}: its downgrade's drop_constraint(None, ...) cannot run")
    convention = metadata.naming_convention if metadata is not None else {}
    missing = {key: value for key, value in NAMING_CONVENTION.items() if key not in convention}
    output.info(
        console,
        f"hint: name it, or give the models' MetaData a naming convention: "
        f"MetaData(naming_convention={missing!r}); then generate again",
    )


def _refuse_orphan_sql(config: Config, revision_id: str) -> None:
    """An SQL file numbered like the new revision belongs to none (its revision was deleted):
    the new one's SQL would be written over it or beside it, so nothing is written."""
    found = project_template(config)
    template = found.template if found is not None else None
    orphans = sorted(
        path
        for path in config.sql_dir.glob("*.sql")
        if name_fits(path.stem, revision_id, template) and path.stem != revision_id
    )
    if orphans:
        raise FatalError(
            f"{_relative(orphans[0], config.root)} belongs to no revision, and the new revision "
            f"would be numbered {revision_id} too",
            hint="remove it if its revision was deleted on purpose (migrail lint --fix-sql "
            "removes such files), or restore that revision; then generate again",
        )


def _autogenerate(
    executor: Executor, slug: str, revision_id: str, console: Console
) -> tuple[list[Script], list[Any]] | None:
    from migrail.history.extensions import created_extensions
    from migrail.postgres.ephemeral import TemplateGone, ephemeral_server
    from migrail.staging.at_head import Start, head_templates

    # The history is loaded (``generate`` asked for its head): the files as loading read them.
    extensions = created_extensions(executor.config, executor.sources)
    with ephemeral_server(extensions=extensions) as server:
        output.info(
            console,
            f"Comparing models with head on a throwaway database "
            f"({server.description}, PostgreSQL {server.version})",
        )
        templates = head_templates(executor, server)
        start = templates.start() if templates is not None else Start(None, 0, None)
        try:
            return _at_head(executor, server, templates, start, console, slug, revision_id)
        except TemplateGone:  # another run dropped it after it was found: replay the history
            return _at_head(
                executor, server, templates, Start(None, 0, None), console, slug, revision_id
            )


def _at_head(
    executor: Executor,
    server: Server,
    templates: HeadTemplates | None,
    start: Start,
    console: Console,
    slug: str,
    revision_id: str,
) -> tuple[list[Script], list[Any]] | None:
    """Bring a new database (a copy of ``start``'s template, or empty) to head, keep it as a
    template when it was replayed, and write the revision from the difference."""
    from migrail.postgres.database import connect

    executor.import_after(start.revision)
    if start.revision is not None:
        at = executor.label((start.revision,))
        output.info(console, f"template cache: starting from a copy of the database at {at}")
    with server.database(start.template) as url:
        with connect(url) as connection:
            try:
                executor.upgrade(connection)
            except MigrationFailed as failed:
                raise FatalError(
                    f"the existing history does not apply: {failed}",
                    hint="fix it first; `migrail migrate-staging` shows the details",
                ) from None
        if templates is not None and url.database is not None:
            templates.keep(url.database, start)
        with connect(url) as connection:
            return executor.new_revision(slug, revision_id, connection)


def _write_snapshots(config: Config, writes: Writes, metadata: MetaData, stems: list[str]) -> None:
    """The models' schema as of the new revisions, for the commit hook to compare against."""
    from migrail.history.snapshot import models_snapshot, snapshot_path

    text = models_snapshot(config, metadata)
    for stem in stems:
        writes.write(snapshot_path(config, stem), text)


def _record_in_sum(config: Config, writes: Writes, paths: list[Path]) -> None:
    """New revisions go into migrations/migrail.sum; what it recorded before stays as it was."""
    from migrail.core.files import read_bytes
    from migrail.history import sums
    from migrail.history.revision_files import revision_key, revision_paths
    from migrail.history.tree import DiskTree

    sum_path = config.migrations_dir / sums.SUM_FILE
    recorded = DiskTree().read(sum_path)
    try:
        current = recorded.decode("utf-8") if recorded is not None else None
    except UnicodeDecodeError:
        raise FatalError(
            f"{sum_path} is not UTF-8 text",
            hint="restore it (git checkout it), or record the history anew: migrail sum --update",
        ) from None
    if current is None:  # the first sum records the whole history as it stands
        paths = revision_paths(config.versions_dir)
    files = {revision_key(path, config.versions_dir): read_bytes(path) for path in paths}
    writes.write(sum_path, sums.record(current, files))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)

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
from migrail.history.file_names import orphan_sql, project_template
from migrail.staging.generate_receipt import NO_CHANGES, next_name

if TYPE_CHECKING:
    from alembic.script import Script
    from rich.console import Console
    from sqlalchemy import MetaData
    from sqlalchemy.engine import URL, Connection

    from migrail.core.config import Config
    from migrail.core.environ_reads import Reads
    from migrail.postgres.ephemeral import Server
    from migrail.staging.at_head import HeadTemplates, Start
    from migrail.staging.generate_receipt import Keys, NextName

    # A receipt to record where the models match the head: its keys, and what the run read.
    Receipt = tuple[Keys, Reads]


def generate(config: Config, *, name: str, empty: bool, console: Console) -> int:
    """Compare the models with the history's head on a throwaway database; write what differs.

    A warm run whose inputs are those of an earlier one that found no difference (a generate,
    or migrate-staging's model check) says so from that run's receipt
    (``staging.generate_receipt``), without comparing again."""
    slug = naming.slugify(name)
    if empty:
        return _generate(config, slug, empty, console, None)
    from migrail.core.environ_reads import recording
    from migrail.engine.usercode import running_here
    from migrail.staging import generate_receipt
    from migrail.staging.receipts import say

    keys = generate_receipt.receipt_keys(config, slug)
    answer = generate_receipt.recorded_answer(config, keys) if keys is not None else None
    following = generate_receipt.next_id(config, answer) if answer is not None else None
    if answer is not None and following is not None:
        _refuse_orphan_sql(config, *following)  # as the full run refuses, before comparing
        say(answer, "compared the models with this history")
        return 0
    if keys is None:
        return _generate(config, slug, empty, console, None)
    # What the answer depends on besides the files (the receipt's): what the project's code
    # reads of the environment, not what migrail reads meanwhile.
    with recording(running_here) as reads:
        return _generate(config, slug, empty, console, (keys, reads))


def _generate(
    config: Config, slug: str, empty: bool, console: Console, receipt: Receipt | None
) -> int:
    from migrail.engine.models import load_metadata

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
    ids = [revision.revision for revision in executor.revisions()]
    revision_id = naming.next_revision_id(ids, config.revision_naming)
    found = project_template(config)
    template = found.template if found is not None else None
    _refuse_orphan_sql(config, revision_id, template)
    with all_or_nothing() as writes:  # a file that cannot be written leaves none of the others
        writes.watch(config.versions_dir)
        if empty:
            written = executor.new_revision(slug, revision_id)
        else:
            from migrail.core.environ_reads import recording
            from migrail.engine.usercode import running_here

            # A template kept records what the revisions read (templates).
            with recording(running_here):
                named = next_name(config, ids, template) if receipt is not None else None
                written = _autogenerate(executor, slug, revision_id, console, receipt, named)
        if written is None:
            output.info(console, NO_CHANGES)
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


def _refuse_orphan_sql(config: Config, revision_id: str, template: str | None) -> None:
    """An SQL file numbered like the new revision belongs to none (its revision was deleted):
    the new one's SQL would be written over it or beside it, so nothing is written."""
    orphans = orphan_sql(config.sql_dir, revision_id, template)
    if orphans:
        raise FatalError(
            f"{_relative(orphans[0], config.root)} belongs to no revision, and the new revision "
            f"would be numbered {revision_id} too",
            hint="remove it if its revision was deleted on purpose (migrail lint --fix-sql "
            "removes such files), or restore that revision; then generate again",
        )


def _autogenerate(
    executor: Executor,
    slug: str,
    revision_id: str,
    console: Console,
    receipt: Receipt | None,
    named: NextName | None,
) -> tuple[list[Script], list[Any]] | None:
    from migrail.history.extensions import created_extensions
    from migrail.postgres.ephemeral import TemplateGone, ephemeral_server
    from migrail.staging import generate_receipt
    from migrail.staging.at_head import Start, head_templates

    # The history is loaded (``generate`` asked for its head): the files as loading read them.
    extensions = created_extensions(executor.config, executor.sources)
    # Named now: writing the revision (or finding none) makes the executor forget the history,
    # which naming the head afterwards would load again.
    head = executor.label((executor.head,)) if executor.head is not None else None
    with ephemeral_server(extensions=extensions) as server:
        output.info(
            console,
            f"Comparing models with head on a throwaway database "
            f"({server.description}, PostgreSQL {server.version})",
        )
        templates = head_templates(executor, server)
        start = templates.start() if templates is not None else Start(None, 0, None)
        wanted = receipt is not None
        try:
            written, at_head, options = _at_head(
                executor, server, templates, start, console, (slug, revision_id), wanted
            )
        except TemplateGone:  # another run dropped it after it was found: replay the history
            empty = Start(None, 0, None)
            written, at_head, options = _at_head(
                executor, server, templates, empty, console, (slug, revision_id), wanted
            )
        if written is None and at_head is not None and receipt is not None and head is not None:
            assert named is not None
            any_name = generate_receipt.any_name(options, executor.metadata)
            template = (server.admin_url, at_head)
            root = executor.config.root
            _record_no_change(receipt, template, head, extensions, named, any_name, root)
        return written


def _record_no_change(
    receipt: Receipt,
    template: tuple[URL, str],
    head: str,
    extensions: dict[str, str],
    named: NextName,
    any_name: bool,
    root: Path,
) -> None:
    """The models match the head: the next run with these inputs may say so from a receipt
    (whatever its revision's name, unless env.py's hooks see it), unless this one read the
    whole environment (then every variable counts, none is stable)."""
    from migrail.staging.generate_receipt import FIELD, MATCH_FIELD, record

    keys, reads = receipt
    if reads.whole:
        return
    if any_name:
        record(template, keys.match, head, extensions, reads.seen, named, MATCH_FIELD, root=root)
    elif keys.named is not None:
        record(template, keys.named, head, extensions, reads.seen, named, FIELD, root=root)


def _at_head(
    executor: Executor,
    server: Server,
    templates: HeadTemplates | None,
    start: Start,
    console: Console,
    new: tuple[str, str],
    wanted: bool,
) -> tuple[tuple[list[Script], list[Any]] | None, str | None, dict[str, Any] | None]:
    """Bring a new database (a copy of ``start``'s template, or empty) to head, keep it as a
    template when it was replayed, and write the revision from the difference; with the name
    of the template at head, if there is one, and (``wanted``: a receipt may be recorded)
    the options env.py gives autogenerate, which decide what a receipt may answer for.
    ``new``: the new revision's slug and id."""
    from migrail.postgres.database import connect

    executor.import_after({r.revision for r in executor.revisions()[: start.position]})
    if start.revision is not None:
        at = executor.label((start.revision,))
        output.info(console, f"template cache: starting from a copy of the database at {at}")
    with server.database(start.template) as url:
        with connect(url) as connection:
            try:
                _to_head(executor, connection, start.position)
            except MigrationFailed as failed:
                raise FatalError(
                    f"the existing history does not apply: {failed}",
                    hint="fix it first; `migrail migrate-staging` shows the details",
                ) from None
        at_head = None
        if templates is not None and url.database is not None:
            at_head = templates.keep(url.database, start)
        with connect(url) as connection:
            # Read before writing: a new revision makes the executor load the history again.
            options = executor.env_options(connection) if wanted else None
            return executor.new_revision(*new, connection), at_head, options


def _to_head(executor: Executor, connection: Connection, position: int) -> None:
    """Apply the revisions after the first ``position`` (those a template holds) in the order
    a replay from base applies them: from the heads of a history with branches, Alembic's
    upgrade may pick another order, which a history can depend on."""
    from migrail.history.revisions import is_linear

    revisions = executor.revisions()
    if position and not is_linear(revisions):
        executor.apply_exactly(connection, revisions[position:], "upgrade")
    else:
        executor.upgrade(connection)


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

"""Autogenerate: the models compared with a database, and the next revision file written from
the difference, in its safe form."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from migrail.core.errors import FatalError
from migrail.engine.usercode import user_code

if TYPE_CHECKING:
    from alembic.script import Script
    from sqlalchemy.engine import Connection

    from migrail.engine.executor import Executor


_UNNAMED_DROP = "Autogenerate rendered a drop_constraint"


def compare(executor: Executor, connection: Connection) -> list[Any]:
    """Autogenerate's differences between the database and the models (empty: they match)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import DBAPIError

    from migrail.engine.environment import COMPARE_OPTIONS
    from migrail.engine.steps import describe_error

    theirs = executor.env_options(connection)
    options = {"compare_type": True, "compare_server_default": True}
    options.update({key: theirs[key] for key in COMPARE_OPTIONS if key in theirs})
    context = MigrationContext.configure(connection, opts=options)
    metadata = executor.metadata
    try:
        diffs = compare_metadata(context, metadata) if metadata is not None else []
    except DBAPIError as exc:  # SQLAlchemy's reflection, on a name it does not quote well
        raise FatalError(
            f"the models could not be compared with the schema: {describe_error(exc)}",
            hint="SQLAlchemy failed to read the schema back; check the names it mentions",
        ) from None
    connection.rollback()
    return list(diffs)


def new_revision(
    executor: Executor, slug: str, revision_id: str, connection: Connection | None = None
) -> tuple[list[Script], list[Any]] | None:
    """Write the next revision file(s), and return them with the differences they migrate.

    With a connection (a database at head), autogenerate fills it from the models, in their
    safe form (``safe_rewrite``, which may add a follow-up revision), and nothing is written
    when there is no difference (``None``); without a connection, the revision is empty.
    """
    from alembic import command
    from alembic.util import CommandError
    from mako.exceptions import MakoException  # type: ignore[import-untyped]  # no stubs

    from migrail.engine.environment import Run, every_environment, set_url
    from migrail.engine.safe_rewrite import make_safe
    from migrail.history.file_names import project_template, stem_pattern
    from migrail.history.naming import following

    config = executor.config
    found: list[Any] = []

    def write_safe_changes(context: Any, revision: Any, directives: list[Any]) -> None:
        if connection is None or not directives:  # the project's own hook may have emptied them
            return
        operations = directives[0].upgrade_ops
        if operations.is_empty():
            directives[:] = []
            return
        found.extend(operations.as_diffs())
        make_safe(directives, lambda rev: following(rev, config.revision_naming))

    if (named_by := project_template(config)) is not None:
        stem_pattern(named_by.template, revision_id)  # a field Alembic cannot fill, said plainly
    cfg = executor.alembic_config(
        connection=connection, process_revision_directives=write_safe_changes
    )
    set_url(cfg, connection)
    template = config.migrations_dir / "script.py.mako"
    if not template.is_file():
        raise FatalError(
            f"{template} does not exist: Alembic writes each revision from that template",
            hint="restore it (git checkout it), or copy the one alembic init writes",
        )
    try:
        with (
            warnings.catch_warnings(),
            user_code(config.root),
            every_environment(config, connection, Run()),
        ):
            # Said by generate itself, naming the table and the cure (diffs.unnamed_constraints).
            warnings.filterwarnings("ignore", _UNNAMED_DROP, UserWarning)
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
    executor.forget_script()  # the history on disk just changed
    scripts = [script for script in (written if isinstance(written, list) else [written]) if script]
    return (scripts, found) if scripts else None

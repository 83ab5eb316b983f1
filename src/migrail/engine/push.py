"""``push``: make a development database match the models directly, as drizzle-kit push does.

The changes are what autogenerate finds between the database and the models, applied in one
transaction. Those that lose data (a dropped table or column, a type change) are named with the
number of rows they touch, so that the command can ask before applying them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrail.engine.diffs import describe

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Change:
    """One operation push would run, and what it would destroy."""

    operation: Any
    description: str
    loses_data: bool = False
    table: str | None = None
    rows: int | None = None


def loss(change: Change) -> str:
    """What a lossy change destroys, as a sentence: ``Dropping column tasks.owner deletes its
    values in 2 rows.``"""
    from alembic.operations import ops

    operation = change.operation
    count = "an unknown number of" if change.rows is None else f"{change.rows:,}"
    rows = f"{count} row{'' if change.rows == 1 else 's'}"
    if isinstance(operation, ops.DropTableOp):
        return f"Dropping table {change.table} deletes its {rows}."
    if isinstance(operation, ops.DropColumnOp):
        column = f"{change.table}.{operation.column_name}"
        return f"Dropping column {column} deletes its values in {rows}."
    column = f"{change.table}.{getattr(operation, 'column_name', '?')}"
    return f"Changing the type of {column} converts its values in {rows}; some may not convert."


def planned_changes(connection: Connection, metadata: MetaData) -> list[Change]:
    """What it takes to make the database match the models, in order."""
    from alembic.autogenerate import produce_migrations
    from alembic.operations import ops
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True, "target_metadata": metadata},
    )
    script = produce_migrations(context, metadata)
    changes = []
    for operation in _leaves(script.upgrade_ops):
        lossy = isinstance(operation, (ops.DropTableOp, ops.DropColumnOp)) or (
            isinstance(operation, ops.AlterColumnOp) and operation.modify_type is not None
        )
        table = getattr(operation, "table_name", None)
        rows = _rows(connection, table) if lossy and table else None
        changes.append(Change(operation, describe(operation.to_diff_tuple()), lossy, table, rows))
    connection.rollback()
    return changes


def changes_sql(changes: list[Change]) -> str:
    """The PostgreSQL that the changes run, rendered offline (nothing is executed)."""
    import io

    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer}
    )
    operations = Operations(context)
    for change in changes:
        operations.invoke(change.operation)
    return buffer.getvalue()


def apply_changes(connection: Connection, changes: list[Change]) -> None:
    """Run every change in one transaction: all of them, or none."""
    from alembic.operations import Operations, ops
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import Enum
    from sqlalchemy.exc import DBAPIError

    from migrail.core.errors import FatalError
    from migrail.engine.steps import describe_error

    operations = Operations(MigrationContext.configure(connection))
    with connection.begin():
        for change in changes:
            operation = change.operation
            if isinstance(operation, ops.AddColumnOp) and isinstance(operation.column.type, Enum):
                operation.column.type.create(connection, checkfirst=True)  # add_column won't
            try:
                operations.invoke(change.operation)
            except DBAPIError as exc:
                raise FatalError(
                    f"push failed at {change.description}: {describe_error(exc)}; "
                    "nothing was changed",
                    hint="write a revision for this change: migrail generate NAME",
                ) from None


def _leaves(container: Any) -> list[Any]:
    """The operations themselves, out of autogenerate's per-table groups."""
    found = []
    for operation in getattr(container, "ops", []):
        found += _leaves(operation) if hasattr(operation, "ops") else [operation]
    return found


def _rows(connection: Connection, table: str) -> int:
    from sqlalchemy import func, select
    from sqlalchemy import table as table_clause

    return int(
        connection.execute(select(func.count()).select_from(table_clause(table))).scalar_one()
    )

"""Rules read from the revision file itself: its name, its message, its downgrade, its backfills.

The name is judged against the whole history (``file_names_match_revisions``), the others one
revision at a time.

Each rule is a function of one revision that returns findings; the docstring says why it exists.
``docs/rules.md`` shows each with an example and the safe alternative.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.engine.one_transaction import transaction_end
from migrail.history.file_names import name_fits, project_template, relative_stem
from migrail.history.revisions import irreversible_reason
from migrail.lint.findings import Finding, own_finding
from migrail.lint.sourcemap import function_named, op_call_nodes, sql_argument

if TYPE_CHECKING:
    from alembic.script import Script

    from migrail.core.config import Config

Rule = Callable[["Script", ast.Module], Iterator[Finding]]
# What Alembic's template puts in a docstring besides the message.
_HEADER_FIELDS = ("Revision ID:", "Revises:", "Create Date:")
_BACKFILL = re.compile(
    r"^\s*(?:update\s+(?:only\s+)?(?P<updated>[\w.\"]+)|insert\s+into\s+(?P<inserted>[\w.\"]+)"
    r"[^;]*\bselect\b)",
    re.IGNORECASE | re.DOTALL,
)


def file_names_match_revisions(
    revisions: Sequence[Script], history: Sequence[Script], config: Config
) -> list[Finding]:
    """Each file name holds its revision id, as the project's ``file_template`` places it (or
    as ``<rev>_<slug>``), so that people and tools find one from the other.

    A copied revision file that kept its old name, or an id edited by hand, breaks that link.
    A template without ``%(rev)s`` ties no name to an id, and a history whose files mostly do
    not follow its template was named by hand: each is said once, as a warning, rather than
    as one error per file.
    """
    found = project_template(config)
    template = found.template if found is not None else None
    if found is not None and not found.names_revisions:
        return [
            _once(
                found.source,
                f"file_template in {found.source.name} has no %(rev)s: "
                "revision file names are not checked against their ids",
            )
        ]
    versions = config.versions_dir  # once: a new Path each time it is asked
    misnamed = [
        revision
        for revision in history
        if not name_fits(relative_stem(revision.path, versions), revision.revision, template)
    ]
    if len(misnamed) > 1 and 2 * len(misnamed) > len(history):
        followed = f"file_template {template!r}" if template else "<rev>_<slug>"
        return [
            _once(
                config.versions_dir,
                f"{len(misnamed)} of {len(history)} revision files "
                f"are not named by {followed}: file names are not checked",
            )
        ]
    wanted = {revision.revision for revision in revisions}
    shape = f"as file_template {template!r} names it" if template else "at its start"
    return [
        own_finding(
            revision,
            "file-name-mismatch",
            f"the file name {Path(revision.path).name} does not hold its revision id "
            f"{revision.revision} {shape}",
        )
        for revision in misnamed
        if revision.revision in wanted
    ]


def _once(path: Path, message: str) -> Finding:
    """A note about the history's file names as a whole, not about one revision."""
    return Finding(
        rule="file-name-mismatch",
        severity="warning",
        message=message,
        path=path,
        url="docs/rules.md#file-name-mismatch",
    )


def has_message(revision: Script, tree: ast.Module) -> Iterator[Finding]:
    """Every revision says what it does in its docstring: it is all a reviewer sees in a listing."""
    lines = (ast.get_docstring(tree) or "").splitlines()
    message = " ".join(line for line in lines if not line.startswith(_HEADER_FIELDS)).strip()
    if message.lower() in ("", "empty message", "none"):
        yield own_finding(
            revision, "missing-message", "the revision has no docstring saying what it does", line=1
        )


def downgrade_undoes_upgrade(revision: Script, tree: ast.Module) -> Iterator[Finding]:
    """An upgrade that changes the schema has a downgrade that undoes it, or says it cannot.

    An empty downgrade makes a rollback silently skip the revision and leaves the schema in a
    state that no revision describes. A revision that cannot be undone declares
    ``irreversible = "why"``.
    """
    upgrade = function_named(tree, "upgrade")
    changes = upgrade is not None and any(map(_changes_schema, op_call_nodes(upgrade)))
    if not changes or irreversible_reason(revision) is not None:
        return
    downgrade = function_named(tree, "downgrade")
    if downgrade is None or all(_is_noop(statement) for statement in downgrade.body):
        line = downgrade.lineno if downgrade is not None else None
        yield own_finding(
            revision,
            "empty-downgrade",
            "the upgrade changes the schema but the downgrade does nothing",
            line=line,
        )


def backfill_apart_from_ddl(revision: Script, tree: ast.Module) -> Iterator[Finding]:
    """A data backfill does not share a transaction with DDL on the same table.

    The DDL's ACCESS EXCLUSIVE lock is held until COMMIT, so every row the backfill touches is
    written while reads and writes of the table wait. Backfill in a revision of its own (or in
    batches outside the DDL's transaction). A table created in that transaction is seen by no
    one until it commits, so filling it there blocks nobody.
    """
    for segment in _transactions(tree):
        created = {call.table for call in segment if call.name == "create_table"}
        ddl_tables = {
            call.table: call
            for call in segment
            if _is_ddl(call) and call.table and call.table not in created
        }
        for call in segment:
            match = _BACKFILL.match(call.sql or "") if call.name == "execute" else None
            table = _bare(match["updated"] or match["inserted"] or "") if match else ""
            if table and table in ddl_tables:
                yield own_finding(
                    revision,
                    "backfill-with-ddl",
                    f"a backfill of {table} runs in the same transaction as DDL on {table} "
                    f"(line {ddl_tables[table].line}), holding its lock while rows are written",
                    line=call.line,
                )


def keeps_its_transaction(revision: Script, tree: ast.Module) -> Iterator[Finding]:
    """A revision does not commit or roll back the transaction it runs in.

    Each revision runs in one transaction, so that a failure leaves none of it applied. A
    ``commit()`` part-way splits it: when a later statement fails, the first half stays while
    ``alembic_version`` still names the revision before. ``migrate`` and ``migrate-staging`` stop
    such a revision when it runs; this finds it in review. (An ORM ``Session`` bound to the
    connection commits to a savepoint, and is left alone.)
    """
    for function in ("upgrade", "downgrade"):
        body = function_named(tree, function)
        for line, what in _transaction_ends(body) if body is not None else ():
            yield own_finding(
                revision,
                "ends-transaction",
                f"{function}() ends its transaction part-way ({what}): a failure after it "
                "leaves the first half applied",
                line=line,
            )


# Alembic's alembic_version.version_num is VARCHAR(32): a longer id cannot be recorded.
VERSION_NUM_CHARS = 32


def id_fits_version_table(revision: Script, tree: ast.Module) -> Iterator[Finding]:
    """The revision id fits ``alembic_version.version_num``, which Alembic makes VARCHAR(32).

    A longer one (descriptive ids given with ``--rev-id``) runs its upgrade, then fails to
    record it: the revision is rolled back and every deployment stops there.
    """
    if len(revision.revision) <= VERSION_NUM_CHARS:
        return
    line = next(
        (
            node.lineno
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            and any(
                isinstance(target, ast.Name) and target.id == "revision"
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
        ),
        None,
    )
    yield own_finding(
        revision,
        "revision-id-too-long",
        f"the revision id {revision.revision!r} has {len(revision.revision)} characters; "
        f"alembic_version.version_num holds {VERSION_NUM_CHARS}, so recording the revision "
        "fails after it ran, and it is rolled back",
        line=line,
    )


RULES: tuple[Rule, ...] = (
    has_message,
    id_fits_version_table,
    downgrade_undoes_upgrade,
    backfill_apart_from_ddl,
    keeps_its_transaction,
)


def check_revision(revision: Script, tree: ast.Module) -> list[Finding]:
    """Every rule of this module, on one revision."""
    return [finding for rule in RULES for finding in rule(revision, tree)]


class _Call:
    """An ``op.`` call with what the backfill rule needs: its name, table and SQL."""

    def __init__(self, node: ast.Call) -> None:
        self.name = node.func.attr  # type: ignore[attr-defined]
        self.line = node.lineno
        self.sql = sql_argument(node)
        self.table = _table_of(self.name, node, self.sql)


def _transactions(tree: ast.Module) -> list[list[_Call]]:
    """The ``op.`` calls of ``upgrade()`` by transaction: an autocommit block splits them."""
    upgrade = function_named(tree, "upgrade")
    if upgrade is None:
        return []
    segments: list[list[_Call]] = [[]]
    for statement in upgrade.body:
        if isinstance(statement, ast.With) and "autocommit_block" in ast.unparse(statement):
            segments.append([])  # the block's statements run on their own, outside any transaction
            continue
        segments[-1] += [_Call(node) for node in op_call_nodes(statement)]
    return [segment for segment in segments if segment]


def _table_of(name: str, node: ast.Call, sql: str | None) -> str:
    """The table an operation works on, from its arguments or from the SQL it executes."""
    if name == "execute":
        match = _DDL_TABLE.match(sql or "")
        return _bare(match["table"]) if match else ""
    position, keyword = _TABLE_ARGUMENT.get(name, (0, "table_name"))
    for argument in node.keywords:
        if argument.arg == keyword and isinstance(argument.value, ast.Constant):
            return _bare(str(argument.value.value))
    if len(node.args) > position and isinstance(node.args[position], ast.Constant):
        return _bare(str(node.args[position].value))  # type: ignore[attr-defined]
    return ""


def _bare(table: str) -> str:
    return table.strip('"').lower()


# Where each operation names its table: (position, keyword).
_TABLE_ARGUMENT = {
    "create_index": (1, "table_name"),
    "drop_index": (1, "table_name"),
    "create_foreign_key": (1, "source_table"),
    "create_check_constraint": (1, "table_name"),
    "create_unique_constraint": (1, "table_name"),
    "create_primary_key": (1, "table_name"),
    "create_exclude_constraint": (1, "table_name"),
    "drop_constraint": (1, "table_name"),
    "rename_table": (0, "old_table_name"),
}
_DDL_TABLE = re.compile(
    r"\s*(?:alter\s+table\s+(?:only\s+)?(?:if\s+exists\s+)?"
    r"|create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?\S*\s*on\s+"
    r"(?:only\s+)?|drop\s+table\s+(?:if\s+exists\s+)?)(?P<table>[\w.\"]+)",
    re.IGNORECASE,
)


def _transaction_ends(function: ast.FunctionDef) -> Iterator[tuple[int, str]]:
    """Calls that end the transaction: ``commit()``/``rollback()`` on the migration's
    connection (``op.get_bind()``, or a name given it), and SQL that does (``COMMIT``), outside
    ``autocommit_block()``."""
    connections = {
        target.id
        for node in ast.walk(function)
        if isinstance(node, ast.Assign) and _is_connection(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    sanctioned = {
        id(inner)
        for node in ast.walk(function)
        if isinstance(node, ast.With) and "autocommit_block" in ast.unparse(node.items[0])
        for inner in ast.walk(node)
    }
    for node in ast.walk(function):
        if id(node) in sanctioned or not isinstance(node, ast.Call):
            continue
        if not isinstance(node.func, ast.Attribute):
            continue
        receiver = node.func.value
        mine = _is_connection(receiver) or (
            isinstance(receiver, ast.Name) and receiver.id in connections
        )
        if node.func.attr in ("commit", "rollback") and mine:
            yield node.lineno, f"{ast.unparse(node)}"
        else:
            end = transaction_end(sql_argument(node) or "")
            if end is not None:
                yield node.lineno, f"{end} in {ast.unparse(node)}"


def _is_connection(node: ast.expr) -> bool:
    """``op.get_bind()``, ``op.get_context().connection``, or a ``.connection`` of either."""
    text = ast.unparse(node)
    return text.endswith(("get_bind()", ".connection", "dbapi_connection"))


def _changes_schema(node: ast.Call) -> bool:
    """Whether an ``op.`` call changes the schema (DML and constraint validation do not)."""
    return _is_ddl(_Call(node))


def _is_ddl(call: _Call) -> bool:
    if call.name == "bulk_insert":
        return False
    if call.name != "execute":
        return True
    sql = (call.sql or "").lstrip().lower()
    return sql.startswith(_DDL) and "validate constraint" not in sql


_DDL = ("create ", "alter ", "drop ", "comment ")


def _is_noop(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Pass):
        return True
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)

"""Rules read from the revision file itself: its name, its message, its downgrade, its backfills.

Each rule is a function of one revision that returns findings; the docstring says why it exists.
``docs/rules.md`` shows each with an example and the safe alternative.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.findings import Finding, own_finding
from migrail.history import irreversible_reason
from migrail.sourcemap import function_named, op_call_nodes

if TYPE_CHECKING:
    from alembic.script import Script

Rule = Callable[["Script", ast.Module], Iterator[Finding]]
_BACKFILL = re.compile(
    r"^\s*(?:update\s+(?:only\s+)?(?P<updated>[\w.\"]+)|insert\s+into\s+(?P<inserted>[\w.\"]+)"
    r"[^;]*\bselect\b)",
    re.IGNORECASE | re.DOTALL,
)


def file_name_matches_revision(revision: Script, tree: ast.Module) -> Iterator[Finding]:
    """The file name starts with the revision id, so that people and tools find one from the other.

    A copied revision file that kept its old name, or an id edited by hand, breaks that link.
    """
    stem = Path(revision.path).stem
    if stem != revision.revision and not stem.startswith(f"{revision.revision}_"):
        yield own_finding(
            revision,
            "file-name-mismatch",
            f"the file name {stem}.py does not start with its revision id {revision.revision}",
        )


def has_message(revision: Script, tree: ast.Module) -> Iterator[Finding]:
    """Every revision says what it does in its docstring: it is all a reviewer sees in a listing."""
    if not (ast.get_docstring(tree) or "").strip():
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
    batches outside the DDL's transaction).
    """
    for segment in _transactions(tree):
        ddl_tables = {_table_of(call): call for call in segment if call.name != "execute"}
        for call in segment:
            if call.name != "execute" or call.sql is None:
                continue
            match = _BACKFILL.match(call.sql)
            table = match and (match["updated"] or match["inserted"] or "").strip('"').lower()
            if table and table in ddl_tables:
                yield own_finding(
                    revision,
                    "backfill-with-ddl",
                    f"a backfill of {table} runs in the same transaction as DDL on {table} "
                    f"(line {ddl_tables[table].line}), holding its lock while rows are written",
                    line=call.line,
                )


RULES: tuple[Rule, ...] = (
    file_name_matches_revision,
    has_message,
    downgrade_undoes_upgrade,
    backfill_apart_from_ddl,
)


def check_revision(revision: Script, tree: ast.Module) -> list[Finding]:
    """Every rule of this module, on one revision."""
    return [finding for rule in RULES for finding in rule(revision, tree)]


class _Call:
    """An ``op.`` call with what the backfill rule needs: its string arguments."""

    def __init__(self, node: ast.Call) -> None:
        self.name = node.func.attr  # type: ignore[attr-defined]
        self.line = node.lineno
        self.strings = [
            arg.value
            for arg in node.args
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
        self.sql = self.strings[0] if self.name == "execute" and self.strings else None


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


def _table_of(call: _Call) -> str:
    """The table an op works on: the first string argument, or the second for indexes."""
    index = 1 if call.name in ("create_index", "drop_index") and len(call.strings) > 1 else 0
    return call.strings[index].lower() if call.strings else ""


def _changes_schema(node: ast.Call) -> bool:
    """Whether an ``op.`` call changes the schema (DML and constraint validation do not)."""
    call = _Call(node)
    if call.name in ("bulk_insert", "inline_literal"):
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

"""Rules on the SQL a revision runs, for what squawk lets through.

squawk judges statements one by one and knows nothing of the tables a revision found when it
started. These rules read the rendered SQL (``statements.py``) and judge what blocks or destroys
data on a table that existed before the revision; a table the revision creates itself is empty
and unseen, so anything done to it is fine. Each finding points at the ``op.`` call that wrote
the statement. ``REINDEX`` without ``CONCURRENTLY`` is squawk's (``require-concurrent-reindex``),
and a revision that commits by itself is ``ends-transaction``'s: neither is repeated here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from migrail.core.urls import mask_text
from migrail.lint import sourcemap
from migrail.lint.findings import Finding, own_finding
from migrail.lint.statements import Statement, bare_name, split_statements, top_level

if TYPE_CHECKING:
    from alembic.script import Script


@dataclass(frozen=True)
class Context:
    """What a rule knows besides the statement: the tables the revision created before it, and
    production's major PostgreSQL version (``[tool.migrail.lint] pg_version``), if given."""

    created: frozenset[str]
    pg_major: int | None


# A rule: (rule name, message, help) for a statement it objects to, else None.
StatementRule = Callable[[Statement, Context], "tuple[str, str, str] | None"]

_NAME = r'(?:"(?:[^"]|"")*"|[\w$]+)(?:\.(?:"(?:[^"]|"")*"|[\w$]+))?'
_CREATE_TABLE = re.compile(
    rf"create\s+(?:(?:global\s+|local\s+)?(?:temp|temporary|unlogged)\s+)?table\s+"
    rf"(?:if\s+not\s+exists\s+)?(?P<table>{_NAME})"
)
_TRUNCATE = re.compile(
    r"truncate\s+(?:table\s+)?(?P<tables>.*?)(?:\s+(?:restart|continue|cascade|restrict)\b|$)"
)
_VACUUM_FULL = re.compile(r"vacuum\s+(?:\([^)]*\bfull\b[^)]*\)|full\b)\s*(?P<tables>.*)")
# What old-style VACUUM options and column lists leave around the table names.
_VACUUM_OPTIONS = re.compile(r"\([^)]*\)|^(?:(?:freeze|verbose|analyze|analyse)\s*)+")
_CLUSTER = re.compile(rf"cluster\b(?:\s+verbose)?(?:\s+\([^)]*\))?\s*(?P<tables>{_NAME})?")
_LOCK = re.compile(
    r"lock\s+(?:table\s+)?(?P<tables>.*?)(?:\s+in\s+(?P<mode>[\w ]+?)\s+mode)?(?:\s+nowait)?$"
)
_WRITE_BLOCKING_MODES = ("share", "share row exclusive", "exclusive", "access exclusive")
_WRITE = re.compile(
    rf"(?:with\s.*?\s)?(?P<verb>update|delete\s+from)\s+(?:only\s+)?(?P<table>{_NAME})"
)
_ADD_VALUE = re.compile(rf"alter\s+type\s+(?P<type>{_NAME})\s+add\s+value\b")


def truncate(statement: Statement, context: Context) -> tuple[str, str, str] | None:
    """TRUNCATE deletes every row of a table that holds data, under ACCESS EXCLUSIVE, and
    cannot be undone by a downgrade: squawk says nothing about it."""
    match = _TRUNCATE.match(statement.words)
    tables = _existing(match["tables"], context) if match else []
    if not tables:
        return None
    return (
        "truncate-table",
        f"TRUNCATE deletes every row of {', '.join(tables)}, under an ACCESS EXCLUSIVE lock; "
        "no downgrade brings them back",
        "delete the rows you mean in batches (DELETE ... WHERE id IN (SELECT ... LIMIT n)), "
        "or drop a table nothing reads any more in a revision of its own",
    )


def vacuum_full(statement: Statement, context: Context) -> tuple[str, str, str] | None:
    """VACUUM FULL rewrites the table under ACCESS EXCLUSIVE: reads and writes wait for the
    whole copy."""
    match = _VACUUM_FULL.match(statement.words)
    if match is None:
        return None
    named = _VACUUM_OPTIONS.sub("", match["tables"])
    tables = _existing(named, context) if named.strip() else ["every table"]
    if not tables:
        return None
    return (
        "vacuum-full",
        f"VACUUM FULL rewrites {', '.join(tables)} under an ACCESS EXCLUSIVE lock: reads and "
        "writes wait until the copy is done",
        "leave space reuse to autovacuum, or compact online with pg_repack or pg_squeeze, "
        "outside a migration",
    )


def cluster(statement: Statement, context: Context) -> tuple[str, str, str] | None:
    """CLUSTER rewrites the table in index order under ACCESS EXCLUSIVE."""
    match = _CLUSTER.match(statement.words)
    if match is None:
        return None
    tables = _existing(match["tables"], context) if match["tables"] else ["every clustered table"]
    if not tables:
        return None
    return (
        "cluster-table",
        f"CLUSTER rewrites {', '.join(tables)} under an ACCESS EXCLUSIVE lock: reads and "
        "writes wait until the copy is done",
        "reorder online with pg_repack --order-by, outside a migration",
    )


def lock_table(statement: Statement, context: Context) -> tuple[str, str, str] | None:
    """An explicit LOCK in a mode that blocks writes (ACCESS EXCLUSIVE unless a mode is given)
    holds every writer, and with ACCESS EXCLUSIVE every reader, until the revision commits."""
    match = _LOCK.match(statement.words)
    if match is None:
        return None
    mode = " ".join((match["mode"] or "access exclusive").split())
    tables = _existing(match["tables"], context)
    if mode not in _WRITE_BLOCKING_MODES or not tables:
        return None
    return (
        "lock-table",
        f"LOCK takes {mode.upper()} on {', '.join(tables)} and holds it until the revision "
        "commits: every write waits (with ACCESS EXCLUSIVE, every read too)",
        "lock nothing by hand: each statement takes the lock it needs, under lock_timeout; "
        "to keep two jobs apart, use pg_advisory_xact_lock",
    )


def unbatched_write(statement: Statement, context: Context) -> tuple[str, str, str] | None:
    """An UPDATE or DELETE without a WHERE touches every row of a table that holds data, in one
    transaction: every row stays locked, and the table bloats by its own size, until it commits."""
    if "alembic_version" in statement.words:
        return None
    match = _WRITE.match(top_level(statement.words))
    if match is None or " where " in f" {top_level(statement.words)} ":
        return None
    tables = _existing(match["table"], context)
    if not tables:
        return None
    verb = "UPDATE" if match["verb"] == "update" else "DELETE"
    return (
        "unbatched-write",
        f"{verb} without a WHERE writes every row of {tables[0]} in one transaction, "
        "each row locked until it commits",
        "write in batches, each in its own transaction (a WHERE on a key range, or "
        "WHERE id IN (SELECT id ... LIMIT n), inside op.get_context().autocommit_block())",
    )


def enum_value_in_transaction(
    statement: Statement, context: Context
) -> tuple[str, str, str] | None:
    """Before PostgreSQL 12, ALTER TYPE ... ADD VALUE cannot run inside a transaction block:
    production fails the revision although a newer staging server runs it."""
    match = _ADD_VALUE.match(statement.words)
    if match is None or not statement.in_transaction:
        return None
    if context.pg_major is None or context.pg_major >= 12:
        return None
    return (
        "enum-value-in-transaction",
        f"ALTER TYPE {bare_name(match['type'])} ADD VALUE runs inside the revision's "
        f"transaction, which PostgreSQL {context.pg_major} refuses",
        "run it in `with op.get_context().autocommit_block():`",
    )


RULES: tuple[StatementRule, ...] = (
    truncate,
    vacuum_full,
    cluster,
    lock_table,
    unbatched_write,
    enum_value_in_transaction,
)


def check_statements(
    revision: Script, sql: str, tree: ast.Module | None, pg_version: str | None
) -> Iterator[Finding]:
    """Every rule of this module on each statement ``revision`` runs (``sql``, as rendered)."""
    calls = sourcemap.op_calls(tree) if tree is not None else []
    created: set[str] = set()
    pg_major = _major(pg_version)
    for statement in split_statements(sql):
        context = Context(frozenset(created), pg_major)
        for rule in RULES:
            found = rule(statement, context)
            if found is None:
                continue
            name, message, advice = found
            line = sourcemap.locate(statement.text, calls)
            finding = own_finding(revision, name, message, line=line, help=advice)
            # Masked: a statement may carry a password, and findings go to CI logs.
            yield replace(finding, context={"statement": mask_text(statement.text)})
        if created_table := _CREATE_TABLE.match(statement.words):
            created.add(bare_name(created_table["table"]))


def _existing(names: str, context: Context) -> list[str]:
    """The tables of a comma-separated list that the revision did not create itself."""
    tables = [bare_name(name.strip().removeprefix("only ").strip()) for name in names.split(",")]
    return [table for table in tables if table and table not in context.created]


def _major(pg_version: str | None) -> int | None:
    """``"11"``, ``"11.4"``, ``"9.6"``: the major version (9.6 counts as 9)."""
    match = re.match(r"\s*(\d+)", pg_version or "")
    return int(match[1]) if match else None

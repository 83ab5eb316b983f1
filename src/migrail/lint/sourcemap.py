"""From a line of rendered SQL back to the ``op.`` call in the revision file that produced it."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class OpCall:
    """An ``op.<name>(...)`` call in ``upgrade()``: its line, and the words of its strings."""

    name: str
    line: int
    words: frozenset[str]
    sql: str | None = None  # for op.execute: the SQL it runs, when it is written out


def function_named(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    """The module-level function ``name`` (``upgrade``, ``downgrade``), if there is one."""
    return next(
        (node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name),
        None,
    )


# ``op.`` calls that are not operations: helpers, and the way to a connection or context.
NOT_OPERATIONS = frozenset({"get_bind", "get_context", "f", "inline_literal", "run_async"})


def op_call_nodes(node: ast.AST) -> list[ast.Call]:
    """The operations called under ``node``: ``op.<name>(...)``, and ``batch_op.<name>(...)``
    inside ``with op.batch_alter_table(...) as batch_op``."""
    receivers = {"op"} | {
        item.optional_vars.id
        for with_node in ast.walk(node)
        if isinstance(with_node, ast.With)
        for item in with_node.items
        if isinstance(item.optional_vars, ast.Name) and "batch_alter_table" in ast.unparse(item)
    }
    return [
        call
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id in receivers
        and call.func.attr not in NOT_OPERATIONS
    ]


def op_calls(tree: ast.Module, function: str = "upgrade") -> list[OpCall]:
    """The ``op.`` calls inside ``function``, in source order."""
    body = function_named(tree, function)
    if body is None:
        return []
    calls = [
        OpCall(
            node.func.attr,  # type: ignore[attr-defined]
            node.lineno,
            frozenset(_words(node)),
            sql_argument(node),
        )
        for node in op_call_nodes(body)
    ]
    return sorted(calls, key=lambda call: call.line)


def statement_at(sql: str, line: int) -> str:
    """The SQL statement that covers 1-based ``line`` (statements end with ``;``)."""
    lines = sql.splitlines()
    start = line - 1
    while start > 0 and not lines[start - 1].rstrip().endswith(";"):
        start -= 1
    end = line - 1
    while end < len(lines) - 1 and not lines[end].rstrip().endswith(";"):
        end += 1
    statement = lines[start : end + 1]
    while statement and (not statement[0].strip() or statement[0].lstrip().startswith("--")):
        statement.pop(0)  # Alembic's "-- Running upgrade" comment and blank lines
    return "\n".join(statement)


def locate(statement: str, calls: list[OpCall]) -> int | None:
    """The line of the call that most likely wrote ``statement``; ``None`` if no call fits.

    The kind of statement decides first (``ALTER TABLE .. ALTER COLUMN`` comes from
    ``alter_column``), then the names it shares with the call's strings; an ``op.execute``
    whose SQL is the statement itself wins outright.
    """
    text = " ".join(statement.split()).lower().rstrip(";")
    kinds = {name for pattern, name in _KINDS if pattern.match(text)}
    words = {word.lower() for word in _WORD.findall(statement)} - _SQL_WORDS
    best, best_score = None, 0
    for call in calls:
        score = len(words & call.words)
        if call.name in kinds:
            score += 100
        if call.name == "execute" and call.sql and " ".join(call.sql.split()).lower() in text:
            score += 1000
        if score > best_score:
            best, best_score = call.line, score
    return best


_KINDS = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"create (unique )?index", "create_index"),
        (r"drop index", "drop_index"),
        (r"create table", "create_table"),
        (r"drop table", "drop_table"),
        (r"alter table \S+ rename to", "rename_table"),
        (r"alter table \S+ rename (column )?\S+ to", "alter_column"),
        (r"alter table \S+ add (column )?", "add_column"),
        (r"alter table \S+ drop column", "drop_column"),
        (r"alter table \S+ alter (column )?", "alter_column"),
        (r"alter table \S+ add constraint \S+ foreign key", "create_foreign_key"),
        (r"alter table \S+ add constraint \S+ unique", "create_unique_constraint"),
        (r"alter table \S+ add constraint \S+ check", "create_check_constraint"),
        (r"alter table \S+ add constraint \S+ primary key", "create_primary_key"),
        (r"alter table \S+ drop constraint", "drop_constraint"),
    )
)
# Words every statement has: they say nothing about which call wrote it.
_SQL_KEYWORDS = """alter table add column drop create index unique on not null set default
    constraint foreign key references check primary update insert into select where from is and
    or concurrently if exists using type valid validate rename to begin commit with time zone text
    integer bigint varchar boolean timestamp jsonb now values returning as only cascade restrict
    serial smallint numeric"""
_SQL_WORDS = frozenset(_SQL_KEYWORDS.split())


def parse(source: str, path: Path) -> ast.Module | None:
    """The revision file's syntax tree, or ``None`` if it does not parse (reported elsewhere)."""
    try:
        return ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError):
        return None


def sql_argument(call: ast.Call) -> str | None:
    """The SQL an ``op.execute`` call (or a connection's ``execute``, ``exec_driver_sql``) runs,
    when written out: ``"..."`` or ``sa.text("...")``."""
    if not call.args or getattr(call.func, "attr", None) not in ("execute", "exec_driver_sql"):
        return None
    argument = call.args[0]
    if isinstance(argument, ast.Call) and argument.args:  # sa.text("...")
        argument = argument.args[0]
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value
    return None


def _words(call: ast.Call) -> set[str]:
    words: set[str] = set()
    for node in ast.walk(call):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.update(word.lower() for word in _WORD.findall(node.value))
    return words

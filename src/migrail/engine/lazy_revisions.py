"""Revision files that are imported only when something uses them.

Alembic imports every revision file to learn the graph, which is what ``lint --since`` pays
for a thousand revisions when it lints one (about 0.2 s, more without bytecode caches). The
graph is in each file's header, as literals (``history.graph.declared``): a revision whose
header says everything Alembic reads there gets a stand-in module holding those values, and
the file is imported the first time anything else (its ``upgrade``, its docstring) is asked
for. A file whose header cannot be read so is imported at once, as Alembic would.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.history.graph import declared
from migrail.history.revision_files import Folders, resolved

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping, Sequence

    from alembic.script import Script, ScriptDirectory


class LazyModule(types.ModuleType):
    """A revision module whose header values are known and whose code runs when first used."""

    def __init__(self, path: Path, header: dict[str, object], root: Path) -> None:
        super().__init__(path.stem)
        del self.__dict__["__doc__"]  # the file's, when asked for: see ``__getattr__``
        self.__dict__.update(header)
        self.__dict__["_migrail_path"] = path
        self.__dict__["_migrail_root"] = root  # the project's folder (``user_code``)
        self.__dict__["_migrail_module"] = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loaded(), name)

    def loaded(self) -> types.ModuleType:
        """The real module, imported now if it was not yet (as Alembic imports it), as the
        project's code: whenever that happens, an exit from it is a failure, and what it reads
        of the environment counts (``environ_reads``)."""
        from alembic import util

        from migrail.engine.usercode import user_code

        module = self.__dict__["_migrail_module"]
        if module is None:
            path: Path = self.__dict__["_migrail_path"]
            with user_code(self.__dict__["_migrail_root"]):
                module = util.load_python_file(str(path.parent), path.name)
            self.__dict__["_migrail_module"] = module
        return module  # type: ignore[no-any-return]


def _docstring(module: LazyModule) -> str | None:
    return module.loaded().__doc__


# The file's docstring (Alembic's ``Script.doc``): a property, which the instance's own
# ``__doc__`` (set by ``ModuleType``, removed in ``__init__``) would otherwise hide.
LazyModule.__doc__ = property(_docstring)  # type: ignore[assignment]


Header = dict[str, object]


def read_lazily(
    script: ScriptDirectory,
    sources: Mapping[str, bytes],
    headers: Mapping[str, Header | None],
    root: Path,
) -> None:
    """Let ``script`` (not yet asked for its revisions) import its revision files on use;
    ``sources``: contents already read, by path (the others are read here), and ``headers``
    what ``header_of`` made of them; ``root``: the project's folder."""
    from alembic.script.revision import RevisionMap

    script.revision_map = RevisionMap(lambda: _revisions(script, sources, headers, root))


def header_of(content: bytes) -> Header | None:
    """The values of a revision file's header, if it reads as literals (``declared``)."""
    try:
        return declared(content.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def realise_from(history: Sequence[Script], needed: Collection[Path]) -> None:
    """Import now the files of the revisions in ``needed`` and of every revision after the
    oldest of them in ``history`` (oldest first: what a run from there executes), so that a
    broken one fails here, as when Alembic loads them all; those before stay stand-ins."""
    # Alembic's paths are strings of resolved paths, as ``needed``'s are: compared as strings,
    # not made into a thousand Path objects.
    left = {str(path) for path in needed} & {revision.path for revision in history}
    for revision in reversed(history):
        if not left:
            return
        if isinstance(revision.module, LazyModule):
            revision.module.loaded()
        left.discard(revision.path)


def realise_after(revisions: Sequence[Script], held: Collection[str]) -> None:
    """Import now the files of ``revisions`` (oldest first) not in ``held``: those an upgrade
    of a database holding ``held`` runs."""
    for revision in reversed(revisions):  # newest first, as Alembic's walk reported them
        if revision.revision not in held and isinstance(revision.module, LazyModule):
            revision.module.loaded()


def _revisions(
    script: ScriptDirectory,
    sources: Mapping[str, bytes],
    headers: Mapping[str, Header | None],
    root: Path,
) -> Iterator[Script]:
    """What ``ScriptDirectory._load_revisions`` yields, stand-ins where headers suffice."""
    from alembic import util
    from alembic.script import Script

    seen = set()
    folders: Folders = {}
    for folder in (Path(location) for location in script._version_locations):
        if not folder.exists():
            continue
        for file_path in Script._list_py_dir(script, folder):
            # Paths from Alembic 1.15 on, strings before: made into one only when needed.
            path = file_path if isinstance(file_path, Path) else Path(file_path)
            real = resolved(path, folders)
            if real in seen:  # as Alembic says it (load_script turns it into an error)
                util.warn(
                    f"File {real} loaded twice! ignoring. Please ensure "
                    "version_locations is unique."
                )
                continue
            seen.add(real)
            name = str(file_path)
            header = None
            if not script.sourceless:
                header = _header(real, sources.get(name), headers.get(name, _UNREAD))
            if header is None:
                found = Script._from_path(script, real)
                if found is not None:
                    yield found
                continue
            yield Script(LazyModule(real, header, root), str(header["revision"]), real)


_UNREAD: Header = {}  # no header read yet (``header_of``'s answers include None)


def _header(path: Path, content: bytes | None, read: Header | None) -> Header | None:
    """The header of a revision file Alembic would load (``*.py``), if it reads as literals;
    ``read``: what loading made of it already (``_UNREAD``: nothing)."""
    from alembic.script.base import _only_source_rev_file

    if not _only_source_rev_file.match(path.name):
        return None
    if read is not _UNREAD:
        return read
    try:
        return header_of(path.read_bytes() if content is None else content)
    except OSError:
        return None

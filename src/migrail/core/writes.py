"""Files a command writes together: all of them, or none.

``generate`` writes a revision (through Alembic), its SQL, a schema snapshot and the sum, and
``drop`` removes them; a
read-only folder or a name taken by a folder must not leave half of that behind, which the
commit hooks would then trip over. Each write records how to undo itself; a failure anywhere in
the block undoes them all, and a file that cannot be written is named, with what is in the way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from migrail.core.errors import FatalError


class Writes:
    """The files written so far, and how to put each back as it was."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], object]] = []

    def write(self, path: Path, text: str) -> None:
        """Write ``text`` to ``path`` (and the folders it needs), undone by restoring what was
        there. In place, not renamed over: a read-only file stays read-only."""
        self._make_folders(path.parent)
        if path.is_file():
            previous = path.read_bytes()
            self._undo.append(lambda: path.write_bytes(previous))
        elif not path.exists() and not path.is_symlink():
            self._undo.append(lambda: path.unlink(missing_ok=True))
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise unwritable(path, exc) from None

    def remove(self, path: Path) -> None:
        """Remove the file ``path``, undone by writing it back as it was."""
        previous = path.read_bytes()
        try:
            path.unlink()
        except OSError as exc:
            raise unwritable(path, exc) from None
        self._undo.append(lambda: path.write_bytes(previous))

    def watch(self, folder: Path) -> None:
        """``folder`` is about to get files from another writer (Alembic): the files and folders
        new in it are removed on undo, whether that writer finished or failed half-way."""
        existed = folder.exists()
        before = set(_tree(folder))

        def remove_new() -> None:
            new = sorted(set(_tree(folder)) - before, reverse=True)  # files before their folders
            for path in [*new, *([] if existed else [folder])]:
                with contextlib.suppress(OSError):
                    path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()

        self._undo.append(remove_new)

    def undo(self) -> None:
        """Put back everything written, newest first; what cannot be put back stays."""
        for step in reversed(self._undo):
            with contextlib.suppress(OSError):
                step()
        self._undo.clear()

    def _make_folders(self, folder: Path) -> None:
        missing = []
        while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for made in reversed(missing):  # the outermost first, so undo removes it last
            try:
                made.mkdir()
            except OSError as exc:
                raise unwritable(made, exc) from None
            self._undo.append(made.rmdir)


@contextmanager
def all_or_nothing() -> Iterator[Writes]:
    """The files written in the block stay only if the whole block succeeds; an OSError from
    another writer there (Alembic's) is named as one of ours is."""
    writes = Writes()
    try:
        yield writes
    except OSError as exc:
        writes.undo()
        if exc.filename is None:
            raise
        raise unwritable(Path(exc.filename), exc) from None
    except BaseException:
        writes.undo()
        raise


def unwritable(path: Path, exc: OSError) -> FatalError:
    """``path`` could not be written: why, in words, and what to do (nothing was written)."""
    blocking = next(
        (parent for parent in reversed(path.parents) if parent.exists() and not parent.is_dir()),
        None,
    )
    fix = ""
    if blocking is not None:
        reason, fix = f"{blocking} is a file, not a folder", "move that file away; "
    elif path.is_dir():
        reason, fix = "a folder of that name is in the way", "move or rename that folder; "
    elif path.is_symlink() and not path.exists():
        reason = f"it is a link to {path.readlink()}, which does not exist"
        fix = "remove the link, or make what it points at; "
    elif isinstance(exc, PermissionError):
        reason, fix = str(exc.strerror), "make it writable, or run as a user who may write it; "
    else:
        reason = str(exc.strerror or exc)
    return FatalError(f"cannot write {path}: {reason}", hint=f"{fix}nothing was written")


def _tree(folder: Path) -> Iterator[Path]:
    return folder.rglob("*") if folder.is_dir() else iter(())

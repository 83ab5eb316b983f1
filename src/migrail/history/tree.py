"""The files a check reads: as they are on disk, or as they are staged for the next commit.

Commit hooks must judge what is staged: a revision file that is not ``git add``-ed, or a change
left unstaged, is not part of the commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from migrail.core import proc
from migrail.core.files import read_bytes
from migrail.history.revision_files import is_revision_file, revision_paths


class Tree(Protocol):
    def revisions(self, versions: Path) -> dict[Path, bytes]:
        """The revision files under ``versions``, at any depth (``revision_files``), by path."""
        ...

    def read(self, path: Path) -> bytes | None:
        """One file's content, ``None`` if it does not exist."""
        ...

    def checkout(self, paths: list[Path], into: Path, root: Path) -> Path | None:
        """A copy of the files under ``paths`` in ``into``, and where the project ``root`` is in
        it; ``None`` where the files can be read in place."""
        ...

    def changed(self, directory: Path) -> set[Path] | None:
        """The files under ``directory`` this commit adds or changes; ``None``: judge them all."""
        ...

    def python_files(self, paths: list[Path]) -> dict[Path, bytes]:
        """Every ``.py`` file at or under ``paths``, by path."""
        ...


class DiskTree:
    """The working tree, as it is. Hidden files (an editor's lock file ``.#0002_x.py``) are
    skipped, as Alembic and Python's imports skip them; any other file that cannot be read is
    a FatalError naming it."""

    def __init__(self) -> None:
        self._revisions: dict[Path, dict[Path, bytes]] = {}

    def revisions(self, versions: Path) -> dict[Path, bytes]:
        """Read once per run: the checks of one run each ask for them."""
        if versions not in self._revisions:
            self._revisions[versions] = {
                path: read_bytes(path) for path in revision_paths(versions)
            }
        return self._revisions[versions]

    def read(self, path: Path) -> bytes | None:
        return read_bytes(path) if path.exists() or path.is_symlink() else None

    def checkout(self, paths: list[Path], into: Path, root: Path) -> Path | None:
        """Nothing to copy: the working tree is read where it is (``None``)."""
        return None

    def changed(self, directory: Path) -> set[Path] | None:
        return None

    def python_files(self, paths: list[Path]) -> dict[Path, bytes]:
        found = [p for path in paths for p in ([path] if path.is_file() else path.rglob("*.py"))]
        return {
            path: read_bytes(path)
            for path in sorted(found)
            if "__pycache__" not in path.parts and not path.name.startswith(".")
        }


class StagedTree:
    """The git index: what ``git commit`` would record."""

    def __init__(self, root: Path) -> None:
        self.top = Path(proc.run(["git", "-C", root, "rev-parse", "--show-toplevel"]).strip())
        self._revisions: dict[Path, dict[Path, bytes]] = {}

    def revisions(self, versions: Path) -> dict[Path, bytes]:
        """Read once per run (one ``ls-files``, one ``cat-file``): each check asks for them."""
        if versions not in self._revisions:
            self._revisions[versions] = self._read_revisions(versions)
        return self._revisions[versions]

    def _read_revisions(self, versions: Path) -> dict[Path, bytes]:
        listed = proc.run(["git", "-C", self.top, "ls-files", "-z", "--cached", "--", versions])
        inside = versions.resolve().relative_to(self.top).as_posix()
        names = [name for name in listed.split("\0") if name]
        # git's names are relative to the top, which it gives resolved: nothing to resolve.
        names = [name for name in names if is_revision_file(name.removeprefix(f"{inside}/"))]
        contents = zip(names, self._staged(names), strict=True)
        return {self.top / name: content for name, content in contents if content is not None}

    def read(self, path: Path) -> bytes | None:
        [content] = self._contents([path])
        return content

    def checkout(self, paths: list[Path], into: Path, root: Path) -> Path | None:
        """Write the staged versions of everything under ``paths`` into ``into`` (same layout
        relative to the repository's top), and return where the project ``root`` is in it."""
        listed = proc.run(["git", "-C", self.top, "ls-files", "-z", "--cached", "--", *paths])
        if listed:
            proc.run_bytes(
                [
                    "git",
                    "-C",
                    self.top,
                    "checkout-index",
                    "-z",
                    "--force",
                    f"--prefix={into}/",
                    "--stdin",
                ],
                stdin=listed.encode(),
            )
        return into / root.resolve().relative_to(self.top)

    def changed(self, directory: Path) -> set[Path] | None:
        names = proc.run(
            [
                "git",
                "-C",
                self.top,
                "diff",
                "--cached",
                "-z",
                "--name-only",
                "--diff-filter=d",
                "--",
                directory,
            ]
        )
        return {(self.top / name).resolve() for name in names.split("\0") if name}

    def python_files(self, paths: list[Path]) -> dict[Path, bytes]:
        if not paths:
            return {}
        listed = proc.run(["git", "-C", self.top, "ls-files", "-z", "--cached", "--", *paths])
        found = [name for name in listed.split("\0") if name.endswith(".py")]
        contents = zip(found, self._staged(found), strict=True)
        return {self.top / name: content for name, content in contents if content is not None}

    def _contents(self, paths: list[Path]) -> list[bytes | None]:
        """All the files' staged contents in one ``git cat-file --batch`` (not a git per file)."""
        return self._staged([path.resolve().relative_to(self.top).as_posix() for path in paths])

    def _staged(self, names: list[str]) -> list[bytes | None]:
        """The staged contents of files named as git names them (relative to the top)."""
        if not names:
            return []
        output = proc.run_bytes(
            ["git", "-C", self.top, "cat-file", "--batch"],
            stdin="".join(f":{name}\n" for name in names).encode(),
        )
        return parse_batch(output, len(names))


def parse_batch(output: bytes, count: int) -> list[bytes | None]:
    """Contents from ``git cat-file --batch`` output: ``<oid> <type> <size>`` then the bytes;
    ``<name> missing`` for a file that is not staged."""
    contents: list[bytes | None] = []
    position = 0
    for _ in range(count):
        end = output.index(b"\n", position)
        header = output[position:end].split()
        position = end + 1
        if header[-1] == b"missing":
            contents.append(None)
            continue
        size = int(header[2])
        contents.append(output[position : position + size])
        position += size + 1  # the content is followed by a newline
    return contents

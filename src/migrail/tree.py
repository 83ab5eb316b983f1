"""The files a check reads: as they are on disk, or as they are staged for the next commit.

Commit hooks must judge what is staged: a revision file that is not ``git add``-ed, or a change
left unstaged, is not part of the commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from migrail import proc


class Tree(Protocol):
    def files(self, directory: Path, suffix: str) -> dict[Path, bytes]:
        """Files directly under ``directory`` ending in ``suffix``, by path."""
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

    def fingerprint(self, leave_out: Path) -> str | None:
        """A digest of every Python file's content but those under ``leave_out``, cheap to
        take; ``None``: not available."""
        ...

    def remembered(self, name: str, key: str) -> bool:
        """Whether check ``name`` last passed with exactly this ``key``."""
        ...

    def remember(self, name: str, key: str) -> None:
        """Record that check ``name`` passed with ``key``."""
        ...


class DiskTree:
    """The working tree, as it is."""

    def checkout(self, paths: list[Path], into: Path, root: Path) -> Path | None:
        """Nothing to copy: the working tree is read where it is (``None``)."""
        return None

    def changed(self, directory: Path) -> set[Path] | None:
        return None

    def fingerprint(self, leave_out: Path) -> str | None:
        return None  # the working tree has no cheap digest: every check runs in full

    def remembered(self, name: str, key: str) -> bool:
        return False

    def remember(self, name: str, key: str) -> None:
        return None

    def files(self, directory: Path, suffix: str) -> dict[Path, bytes]:
        return {path: path.read_bytes() for path in sorted(directory.glob(f"*{suffix}"))}

    def read(self, path: Path) -> bytes | None:
        return path.read_bytes() if path.is_file() else None


class StagedTree:
    """The git index: what ``git commit`` would record."""

    def __init__(self, root: Path) -> None:
        self.top = Path(proc.run(["git", "-C", root, "rev-parse", "--show-toplevel"]).strip())

    def files(self, directory: Path, suffix: str) -> dict[Path, bytes]:
        listed = proc.run(["git", "-C", self.top, "ls-files", "-z", "--cached", "--", directory])
        paths = [
            self.top / name
            for name in listed.split("\0")
            if name.endswith(suffix) and (self.top / name).parent == directory.resolve()
        ]
        contents = zip(paths, self._contents(paths), strict=True)
        return {path: content for path, content in contents if content is not None}

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

    def fingerprint(self, leave_out: Path) -> str | None:
        """The staged blob ids of the Python files: git has hashed their contents already."""
        import hashlib

        excluded = leave_out.resolve().relative_to(self.top).as_posix()
        listed = proc.run(
            ["git", "-C", self.top, "ls-files", "-s", "-z", "--", "*.py", f":(exclude){excluded}"]
        )
        return hashlib.sha256(listed.encode()).hexdigest()

    def remembered(self, name: str, key: str) -> bool:
        path = self._memory(name)
        return path.is_file() and path.read_text().strip() == key

    def remember(self, name: str, key: str) -> None:
        self._memory(name).write_text(key + "\n")

    def _memory(self, name: str) -> Path:
        """Where a check's last passing key is kept: inside .git, never committed."""
        git_dir = Path(proc.run(["git", "-C", self.top, "rev-parse", "--absolute-git-dir"]).strip())
        return git_dir / f"migrail-{name}.pass"

    def _contents(self, paths: list[Path]) -> list[bytes | None]:
        """All the files' staged contents in one ``git cat-file --batch`` (not a git per file)."""
        if not paths:
            return []
        names = [f":{path.resolve().relative_to(self.top).as_posix()}" for path in paths]
        output = proc.run_bytes(
            ["git", "-C", self.top, "cat-file", "--batch"],
            stdin="".join(f"{n}\n" for n in names).encode(),
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

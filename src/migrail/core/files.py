"""Reading the project's own files, where a file migrail cannot read is the user's to fix.

A folder where a file should be, a link to nothing, a file without read permission, or bytes
that are not UTF-8: each is said plainly, naming the file, rather than surfacing as a crash.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from pathlib import Path

_DENIED = "let the user running migrail {verb} it (chmod u+{flag}), or run as its owner"
_HINTS = {
    errno.EACCES: _DENIED,
    errno.EPERM: _DENIED,
    errno.EISDIR: "a folder is where the file should be: move the folder away",
    errno.ELOOP: "it is a link that leads back to itself: remove it",
}


def read_bytes(path: Path) -> bytes:
    """The content of ``path``; a FatalError naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from None


def sized_content(path: Path, limit: int) -> tuple[int, bytes]:
    """The size of ``path`` and its content, left unread (empty) over ``limit`` bytes; an
    OSError as ``open`` raises it. One open, one ``fstat`` and no Path method: every run reads
    a thousand revision files this way, where ``stat()`` then ``read_bytes()`` cost twice."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(descriptor).st_size
        if size > limit:
            return size, b""
        parts = [os.read(descriptor, size + 1)]
        while parts[-1]:  # to the end, however it comes: a short read, a file still growing
            parts.append(os.read(descriptor, 1 << 16))
        return size, b"".join(parts)
    finally:
        os.close(descriptor)


def read_text(path: Path) -> str:
    """The content of ``path`` as UTF-8 text; a FatalError naming the first byte that is not."""
    content = read_bytes(path)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise FatalError(
            f"{path}:{line}: not UTF-8 text (byte 0x{content[exc.start]:02x})",
            hint="save the file as UTF-8",
        ) from None


def unreadable(path: Path, exc: OSError) -> FatalError:
    """The error for a file that could not be read: what the system said, and what to do."""
    if exc.errno == errno.ENOENT and path.is_symlink():
        return FatalError(
            f"cannot read {path}: {exc.strerror}",
            hint="it is a link to nothing: remove it, or point it at the file",
        )
    return _error(path, exc, verb="read", flag="r")


def unwritable(path: Path, exc: OSError) -> FatalError:
    """The error for a file that could not be written: what the system said, and what to do."""
    return _error(path, exc, verb="write", flag="w")


def _error(path: Path, exc: OSError, *, verb: str, flag: str) -> FatalError:
    hint = _HINTS.get(exc.errno or 0)
    return FatalError(
        f"cannot {verb} {path}: {exc.strerror}",
        hint=hint.format(verb=verb, flag=flag) if hint else None,
    )

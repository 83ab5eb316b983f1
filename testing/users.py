"""Permissions that hold for real in a test, also when the suite runs as root (as in CI).

Root reads any file whatever its mode, so ``chmod 000`` proves nothing there. ``unprivileged``
runs a block with the effective user and group of ``nobody``; the saved ids stay root's, so the
test takes root back afterwards. Modules the block needs must be imported before it: the
interpreter's own files may be out of ``nobody``'s reach.
"""

from __future__ import annotations

import os
import pwd
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def unprivileged() -> Iterator[None]:
    """The block runs as ``nobody`` when the suite runs as root; as the user otherwise."""
    if os.geteuid() != 0:
        yield
        return
    nobody = pwd.getpwnam("nobody")
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def open_directory() -> Path:
    """A new temporary directory that ``nobody`` can enter (pytest's own are private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="migrail-perm-"))
    directory.chmod(0o755)
    return directory

"""Files a command cannot write, made as a user's machine makes them, and a tree to compare."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only(path: Path) -> Iterator[str]:
    """``path`` (a file or a folder) made read-only for the test; yields the reason the system
    gives for a refused write.

    A user is stopped by its mode; root is not (the tests may run as root, as in CI), so there
    ``chattr +i`` makes it immutable instead, and the test is skipped where that is not possible.
    """
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield "Permission denied"
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("as root, only chattr +i makes a path read-only, and there is no chattr")
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {done.stderr.strip()}")
    try:
        yield "Operation not permitted"
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (``None``) under ``root``, by relative path; Python's
    bytecode caches left out."""
    return {
        path.relative_to(root).as_posix(): None if path.is_dir() else path.read_bytes()
        for path in root.rglob("*")
        if "__pycache__" not in path.parts
    }

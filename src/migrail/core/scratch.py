"""Temporary directories of a run (lint's SQL files, the commit hooks' staged copies), removed
however the run ends: on SIGTERM too, and, when it was killed outright, by the next run or by
``migrail cleanup``.

As with clusters, a directory's name carries its owner's pid (``migrail-lint-<pid>-<random>``),
so a sweep removes the directories of runs that are gone, and never one of a live run.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from migrail.core.proc import process_alive
from migrail.core.signals import shielded, sigterm_raises

Kind = Literal["lint", "staged", "rehearsal"]
KINDS: tuple[Kind, ...] = ("lint", "staged", "rehearsal")


@contextmanager
def scratch_directory(kind: Kind) -> Iterator[Path]:
    """A new directory ``migrail-<kind>-<pid>-...``, deleted when the block ends, SIGTERM
    included; what killed runs left is swept first."""
    with sigterm_raises():
        sweep_stale_scratch()
        directory = None
        try:
            # Shielded: a signal landing as the directory is made is held until it is known
            # here, then raised inside the ``try`` that removes it.
            with shielded():
                directory = Path(tempfile.mkdtemp(prefix=f"{_prefix(kind)}{os.getpid()}-"))
            yield directory
        finally:
            with shielded():
                if directory is not None:
                    shutil.rmtree(directory, ignore_errors=True)


def sweep_stale_scratch() -> list[Path]:
    """Remove this user's temporary directories whose run is gone."""
    removed = []
    for kind in KINDS:
        for directory in Path(tempfile.gettempdir()).glob(f"{_prefix(kind)}*"):
            owner = _owner(directory.name.removeprefix(_prefix(kind)))
            if owner is None or process_alive(owner) or not _ours(directory):
                continue
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def _prefix(kind: Kind) -> str:
    return f"migrail-{kind}-"


def _owner(rest: str) -> int | None:
    """The pid in ``<pid>-<random>``; ``None`` for a name of another form (an older migrail's
    directory, whose run cannot be told, is left alone)."""
    pid, dash, _ = rest.partition("-")
    return int(pid) if dash and pid.isdigit() else None


def _ours(directory: Path) -> bool:
    """A directory (not a link) of this user's."""
    try:
        info = directory.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()

"""A private cluster kept running between runs, so that a run costs one CREATE DATABASE.

Opt-in with ``MIGRAIL_KEEP_WARM=1``; ``migrail cleanup`` stops it. There is one per user and set
of binaries, in a directory only its owner can enter: the socket is there, and trust
authentication is safe only behind it. Runs hold a shared lock on it while they use it; starting
and stopping take the exclusive lock, so a cleanup never pulls a server from under a run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from migrail.core.errors import FatalError
from migrail.postgres import cluster

WARM_PREFIX = "migrail-warm-"


@contextmanager
def warm_cluster(bindir: Path) -> Iterator[cluster.Cluster]:
    """The warm cluster for ``bindir``, started if it is not running, in use for the block."""
    directory = warm_directory(bindir)
    running = cluster.Cluster(directory=directory, bindir=bindir)
    with _lock_file(directory) as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # runs share it: one does not wait for another
        if not _usable(directory, running):
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(lock, fcntl.LOCK_EX)  # to start it: alone, and again only if needed
            if not _usable(directory, running):
                cluster.stop(running)  # what a stopped or killed warm cluster left behind
                directory.mkdir(mode=0o700)
                cluster.initialise_and_start(running)
            fcntl.flock(lock, fcntl.LOCK_SH)
        yield running


def warm_directory(bindir: Path) -> Path:
    """Where this user's warm cluster of ``bindir`` lives (its socket too)."""
    tag = hashlib.sha256(str(bindir.resolve()).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"{WARM_PREFIX}{os.geteuid()}-{tag}"


def running_warm_clusters() -> list[Path]:
    """The directories of this user's warm clusters that are running and private; nothing is
    started or locked (a run that only reads from one, as a receipt is read, needs neither)."""
    found = []
    for directory in Path(tempfile.gettempdir()).glob(f"{WARM_PREFIX}{os.geteuid()}-*"):
        if not directory.is_dir() or directory.is_symlink():
            continue
        try:
            _check_private(directory)
        except FatalError:
            continue
        if cluster.running_postmaster(cluster.Cluster(directory, Path())) is not None:
            found.append(directory)
    return sorted(found)


def _usable(directory: Path, running: cluster.Cluster) -> bool:
    """Whether the warm cluster is there, ours and running."""
    if directory.exists():
        _check_private(directory)
    return cluster.running_postmaster(running) is not None


def stop_warm_clusters() -> tuple[list[Path], list[Path]]:
    """Stop this user's warm clusters; returns those stopped and those left running (in use)."""
    stopped, busy = [], []
    for directory in Path(tempfile.gettempdir()).glob(f"{WARM_PREFIX}{os.geteuid()}-*"):
        if not directory.is_dir() or directory.is_symlink():
            continue
        with _lock_file(directory) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy.append(directory)
                continue
            cluster.stop(cluster.Cluster(directory=directory, bindir=Path()))
            _lock_path(directory).unlink(missing_ok=True)
            stopped.append(directory)
    return stopped, busy


def _lock_path(directory: Path) -> Path:
    return directory.with_name(directory.name + ".lock")


@contextmanager
def _lock_file(directory: Path) -> Iterator[IO[str]]:
    """The cluster's lock file, refused if it is a link or belongs to someone else."""
    path = _lock_path(directory)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "r+") as file:
        if os.fstat(descriptor).st_uid != os.geteuid():
            raise FatalError(f"{path} belongs to another user", hint="remove it, or set TMPDIR")
        yield file


def _check_private(directory: Path) -> None:
    """Only a directory of ours (or the server account's) that nobody else can enter is used."""
    info = directory.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid not in cluster.our_uids():
        raise FatalError(f"{directory} is not migrail's own", hint="remove it, or set TMPDIR")
    if info.st_mode & 0o077:
        raise FatalError(
            f"{directory} can be entered by other users", hint="run migrail cleanup, or remove it"
        )

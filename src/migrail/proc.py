"""Every subprocess migrail starts goes through ``run``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from migrail.errors import FatalError


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
    timeout: float = 120,
    ok: tuple[int, ...] = (0,),
) -> str:
    """Run ``args`` and return its stdout; a failure becomes a FatalError with stderr's tail.

    ``user``/``group`` run the command as another account (PostgreSQL refuses to run as root);
    ``ok`` lists the exit codes that are not failures (a linter exits 1 when it finds something).
    stdin is closed so that nothing can wait for a terminal.
    """
    argv = [str(arg) for arg in args]
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    try:
        completed = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            user=user,
            group=group,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise FatalError(f"cannot run {argv[0]}: not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise FatalError(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s") from exc
    if completed.returncode not in ok:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-5:])
        raise FatalError(
            f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} failed "
            f"(exit {completed.returncode}): {tail}"
        )
    return completed.stdout


def run_bytes(args: Sequence[str | Path], *, stdin: bytes, timeout: float = 60) -> bytes:
    """Run ``args`` with ``stdin`` as its input and return its raw stdout (for git's batch
    commands, whose output mixes text headers and file contents)."""
    argv = [str(arg) for arg in args]
    try:
        completed = subprocess.run(
            argv, input=stdin, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise FatalError(f"cannot run {argv[0]}: not found") from exc
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise FatalError(
            f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} failed: {' '.join(tail)}"
        )
    return completed.stdout

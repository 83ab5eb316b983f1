"""Every subprocess migrail starts goes through ``run``, with only the variables it needs.

migrail's own environment holds database URLs and tokens, and a child does not need them: a warm
cluster's server, which outlives the run (as another user, when run as root), would keep them in
its environment for as long as it runs. So each kind of child gets an allow-list, here and only
here; the kind is known by the program's name.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from concurrent.futures import Future

Params = ParamSpec("Params")
Answer = TypeVar("Answer")

# Every child: where programs and temporary files are, and the time zone (initdb records it).
_COMMON = ("PATH", "TMPDIR", "TZ")
# What some kinds of program need beyond that; any other program gets _COMMON alone.
_NEEDS = {
    # A PostgreSQL built into a prefix of its own can need its libraries found.
    "postgres": ("LD_LIBRARY_PATH",),
    # Its configuration (safe.directory, includes), and the GIT_* variables a hook is given or
    # the user set: GIT_INDEX_FILE is the index ``git commit <paths>`` is about to record.
    "git": ("HOME", "XDG_CONFIG_HOME", "GIT_*"),
    "squawk": ("HOME",),
}
# Programs of a kind named otherwise; the others are their own kind.
_KINDS = {"initdb": "postgres", "pg_ctl": "postgres", "pg_config": "postgres"}
_LOCALE = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def child_environment(program: str | Path) -> dict[str, str]:
    """The environment ``program`` runs with: the allow-listed variables of its kind, in the C
    locale (its messages are parsed and shown as they are)."""
    from migrail.core.environ_reads import unrecorded

    name = Path(program).name
    allowed = _COMMON + _NEEDS.get(_KINDS.get(name, name), ())
    passed = {
        variable: value
        for variable, value in unrecorded().items()
        if any(fnmatch.fnmatchcase(variable, pattern) for pattern in allowed)
    }
    return {**passed, **_LOCALE}


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
    try:
        completed = subprocess.run(
            argv,
            cwd=cwd,
            env=child_environment(argv[0]),
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
            argv,
            env=child_environment(argv[0]),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise FatalError(f"cannot run {argv[0]}: not found") from exc
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise FatalError(
            f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} failed: {' '.join(tail)}"
        )
    return completed.stdout


def meanwhile(
    function: Callable[Params, Answer], *args: Params.args, **kwargs: Params.kwargs
) -> Future[Answer]:
    """``function(*args, **kwargs)`` started in a thread of its own, for work that waits on
    subprocesses (git) while the process goes on with its own (importing, reading files) on
    another core; its answer, or its exception, comes with ``result()``. A daemon thread: the
    process never waits for it at its exit (an ended run no longer needs the answer)."""
    import threading
    from concurrent.futures import Future

    answer: Future[Answer] = Future()

    def work() -> None:
        try:
            answer.set_result(function(*args, **kwargs))
        except BaseException as exc:  # all of it is the caller's, raised by ``result()``
            answer.set_exception(exc)

    threading.Thread(target=work, name="migrail-meanwhile", daemon=True).start()
    return answer


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (another user's counts; a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (already exited, not yet reaped) counts as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    return True

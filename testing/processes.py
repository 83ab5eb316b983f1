"""Looking at live processes from a test, through /proc (Linux)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def environ(pid: int) -> bytes:
    """The environment ``pid`` was started with, ``NAME=value`` each ended by a NUL."""
    return Path(f"/proc/{pid}/environ").read_bytes()


def when_child(run: subprocess.Popen[str], program: str) -> int:
    """The pid of ``run``'s child running ``program``, once there is one."""
    deadline = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < deadline:
        for pid in children(run.pid):
            try:
                if program.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
        time.sleep(0.005)
    raise AssertionError(f"{program} was not seen running under {run.args}")


def within(seconds: float, condition: Callable[[], bool]) -> float | None:
    """How long ``condition`` took to hold, polled; ``None`` if it did not within ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def terminated_while_locking(run: subprocess.Popen[str], url: URL, table: str, sleep: str) -> float:
    """SIGTERM ``run`` once it holds a lock on ``table`` and runs the statement ``sleep``; how
    long the server then took to let go of both (60 s: it did not)."""
    from testing.postgres import lock_holders, running

    def started() -> bool:
        return bool(lock_holders(url, table) and running(url, sleep))

    assert within(60, lambda: started() or run.poll() is not None) is not None
    assert run.poll() is None, run.communicate()
    run.send_signal(signal.SIGTERM)
    released = within(60, lambda: not lock_holders(url, table) and not running(url, sleep))
    return 60.0 if released is None else released

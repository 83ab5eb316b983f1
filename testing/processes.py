"""Looking at live processes from a test, through /proc (Linux)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


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

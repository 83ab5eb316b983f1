"""The ``migrail`` command's exit: the code main returns, the output flushed, the exit handlers
run, a thread of the project's waited for; the interpreter's teardown skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run_with(main_body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``migrail.main.run`` in a new interpreter, with ``main`` replaced by ``main_body``."""
    script = (
        "import atexit, sys, threading, time\n"
        "import migrail.main as cli\n"
        "def main():\n"
        + "".join(f"    {line}\n" for line in main_body.splitlines())
        + "cli.main = main\n"
        "cli.run()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("code", [0, 1, 3])
def test_the_code_is_main_s_and_the_output_and_exit_handlers_are_kept(
    tmp_path: Path, code: int
) -> None:
    done = _run_with(
        "atexit.register(lambda: open('handler-ran', 'w').close())\n"
        "sys.stdout.write('said, not yet flushed')\n"
        f"return {code}",
        tmp_path,
    )
    assert done.returncode == code, done.stderr
    assert done.stdout == "said, not yet flushed"
    assert (tmp_path / "handler-ran").exists()


def test_a_thread_of_the_projects_is_waited_for(tmp_path: Path) -> None:
    done = _run_with(
        "def late():\n"
        "    time.sleep(0.5)\n"
        "    open('thread-finished', 'w').close()\n"
        "threading.Thread(target=late).start()\n"
        "return 0",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread-finished").exists()

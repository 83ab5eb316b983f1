"""The temporary directories of ``lint`` and of the commit hooks (``check --staged``), done for
real: SIGTERM removes them at once, those of a run killed with SIGKILL go with the next run or
``migrail cleanup``, and a live run's directory is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from testing.git import commit_all, git
from testing.processes import when_child
from testing.projects import write_slow_to_lint_revision, write_slow_to_load_revision

HOOK = ("check", "--staged", "--only", "lint")


def _migrail(project: Path, tmp: Path, *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "migrail", *arguments],
        cwd=project,
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(run: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = run.communicate(timeout=120)
    return run.returncode, err


def _when_made(tmp: Path, pattern: str, run: subprocess.Popen[str], before: set[Path]) -> Path:
    """The directory ``run`` makes, once it exists: signals land while it is there."""
    deadline = time.monotonic() + 60
    while run.poll() is None:
        made = set(tmp.glob(pattern)) - before
        if made:
            return made.pop()
        assert time.monotonic() < deadline, f"no {pattern} after 60 s"
        time.sleep(0.005)
    raise AssertionError(f"the run ended before making {pattern}: {_finish(run)}")


def _left(tmp: Path) -> list[str]:
    return sorted(path.name for path in tmp.iterdir())


def _working_in(tmp: Path) -> str:
    """The processes whose command line names ``tmp``."""
    found = subprocess.run(["pgrep", "-af", str(tmp)], capture_output=True, text=True, check=False)
    return found.stdout


def _stage_slow_revision(project: Path) -> None:
    """A committed project, and a revision staged that takes a minute to load."""
    commit_all(project)
    git(project, "add", str(write_slow_to_load_revision(project)))


def test_sigterm_during_lint_removes_its_directory(project: Path, private_tmp: Path) -> None:
    write_slow_to_lint_revision(project)
    run = _migrail(project, private_tmp, "lint")
    _when_made(private_tmp, "migrail-lint-*", run, set())
    when_child(run, "squawk")  # reading the files there
    run.send_signal(signal.SIGTERM)
    code, err = _finish(run)
    assert code == 143, err
    assert _left(private_tmp) == []
    assert _working_in(private_tmp) == "", "squawk left running"


def test_sigterm_during_check_staged_removes_its_directory(
    project: Path, private_tmp: Path
) -> None:
    _stage_slow_revision(project)
    run = _migrail(project, private_tmp, *HOOK)
    _when_made(private_tmp, "migrail-staged-*", run, set())
    run.send_signal(signal.SIGTERM)
    code, err = _finish(run)
    assert code == 143, err
    assert _left(private_tmp) == []


def _killed(project: Path, tmp: Path) -> Path:
    """The directory of a commit hook killed with SIGKILL while it was there."""
    run = _migrail(project, tmp, *HOOK)
    left = _when_made(tmp, "migrail-staged-*", run, set(tmp.iterdir()))
    run.send_signal(signal.SIGKILL)
    _finish(run)
    assert left.exists()
    assert f"-{run.pid}-" in left.name  # how a sweep tells whose it is
    return left


def test_killed_runs_directories_are_swept_and_a_live_runs_never(
    project: Path, private_tmp: Path
) -> None:
    _stage_slow_revision(project)
    left = _killed(project, private_tmp)
    code, err = _finish(_migrail(project, private_tmp, "cleanup"))
    assert code == 0, err
    assert f"removed the temporary files of a killed run in {left}\n" in err, err
    assert _left(private_tmp) == []
    left = _killed(project, private_tmp)
    live = _migrail(project, private_tmp, *HOOK)
    in_use = _when_made(private_tmp, "migrail-staged-*", live, {left})
    assert not left.exists(), "the next run sweeps it"
    code, err = _finish(_migrail(project, private_tmp, "cleanup"))
    assert code == 0, err
    assert _left(private_tmp) == [in_use.name], "a live run's directory was removed"
    live.send_signal(signal.SIGTERM)
    assert _finish(live)[0] == 143
    assert _left(private_tmp) == []


def test_the_next_lint_sweeps_a_killed_lints_directory(project: Path, private_tmp: Path) -> None:
    revision = write_slow_to_lint_revision(project)
    killed = _migrail(project, private_tmp, "lint")
    left = _when_made(private_tmp, "migrail-lint-*", killed, set())
    killed.send_signal(signal.SIGKILL)
    _finish(killed)
    # Its squawk, orphaned, is still reading there: stopped, as it would end on its own.
    subprocess.run(["pkill", "-KILL", "-f", str(left)], check=False)
    assert left.exists()
    revision.unlink()
    code, err = _finish(_migrail(project, private_tmp, "lint"))
    assert code == 0, err
    assert _left(private_tmp) == []

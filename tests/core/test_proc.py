"""Child processes get only the variables they need: the server of a warm cluster, which
outlives the run, holds none of its database URLs or tokens; git still gets a hook's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from migrail.core import proc
from migrail.postgres.cluster import find_local_bindir
from testing.git import commit_all
from testing.processes import children, environ, when_child
from testing.projects import write_slow_to_lint_revision

SECRETS = {
    "PRODUCTION_DATABASE_URL": "postgresql://app:prod-Pa55word@db.example.com:5432/app",
    "DATABASE_URL": "postgresql://app:dev-Pa55word@localhost:5432/app",
    "MIGRAIL_ADMIN_URL": "postgresql://admin:admin-Pa55word@db.example.com:5432/postgres",
    "PGPASSWORD": "pg-Pa55word",
    "SECRET_TOKEN": "tok-8c1d94e0b7a2",
}


def _secrets_in(environment: bytes) -> list[str]:
    """The secrets, by name, that an environment (``/proc/<pid>/environ``, ``env``'s output)
    holds: the variable, its value, or the password in it."""
    return [
        name
        for name, value in SECRETS.items()
        if any(text.encode() in environment for text in (f"{name}=", value, _password(value)))
    ]


def _password(value: str) -> str:
    return value.split(":")[2].split("@")[0] if "@" in value else value


def test_a_warm_clusters_server_holds_no_secret_of_the_run(
    project: Path, private_tmp: Path
) -> None:
    source = "local" if find_local_bindir() else "embedded"
    env = {
        **os.environ,
        **SECRETS,
        "TMPDIR": str(private_tmp),
        "MIGRAIL_KEEP_WARM": "1",
        "MIGRAIL_EPHEMERAL": source,
    }
    run = subprocess.run(
        [sys.executable, "-m", "migrail", "migrate-staging"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    [pid_file] = private_tmp.glob("migrail-warm-*/data/postmaster.pid")
    postmaster = int(pid_file.read_text().split()[0])
    processes = [postmaster, *children(postmaster)]
    assert len(processes) >= 3, processes  # the checkpointer, the background writer...
    assert b"PATH=" in environ(postmaster)
    leaks = {pid: found for pid in processes if (found := _secrets_in(environ(pid)))}
    assert leaks == {}


def test_git_gets_a_hooks_variables_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "README").write_text("a repository\n")
    commit_all(tmp_path)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    # git sets it for a hook during ``git commit <paths>``: the index that commit will record.
    index = str(tmp_path / ".git" / "next-index.lock")
    monkeypatch.setenv("GIT_INDEX_FILE", index)
    show = ["git", "-C", tmp_path, "-c", "alias.environment=!env", "environment"]
    for environment in (proc.run(show).encode(), proc.run_bytes(show, stdin=b"")):
        assert f"GIT_INDEX_FILE={index}\n".encode() in environment
        assert f"HOME={os.environ['HOME']}\n".encode() in environment
        assert _secrets_in(environment) == []


def test_squawk_holds_no_secret_of_the_run(project: Path, private_tmp: Path) -> None:
    write_slow_to_lint_revision(project)
    run = subprocess.Popen(
        [sys.executable, "-m", "migrail", "lint"],
        cwd=project,
        env={**os.environ, **SECRETS, "TMPDIR": str(private_tmp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        squawk = when_child(run, "squawk")
        assert b"PATH=" in environ(squawk)
        assert _secrets_in(environ(squawk)) == []
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)


def test_work_done_meanwhile_gives_its_answer_or_its_error_in_a_thread_no_exit_waits_for(
    tmp_path: Path,
) -> None:
    """git's answer, or git's failure as the FatalError it is, comes with ``result()``; the
    work ran in a daemon thread, which a process's exit does not wait for."""
    from migrail.core.errors import FatalError

    (tmp_path / "a.txt").write_text("a\n")
    commit_all(tmp_path)
    threads: list[threading.Thread] = []

    def listed(*args: str) -> str:
        threads.append(threading.current_thread())
        return proc.run(["git", "-C", tmp_path, *args])

    assert proc.meanwhile(listed, "ls-files").result(timeout=60) == "a.txt\n"
    failing = proc.meanwhile(listed, "rev-parse", "--verify", "nowhere")
    with pytest.raises(FatalError, match=r"failed \(exit 128\)"):
        failing.result(timeout=60)
    assert [thread.daemon for thread in threads] == [True, True]
    assert threading.main_thread() not in threads

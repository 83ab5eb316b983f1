"""Ctrl-C or SIGTERM while a revision runs is that revision's failure: it is rolled back, named
(with migrate-staging's phase, and where migrate leaves the database), and the run exits 130 or
143, even when the revision, or a library it calls, ignores, replaces or blocks those signals.

Run as real processes, signalled while the revision is seen running (on the server, or by a
file it writes), against real PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.postgres import columns, query, run_database, run_leftovers, running, version
from testing.processes import within
from testing.projects import write_revision

SIGNALS = {
    "SIGTERM": (signal.SIGTERM, 143, "terminated"),
    "Ctrl-C": (signal.SIGINT, 130, "interrupted"),
}
# What a revision (or a library it imports) does to the signals before it works at length.
DEAFENING = {
    "ignores them": "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "    signal.signal(signal.SIGINT, signal.SIG_IGN)",
    "installs its own handlers": "signal.signal(signal.SIGTERM, lambda *_: None)\n"
    "    signal.signal(signal.SIGINT, lambda *_: None)",
    "blocks them": "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})",
    "leaves them alone": "pass",
}
STOPPED = "stopped there and rolled back, none of it applied"


def _run(project: Path, *arguments: str) -> subprocess.Popen[str]:
    """migrail as from a terminal: a shell without job control (a background job, some CI
    runners) starts it with SIGINT ignored, and it would rightly ignore Ctrl-C then."""
    return subprocess.Popen(
        [sys.executable, "-m", "migrail", *arguments],
        cwd=project,
        env=os.environ,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.parametrize("deafening", DEAFENING.values(), ids=DEAFENING.keys())
@pytest.mark.parametrize(("signum", "code", "word"), SIGNALS.values(), ids=SIGNALS.keys())
def test_a_signal_stops_migrate_in_a_revision_and_names_it_whatever_the_revision_did_to_it(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    deafening: str,
    signum: int,
    code: int,
    word: str,
) -> None:
    """In the revision's statement (the server sees it), or in its Python (it writes a file):
    both are stopped, rolled back, and named with where the database is."""
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0
    in_python = "handlers" in deafening or "block" in deafening
    started = project / "started"
    work = (
        f"Path({str(started)!r}).touch()\n    time.sleep(30)"
        if in_python
        else 'op.execute("SELECT pg_sleep(30)")'
    )
    write_revision(
        project,
        "0002",
        "deaf",
        "0001",
        f'{deafening}\n    op.add_column("tasks", sa.Column("deaf", sa.Text()))\n    {work}',
        extra="import signal\nimport time\nfrom pathlib import Path",
    )
    run = _run(project, "migrate")
    seen = within(60, lambda: started.exists() or bool(running(database_url, "pg_sleep(30)")))
    assert seen is not None and run.poll() is None, run.communicate()
    run.send_signal(signum)
    _, err = run.communicate(timeout=20)
    assert run.returncode == code, err
    assert err.endswith(
        f"error: {word} during the upgrade of 0002_deaf: {STOPPED}\n"
        "  the database is at 0001_create_tasks\n"
    ), err
    assert version(database_url) == ["0001"]
    assert "deaf" not in columns(database_url, "tasks")
    # The attempt is kept, as a failed revision's is.
    rows = query(database_url, "SELECT revision, success, error FROM migrail.history ORDER BY id")
    assert rows == [("0001", True, None), ("0002", False, word)]


@pytest.mark.parametrize(
    ("arguments", "sleeps_in", "direction", "phase"),
    [
        (["--no-step-roundtrip"], "downgrade", "downgrade", "downgrade"),
        (["--no-step-roundtrip"], "upgrade again", "upgrade", "upgrade again"),
        (["--step-roundtrip"], "downgrade", "downgrade", "upgrade, its step round trip"),
    ],
)
def test_sigterm_during_staging_names_the_revision_and_its_phase(
    project: Path,
    pg_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    sleeps_in: str,
    direction: str,
    phase: str,
) -> None:
    """The revision ignores SIGTERM, and sleeps only in the phase named: its downgrade, or its
    upgrade once the downgrade has run (the file it leaves)."""
    undone = project / "undone"
    sleep = 'op.execute("SELECT pg_sleep(30)")'
    deaf = "signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    upgrade, downgrade = f"if Path({str(undone)!r}).exists():\n        {sleep}", sleep
    if sleeps_in != "downgrade":
        downgrade = f"Path({str(undone)!r}).touch()"
    write_revision(
        project,
        "0002",
        "slow",
        "0001",
        f"{deaf}\n    {upgrade}",
        f"{deaf}\n    {downgrade}",
        extra="import signal\nfrom pathlib import Path",
    )
    application = f"mt_interrupt_{os.getpid()}_{secrets.token_hex(3)}"
    monkeypatch.setenv("PGAPPNAME", application)  # how the run's sessions are told apart
    run = _run(project, "migrate-staging", "--no-cache", *arguments)
    staging = run_database(pg_server.admin_url, application, run, "SELECT pg_sleep(30)")
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 143, err
    assert err.endswith(
        f"error: terminated during the {direction} of 0002_slow (staging phase: {phase}): "
        f"{STOPPED}\n"
    ), err
    assert run_leftovers(pg_server.admin_url, staging) == set(), err


def test_the_signal_handlers_are_migrails_again_once_the_revisions_ran(
    project: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revision that replaces the handlers and blocks the signals changes neither, during
    the run or after it."""
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    write_revision(
        project,
        "0002",
        "deaf",
        "0001",
        f"{DEAFENING['installs its own handlers']}\n    {DEAFENING['blocks them']}\n"
        "    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "    assert not signal.pthread_sigmask(signal.SIG_BLOCK, ()) & {2, 15}\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)",
        extra="import signal",
    )
    given = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        assert main(["migrate"]) == 0
        assert version(database_url) == ["0002"]
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
        assert signal.pthread_sigmask(signal.SIG_BLOCK, ()) == mask
    finally:
        signal.signal(signal.SIGINT, given)


def test_sigterm_after_an_autocommit_block_says_what_it_left_committed(
    project: Path, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The column and the index, committed by the autocommit block, stay without the
    revision's version, and the message says so rather than "none of it applied"."""
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0
    write_revision(
        project,
        "0002",
        "index_then_sleep",
        "0001",
        'op.add_column("tasks", sa.Column("prio", sa.Integer()))\n'
        "    with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE INDEX CONCURRENTLY tasks_name ON tasks (name)")\n'
        '    op.execute("SELECT pg_sleep(30)")',
    )
    run = _run(project, "migrate")
    seen = within(60, lambda: bool(running(database_url, "pg_sleep(30)")))
    assert seen is not None and run.poll() is None, run.communicate()
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=20)
    assert run.returncode == 143, err
    assert err.endswith(
        "error: terminated during the upgrade of 0002_index_then_sleep: stopped there and rolled "
        "back\n  0002_index_then_sleep had committed part of its work before it failed: what ran "
        "before and inside its autocommit_block() stays in the database, without its version. "
        "Run again, it starts from the beginning: make those statements safe to repeat (IF NOT "
        "EXISTS), or undo them by hand first\n  the database is at 0001_create_tasks\n"
    ), err
    assert version(database_url) == ["0001"]
    assert "prio" in columns(database_url, "tasks")

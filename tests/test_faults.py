"""Faults done for real: migrate killed with SIGKILL, its connection cut, racing itself, timed
out; migrate-staging killed again and again. The database is never half-applied, its history
agrees with it, a rerun completes, and nothing of migrail's is left behind.

Heavy (a few hundred processes in all): marked ``faults``; CI runs them with the rest
(``pytest -m "not faults"`` skips them locally).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from migrail.core.urls import libpq_conninfo
from migrail.postgres.ephemeral import Server
from migrail.staging.templates import MAX_TEMPLATES
from testing.postgres import (
    columns,
    database_names,
    left_behind,
    query,
    run_database,
    sessions,
    templates_of,
    version,
)
from testing.projects import write_revision

pytestmark = pytest.mark.faults

ADDED = ["0002", "0003", "0004", "0005", "0006"]  # each adds column c<id>, then takes a moment


def _slow_history(project: Path, pause: float = 0.1) -> None:
    previous = "0001"
    for revision in ADDED:
        write_revision(
            project,
            revision,
            f"add_c{revision}",
            previous,
            f'op.add_column("tasks", sa.Column("c{revision}", sa.Text()))\n'
            f'    op.execute("SELECT pg_sleep({pause})")',
            f'op.drop_column("tasks", "c{revision}")',
        )
        previous = revision


def _migrail(project: Path, url: URL | None, *arguments: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if url is not None:
        env["DATABASE_URL"] = url.render_as_string(hide_password=False)
    return subprocess.Popen(
        [sys.executable, "-m", "migrail", *arguments],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(run: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = run.communicate(timeout=120)
    return run.returncode, err


def _applied(url: URL) -> list[str]:
    """The revisions whose columns exist, checked against what the database says it is at."""
    present = [rev for rev in ADDED if f"c{rev}" in columns(url, "tasks")]
    at = version(url)
    assert len(at) <= 1, at
    known = ["0001", *ADDED]
    expected = known[1 : known.index(at[0]) + 1] if at else []
    assert present == expected, f"at {at}, but the columns of {present} exist: half-applied"
    return present


def _history(url: URL) -> list[str]:
    """The revisions migrail.history records as applied, oldest first."""
    if not query(url, "SELECT 1 FROM pg_tables WHERE schemaname = 'migrail'"):
        return []
    rows = query(url, "SELECT revision FROM migrail.history WHERE success ORDER BY id")
    return [str(row[0]) for row in rows]


@pytest.fixture
def database(pg_server: Server) -> Iterator[URL]:
    with pg_server.database() as url:
        yield url


def _when_applied(url: URL, run: subprocess.Popen[str], count: int) -> None:
    """Wait until ``count`` revisions are committed (0: none needed), or the run has ended:
    kill points follow the run's progress, not the clock, so a loaded machine moves them not."""
    known = ["0001", *ADDED]
    deadline = time.monotonic() + 60
    while count and run.poll() is None and time.monotonic() < deadline:
        at = version(url)  # empty until alembic_version exists
        if at and known.index(at[0]) + 1 >= count:
            return
        time.sleep(0.005)


# After k revisions committed (0: as soon as it starts), and a moment more: inside revision k+1
# (each sleeps 0.1 s after its change) or just after it.
KILL_POINTS = [(count, pause) for count in range(5) for pause in (0.0, 0.06, 0.12)]


@pytest.mark.timeout(900)  # fifteen kills and reruns: 2.5 min on a loaded machine
def test_migrate_killed_at_fifteen_points_is_never_half_applied(
    project: Path, pg_server: Server
) -> None:
    _slow_history(project)
    outcomes = []
    for count, pause in KILL_POINTS:
        with pg_server.database() as url:
            run = _migrail(project, url, "migrate")
            _when_applied(url, run, count)
            time.sleep(pause if count else 0.3 + pause)
            run.send_signal(signal.SIGKILL)
            run.communicate(timeout=30)
            applied = _applied(url)
            # Each revision's history row is written in the revision's own transaction.
            expected = ["0001", *applied] if version(url) else []
            assert _history(url) == expected, f"the history disagrees with {version(url)}"
            outcomes.append(len(expected))
            assert _finish(_migrail(project, url, "migrate"))[0] == 0, "the rerun completes"
            assert version(url) == ["0006"] and _applied(url) == ADDED
            assert _history(url) == ["0001", *ADDED]
    assert len(set(outcomes)) >= 4, f"the kills landed at too few points: {outcomes}"


def test_a_connection_cut_mid_revision_is_rolled_back_and_rerun(
    project: Path, database: URL, pg_server: Server
) -> None:
    _slow_history(project, pause=30)
    assert _finish(_migrail(project, database, "migrate", "--sql"))[0] == 0
    run = _migrail(project, database, "migrate")
    name = database.database
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cut = query(
            pg_server.admin_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND query LIKE 'SELECT pg_sleep(30)%'",
        )
        if cut:
            break
        time.sleep(0.05)
    code, err = _finish(run)
    assert code == 1, err
    assert "error: upgrade of 0002_add_c0002 failed: " in err
    assert "terminating connection due to administrator command" in err or "closed" in err
    assert "Traceback" not in err
    assert version(database) == ["0001"] and _applied(database) == []
    for revision in project.glob("migrations/versions/000[2-6]*.py"):
        revision.write_text(revision.read_text().replace("pg_sleep(30)", "pg_sleep(0)"))
    assert _finish(_migrail(project, database, "migrate"))[0] == 0
    assert _applied(database) == ADDED


@pytest.mark.parametrize("processes", [2, 8])
def test_concurrent_migrates_apply_each_revision_once(
    project: Path, database: URL, processes: int
) -> None:
    _slow_history(project, pause=0.05)
    runs = [_migrail(project, database, "migrate") for _ in range(processes)]
    results = [_finish(run) for run in runs]
    assert [code for code, _ in results] == [0] * processes, results
    assert _history(database) == ["0001", *ADDED]  # each revision applied exactly once
    assert version(database) == ["0006"]
    applied = [err for _, err in results if "Applied 6 revision(s)" in err]
    assert len(applied) == 1, "one process applied them all; the others found them applied"


def test_a_revision_longer_than_statement_timeout_is_cancelled_and_rolled_back(
    project: Path, database: URL
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"', 'migrations = "migrations"\nstatement_timeout = "1s"'
        )
    )
    _slow_history(project, pause=3)
    code, err = _finish(_migrail(project, database, "migrate"))
    assert code == 1
    assert (
        "error: upgrade of 0002_add_c0002 failed: canceling statement due to statement timeout "
        "(SQLSTATE 57014)\n"
    ) in err
    assert "  statement: SELECT pg_sleep(3)\n" in err
    assert version(database) == ["0001"] and _applied(database) == []


def _staging(project: Path, application: str, *arguments: str) -> subprocess.Popen[str]:
    """migrate-staging, its sessions named ``application`` (PGAPPNAME): how the test tells its
    own runs apart on a server other runs use too."""
    with pytest.MonkeyPatch.context() as child:
        child.setenv("PGAPPNAME", application)
        return _migrail(project, None, "migrate-staging", *arguments)


@pytest.mark.timeout(900)  # thirty kills: 3 min on a loaded machine
def test_staging_killed_thirty_times_leaves_nothing_behind(
    project: Path, pg_server: Server
) -> None:
    """Killed while it proves (its database exists): SIGTERM cleans up at once, and SIGKILL's
    leftovers go with the next run's sweep. Each of the ten ways (five moments, two signals)
    three times."""
    _slow_history(project, pause=0.02)
    killed_while_proving = 0
    made = []
    for run_number in range(30):
        application = f"mt_{os.getpid()}_{run_number}"
        run = _staging(project, application, "--no-cache")
        made.append(run_database(pg_server.admin_url, application, run))
        time.sleep((run_number % 5) * 0.05)
        killed_while_proving += run.poll() is None
        terminate = run_number % 2 == 0
        run.send_signal(signal.SIGTERM if terminate else signal.SIGKILL)
        run.communicate(timeout=60)
        if terminate:
            assert left_behind(pg_server.admin_url, made[-1:]) == set(), "SIGTERM cleans up"
    assert killed_while_proving >= 24, killed_while_proving
    _, err = _finish(_migrail(project, None, "migrate-staging"))
    assert "[✓] round trip: down to " in err, err  # exit 1: the models lack the columns
    assert left_behind(pg_server.admin_url, made) == set()  # the last run swept the rest
    assert len(templates_of(pg_server.admin_url, project)) <= MAX_TEMPLATES


def test_a_sweep_leaves_the_databases_of_a_live_run_alone(project: Path, pg_server: Server) -> None:
    _slow_history(project, pause=0.5)
    application = f"mt_{os.getpid()}_proving"
    proving = _staging(project, application, "--no-cache")
    run_database(pg_server.admin_url, application, proving)
    assert _finish(_migrail(project, None, "cleanup"))[0] == 0  # sweeps the server
    _, err = _finish(proving)
    assert "[✓] round trip: down to base and up to head again" in err, err


def _hold(project: Path) -> Path:
    """Revision 0002 sleeps (pg_sleep, so its run is live on the server) for as long as the
    file returned exists; the schema agrees with the models, so the run then succeeds."""
    hold = project / "hold"
    hold.touch()
    write_revision(
        project,
        "0002",
        "held",
        "0001",
        f'while Path({str(hold)!r}).exists():\n        op.execute("SELECT pg_sleep(0.05)")',
        extra="from pathlib import Path",
    )
    return hold


@pytest.fixture
def server_databases(pg_server: Server) -> Iterator[list[URL]]:
    """Admin URLs naming three databases of their own on the suite's server, as other
    projects' MIGRAIL_ADMIN_URL might."""
    names = [f"mt_admin_{os.getpid()}_{letter}" for letter in "abc"]
    with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield [pg_server.admin_url.set(database=name) for name in names]
        finally:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_runs_and_cleanups_through_other_databases_drop_only_dead_runs_databases(
    project: Path,
    pg_server: Server,
    server_databases: list[URL],
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run's lock lives in the database its MIGRAIL_ADMIN_URL names; another run's sweep, or
    a cleanup, through another database of the server still sees it: the live run keeps its
    database, and only the killed run's goes."""
    monkeypatch.setenv("TMPDIR", str(private_tmp))  # cleanup stops warm clusters: only ours
    first, second, third = server_databases
    tag = f"mt_{os.getpid()}"

    def start(admin: URL, application: str, *arguments: str) -> subprocess.Popen[str]:
        with monkeypatch.context() as child:  # the test's own sessions are not the run's
            child.setenv("MIGRAIL_ADMIN_URL", admin.render_as_string(hide_password=False))
            child.setenv("PGAPPNAME", f"{tag}_{application}")
            return _migrail(project, None, *arguments)

    hold = _hold(project)
    live = start(first, "live", "migrate-staging", "--no-cache")
    live_database = run_database(pg_server.admin_url, f"{tag}_live", live, "SELECT pg_sleep")
    killed = start(second, "killed", "migrate-staging", "--no-cache")  # it sweeps first
    killed_database = run_database(pg_server.admin_url, f"{tag}_killed", killed)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    deadline = time.monotonic() + 30  # until the server has ended the killed run's sessions
    while sessions(pg_server.admin_url, f"{tag}_killed"):
        assert time.monotonic() < deadline
        time.sleep(0.01)

    code, err = _finish(start(third, "cleanup", "cleanup"))
    assert code == 0, err
    # The killed run's database is gone: dropped by this cleanup, or by another run's sweep
    # first on a server others use too (its message then names it no more).
    assert live_database not in err
    left = database_names(pg_server.admin_url)
    assert live_database in left and killed_database not in left
    assert live.poll() is None, "the live run was still live throughout"

    hold.unlink()
    code, err = _finish(live)
    assert code == 0, err
    assert "[✓] round trip: down to base and up to head again" in err
    assert live_database not in database_names(pg_server.admin_url)


def test_staging_killed_on_private_clusters_leaves_no_cluster_behind(
    project: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    for run_number in range(6):
        run = _migrail(project, None, "migrate-staging")
        time.sleep(0.2 + run_number * 0.3)  # during initdb, while the server starts, proving
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=60)
    _, err = _finish(_migrail(project, None, "migrate-staging"))
    assert "[✓] round trip: down to base and up to head again" in err, err
    assert [path.name for path in private_tmp.iterdir()] == [], "clusters left behind"
    ours = subprocess.run(
        ["pgrep", "-f", str(private_tmp)], capture_output=True, text=True, check=False
    )
    assert ours.stdout == "", "server processes left behind"


@pytest.mark.timeout(900)  # six plans, kills and reruns: 1.5 min on a loaded machine
def test_apply_killed_at_six_points_is_never_half_applied(
    project: Path, pg_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release path: a killed apply leaves a database at a revision, its history agreeing;
    the database moved on, so the release is planned and approved again, and then completes."""
    from migrail.main import main

    _slow_history(project)
    monkeypatch.setenv("MIGRAIL_ACTOR", "alice")
    outcomes = []

    def release(url: URL) -> subprocess.Popen[str]:
        monkeypatch.setenv("PRODUCTION_DATABASE_URL", url.render_as_string(hide_password=False))
        assert main(["plan", "--env", "production", "--force"]) == 0
        with monkeypatch.context() as reviewer:
            reviewer.setenv("MIGRAIL_ACTOR", "bob")
            assert main(["approve", "plan.json"]) == 0
        return _migrail(project, url, "apply", "--plan", "plan.json")

    for count in range(6):
        with pg_server.database() as url:
            run = release(url)
            _when_applied(url, run, count)
            time.sleep(0.05 if count else 0.35)
            run.send_signal(signal.SIGKILL)
            run.communicate(timeout=30)
            applied = _applied(url)
            expected = ["0001", *applied] if version(url) else []
            assert _history(url) == expected, f"the history disagrees with {version(url)}"
            outcomes.append(len(expected))
            code, err = _finish(release(url))
            assert code == 0, err
            assert _applied(url) == ADDED and _history(url) == ["0001", *ADDED]
    assert len(set(outcomes)) >= 4, f"the kills landed at too few points: {outcomes}"

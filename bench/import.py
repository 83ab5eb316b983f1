"""``migrail import`` against pgloader: the same SQLite file of agent_armor's legacy ``tasks``
loaded into the same PostgreSQL server, in alternating pairs, at two sizes.

migrail loads into the schema the migrations built (integer keys to text, DATETIME text to
timestamptz in the stated zone, JSON validated for jsonb), then verifies row counts and
checksums before it commits. pgloader (Debian package ``pgloader``) creates its own tables from
the SQLite file, then its indexes; it verifies nothing. Each run gets a fresh database (for
migrail: a copy of one migrated once), made and dropped untimed. Times are whole commands,
process start included; peak memory is each process's maximum resident set, read by
``/usr/bin/time``. The ratio is of the medians.

Run: MIGRAIL_ADMIN_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
     python bench/import.py [--rows 1000000] [--small 250000] [--rounds 3]
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

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from agent_armor.legacy.generate import write  # noqa: E402
from migrail.core.urls import libpq_conninfo, parse_url  # noqa: E402

BIN = Path(sys.executable).parent
MAP = REPO / "src" / "agent_armor" / "legacy" / "import.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=3)
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
                ours, theirs = _pairs(server, template, path, rounds)
                _print(rows, rounds, ours, theirs)
        finally:
            _drop(server, template)


def _pairs(
    server: object, template: str, path: Path, rounds: int
) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    """(seconds, peak kB) of each run, migrail then pgloader, ``rounds`` times."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(_once(server, template, _migrail_command(path)))
        theirs.append(_once(server, None, _pgloader_command(path)))
    return ours, theirs


def _migrail_command(path: Path) -> list[str]:
    return [str(BIN / "migrail"), "import", f"sqlite:///{path}", "--map", str(MAP)]


def _pgloader_command(path: Path) -> list[str]:
    return ["pgloader", f"sqlite:///{path}", "{url}"]


def _once(server: object, template: str | None, command: list[str]) -> tuple[float, int]:
    """One run into a fresh database (a copy of ``template``, or empty), which must succeed."""
    name = f"bench_import_{secrets.token_hex(4)}"
    _create(server, name, template)
    try:
        url = server.set(database=name).render_as_string(hide_password=False)  # type: ignore[attr-defined]
        url = url.replace("postgresql+psycopg://", "postgresql://")
        environment = {**os.environ, "DATABASE_URL": url}
        timed = ["/usr/bin/time", "-f", "%M", *(part.format(url=url) for part in command)]
        started = time.perf_counter()
        done = subprocess.run(timed, cwd=REPO, env=environment, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{command[0]} failed: {done.stderr[-1500:]}")
        _check_loaded(server, name)
        return seconds, int(done.stderr.strip().splitlines()[-1])
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


def _print(
    rows: int, rounds: int, ours: list[tuple[float, int]], theirs: list[tuple[float, int]]
) -> None:
    print(f"{rows:,} tasks rows, {rounds} alternating pair(s) (median, min-max; peak memory)")
    for label, runs in (("migrail import (verified)", ours), ("pgloader", theirs)):
        times = [seconds for seconds, _ in runs]
        peak = max(kb for _, kb in runs) / 1024
        print(
            f"  {label:<26} {statistics.median(times):7.2f} s ({min(times):.2f}-{max(times):.2f})"
            f"  {peak:6.0f} MB"
        )
    mine = statistics.median(s for s, _ in ours)
    ratio = statistics.median(s for s, _ in theirs) / mine
    print(f"  migrail is {ratio:.2f}x pgloader's speed ({rows / mine:,.0f} rows/s)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

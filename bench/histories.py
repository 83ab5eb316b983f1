"""Benchmark helpers: a project with a long linear history, and one timer for whole commands,
which alternates them and reports the median with its min and max, and each one's peak memory."""

from __future__ import annotations

import compileall
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migrail.postgres.ephemeral import Server

REPO = Path(__file__).resolve().parents[1]


def make_history(root: Path, count: int, merges: int = 0, width: int | None = None) -> None:
    """A project whose history adds ``count`` columns to ``tasks``, one a revision, and whose
    models (``models.py``) have them all. Linear, unless ``merges``: then that many times, spread
    evenly, two revisions branch from the same parent and the next one merges them. With
    ``width``, no table gets more than ``width`` of those columns: the next revision creates
    ``tasks_2`` with its column, and so on (PostgreSQL allows 1,600 columns a table, dropped
    ones included)."""
    (root / "migrations" / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(REPO / "migrations" / name, root / "migrations" / name)
    shutil.copy(
        REPO / "migrations" / "versions" / "0001_create_tasks.py", root / "migrations" / "versions"
    )
    (root / "pyproject.toml").write_text(
        '[tool.migrail]\nmigrations = "migrations"\nmetadata = "models:metadata"\n'
    )
    tables: dict[str, list[int]] = {}
    for number in range(2, count + 1):
        tables.setdefault(_table(number, width), []).append(number)
    fields = "".join(f'    sa.Column("field_{n}", sa.Text()),\n' for n in tables.pop("tasks", []))
    others = "".join(
        f'{name} = sa.Table(\n    "{name}",\n    metadata,\n'
        + "".join(f'    sa.Column("field_{n}", sa.Text()),\n' for n in numbers)
        + ")\n"
        for name, numbers in tables.items()
    )
    (root / "models.py").write_text(
        "import sqlalchemy as sa\nfrom sqlalchemy.dialects.postgresql import JSONB\n\n"
        "metadata = sa.MetaData()\n"
        'tasks = sa.Table(\n    "tasks",\n    metadata,\n'
        '    sa.Column("id", sa.Text(), primary_key=True),\n'
        '    sa.Column("name", sa.Text(), nullable=False),\n'
        '    sa.Column("status", sa.Text(), nullable=False),\n'
        '    sa.Column("owner", sa.Text()),\n'
        '    sa.Column("metadata", JSONB()),\n'
        '    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, '
        "server_default=sa.func.now()),\n"
        '    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, '
        "server_default=sa.func.now()),\n"
        f"{fields})\n{others}"
    )
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    branch_points = {count * (k + 1) // (merges + 1) for k in range(merges)}
    for number in range(2, count + 1):
        down: str | tuple[str, ...] = f"{number - 1:04d}"
        if number - 1 in branch_points:  # a sibling of the revision before it
            down = f"{number - 2:04d}"
        elif number - 2 in branch_points:  # the merge of the two
            down = (f"{number - 2:04d}", f"{number - 1:04d}")
        table = _table(number, width)
        first = table != "tasks" and _table(number - 1, width) != table
        write_revision(root, number, down, table, create=first)


def _table(number: int, width: int | None) -> str:
    """The table revision ``number`` adds its column to: ``tasks``, ``tasks_2``..."""
    at = 0 if width is None else (number - 2) // width
    return "tasks" if at == 0 else f"tasks_{at + 1}"


def write_revision(
    root: Path,
    number: int,
    down: str | tuple[str, ...] | None = None,
    table: str = "tasks",
    *,
    create: bool = False,
) -> Path:
    """Revision ``number``, which adds ``field_<number>`` to ``table`` (after the one before
    it, or after ``down``); with ``create``, it creates the table with that column."""
    revision = f"{number:04d}"
    down = down or f"{number - 1:04d}"
    column = f'sa.Column("field_{number}", sa.Text())'
    upgrade = f'op.add_column("{table}", {column})'
    downgrade = f'op.drop_column("{table}", "field_{number}")'
    if create:
        upgrade, downgrade = f'op.create_table("{table}", {column})', f'op.drop_table("{table}")'
    path = root / "migrations" / "versions" / f"{revision}_add_field_{number}.py"
    path.write_text(
        f'"""Add field {number} to {table}"""\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "{revision}"\ndown_revision = {down!r}\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n    {upgrade}\n\n\n"
        f"def downgrade() -> None:\n    {downgrade}\n"
    )
    return path


def commit_history(root: Path, migrail: Path, *setup: list[str]) -> None:
    """Run the ``migrail`` setup commands in ``root``, then commit it all to a new repository."""
    for arguments in setup:
        subprocess.run([str(migrail), *arguments], cwd=root, check=True, capture_output=True)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "history"], cwd=root, check=True)


@dataclass(frozen=True)
class Command:
    """A whole command to time (process start included); it must exit with one of ``ok`` (a
    crash must not pass for a fast run). ``before`` runs ahead of each run, untimed."""

    argv: list[str]
    cwd: Path
    before: Callable[[], None] = lambda: None
    ok: tuple[int, ...] = (0,)
    source: Path | None = None  # another checkout's src/ to run instead of this one's

    def of(self, source: Path) -> Command:
        """The same command, running the migrail in ``source`` (a checkout's ``src``)."""
        return replace(self, source=source)


@dataclass
class Timing:
    """The wall times, CPU times and peak memory (RSS) of one command's runs, its own process's:
    the CPU time (user and system) moves less than the wall time when other jobs share the
    machine, and the wall time less the CPU time is mostly the server's part."""

    seconds: list[float] = field(default_factory=list)
    peaks_kb: list[int] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else math.nan

    @property
    def peak_mb(self) -> float:
        return max(self.peaks_kb) / 1024

    def spread(self) -> str:
        """``0.71 s (0.66-0.80)``: the median, then the min and the max."""
        return f"{self.median:6.2f} s ({min(self.seconds):.2f}-{max(self.seconds):.2f})"

    def row(self, name: str, baseline: Timing | None = None, goal: str = "") -> str:
        """One line of a report: name, median (min-max), ratio to ``baseline``, median CPU time,
        peak RSS, goal."""
        ratio = f"{self.median / baseline.median:5.2f}x" if baseline is not None else "  1.00x"
        cpu, peak = f"cpu {self.cpu_median:5.2f} s", f"{self.peak_mb:5.0f} MB"
        return f"  {name:<44} {self.spread()}  {ratio}  {cpu}  {peak}  {goal}".rstrip()


def run_once(command: Command) -> tuple[float, int, float]:
    """One run of ``command``: its wall time, its peak RSS in KB and its CPU time (``os.wait4``
    gives the child's own, where ``RUSAGE_CHILDREN`` would give the largest of every child so
    far, and sum the CPU of all)."""
    command.before()
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        env, argv = None, list(command.argv)
        if command.source is not None:
            env = {**os.environ, "PYTHONPATH": str(command.source)}
            if Path(argv[0]).name == "migrail":  # the checkout's own entry, whatever it is
                argv = [sys.executable, "-m", "migrail", *argv[1:]]
        child = subprocess.Popen(
            argv, cwd=command.cwd, stdout=subprocess.DEVNULL, stderr=err, env=env
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
        if child.returncode not in command.ok:
            err.seek(0)
            raise SystemExit(f"{command.argv} failed: {err.read().decode()[-800:]}")
    return seconds, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def alternate(commands: Mapping[str, Command], rounds: int) -> dict[str, Timing]:
    """Time each of ``commands`` ``rounds`` times, in turns (A, B, C, A, B, C...), after one
    untimed run of each (the file cache, the cluster): a slow moment of a shared machine falls
    on all of them, not on one block of runs."""
    timings = {name: Timing() for name in commands}
    # Compiled first, as an installed package is: with PYTHONDONTWRITEBYTECODE set (this
    # machine, many CI images), each run would compile migrail's modules again, while Alembic's
    # and SQLAlchemy's were compiled at install time.
    for source in {REPO / "src", *(c.source for c in commands.values() if c.source)}:
        compileall.compile_dir(source, quiet=1)
    for command in commands.values():
        run_once(command)
    for _ in range(rounds):
        for name, command in commands.items():
            seconds, peak, cpu = run_once(command)
            timings[name].seconds.append(seconds)
            timings[name].peaks_kb.append(peak)
            timings[name].cpu_seconds.append(cpu)
    return timings


def with_before(
    commands: dict[str, Command], before: Path | None, *names: str
) -> dict[str, Command]:
    """``commands``, and for each of ``names`` the same command run by the checkout whose
    ``src`` is ``before`` (``--before``), listed right after it: before and after measured in
    the same run, in turns, under the same load."""
    if before is None:
        return commands
    both = {}
    for name, command in commands.items():
        both[name] = command
        if name in names:
            both[f"{name} (before)"] = command.of(before)
    return both


def machine_load() -> str:
    """What ``uptime`` says of the load: other jobs share the machine, and times scale with it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def fresh_database(admin_url: URL, made: list[str] | None = None) -> Callable[[], None]:
    """A command's ``before``: a new empty database on the benchmark's server, which the
    benchmark's env.py reads from BENCH_DATABASE_URL (its name also added to ``made``)."""
    from psycopg import sql

    from migrail.postgres.ephemeral import admin_connection, throwaway_name

    def make() -> None:
        name = throwaway_name()
        with admin_connection(admin_url) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if made is not None:
            made.append(name)
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        os.environ["BENCH_DATABASE_URL"] = url

    return make


@contextmanager
def warm_cluster() -> Iterator[tuple[Path, Server]]:
    """A private temporary directory and one warm cluster in it, which the timed commands
    share (so no row pays for starting PostgreSQL); both gone afterwards."""
    from migrail.postgres.ephemeral import WARM_ENV, ephemeral_server
    from migrail.postgres.warm import stop_warm_clusters

    saved_tmp = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="mb") as private_tmp:
        Path(private_tmp).chmod(0o755)  # the server account must pass through
        tempfile.tempdir = private_tmp
        os.environ[WARM_ENV] = "1"  # for the commands too: they share this warm cluster
        os.environ["TMPDIR"] = private_tmp
        try:
            with ephemeral_server() as server:
                yield Path(private_tmp), server
        finally:
            stop_warm_clusters()
            tempfile.tempdir = saved_tmp

"""``migrail migrate-staging`` on generated revisions, against plain ``alembic upgrade head``.

Everything runs on one warm cluster of the benchmark's own, started first, so that no row pays
for starting PostgreSQL; each is a whole command (process start included), timed in turns with
the others (``histories.alternate``), median with its min and max, and the peak RSS:
- ``alembic upgrade head`` on an empty database: the baseline;
- Alembic's upgrade, downgrade to base and upgrade again, in one process (``BY_HAND``): the
  cold run's three passes with nothing of migrail's, what the proof costs at the least;
- a cold ``migrate-staging --no-cache``: every revision up, the models compared, down, up again;
- the same with ``--no-data``: what giving the tables sample rows before each revision costs;
- a warm ``migrate-staging`` after adding one revision: the template cache holds the history up
  to the revision before it (filled by an untimed run), so one revision is proven (goal: at
  least 10 times faster than the cold run);
- a warm run with nothing new to prove, answered from the receipt the run before recorded
  (goal: at most 0.25 s), and the same run in full (``--report``, which never uses a receipt:
  Python and its imports, loading the revision files, one copy of a template, the models).
``--before PATH`` (another checkout's ``src/``) times that checkout's runs alongside, in the
same turns, each on a project of its own, so that neither drops the other's templates;
``--cold`` times only the baseline and the cold runs; with it, ``--width N`` spreads the columns
over tables of at most N (as a real history spreads its changes over its tables): by default
they all go to one table, 1,000 columns wide at 1,000 revisions, where every ALTER TABLE costs
the server more, Alembic's as well as migrail's.
``--merges N``: the history branches and merges N times (``histories.make_history``), as a
team's does; the template cache serves it as it serves a line.
Run: python bench/staging.py [--revisions 200] [--rounds 3] [--before PATH] [--merges N]
                             [--cold [--width N]]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from histories import (
    Command,
    alternate,
    machine_load,
    make_history,
    warm_cluster,
    write_revision,
)
from histories import (
    fresh_database as new_database,
)

from migrail.postgres.ephemeral import (
    Server,
)

BIN = Path(sys.executable).parent

# The generated project's env.py: migrail's, and for plain ``alembic`` an engine of its own.
ENV_PY = """import os

from alembic import context

from migrail.alembic_env import run_migrations

if context.is_offline_mode() or "connection" in context.config.attributes:
    run_migrations()
else:
    import sqlalchemy

    engine = sqlalchemy.create_engine(os.environ["BENCH_DATABASE_URL"])
    with engine.connect() as connection:
        context.config.attributes["connection"] = connection
        run_migrations()
        connection.commit()
"""


def add_revision(root: Path, number: int) -> Path:
    """Revision ``number`` on top of the history, with its column in the models too."""
    models = root / "models.py"
    field = f'    sa.Column("field_{number - 1}", sa.Text()),\n'
    models.write_text(
        models.read_text().replace(field, field + field.replace(str(number - 1), str(number)))
    )
    return write_revision(root, number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout's src/, timed alongside")
    parser.add_argument("--cold", action="store_true", help="only the baseline and cold runs")
    parser.add_argument("--width", type=int, help="with --cold: columns a table at most")
    parser.add_argument("--merges", type=int, default=0, help="branches merged in the history")
    options = parser.parse_args()
    if options.width is not None and not options.cold:
        parser.error("--width goes with --cold (the warm rows add a column to tasks)")
    count = options.revisions
    with warm_cluster() as (directory, server):
        shape = {"width": options.width, "merges": options.merges}
        commands = measure(directory / "project", count, server, **shape)
        timed = COLD_ROWS if options.cold else (*COLD_ROWS, *WARM_ROWS)
        if options.cold:
            kept = ("alembic upgrade head", "alembic up, down, up", *COLD_ROWS)
            commands = {name: commands[name] for name in kept}
        if options.before is not None:
            earlier = measure(directory / "before", count, server, options.before, **shape)
            for name in timed:
                commands[f"{name} (before)"] = earlier[name]
        rows = alternate(commands, options.rounds)
    baseline = rows["alembic upgrade head"]
    shape_said = f", at most {options.width} columns a table" if options.width else ""
    shape_said += f", {options.merges} merges" if options.merges else ""
    print(
        f"{count} revisions{shape_said}, median (min-max) of {options.rounds} runs in turns, "
        "one warm cluster"
    )
    print(f"  {machine_load()}")
    goals = {
        "cold (--no-cache)": "goal: 2.5x",
        "warm, one revision added": "goal: cold / 10",
        "warm, nothing new (receipt)": "goal: 0.25 s",
    }
    for name, timing in rows.items():
        print(timing.row(name, baseline, goals.get(name, "")))
    cold = rows["cold (--no-cache)"].median
    by_hand = rows["alembic up, down, up"].median
    print(f"  the cold run costs {cold / by_hand:.2f}x Alembic's own three passes")
    if options.cold:
        print(f"  sample rows cost {cold / rows['cold, --no-data'].median:.2f}x without them")
        return
    warm = rows["warm, one revision added"].median
    fast = rows["warm, nothing new (receipt)"].median
    full = rows["warm, nothing new, in full"].median
    no_data = rows["cold, --no-data"].median
    print(f"  warm run after adding one revision: {cold / warm:.1f} times faster than cold")
    print(f"  nothing new from the receipt: {full / fast:.1f} times faster than in full")
    print(f"  sample rows cost {cold / no_data:.2f}x the same run without them")


# The proof by hand: Alembic's upgrade, downgrade to base and upgrade again, in one process.
BY_HAND = """from alembic import command
from alembic.config import Config

command.upgrade(Config("alembic.ini"), "head")
command.downgrade(Config("alembic.ini"), "base")
command.upgrade(Config("alembic.ini"), "head")
"""

# The rows ``--cold`` keeps, and those ``--before`` times for the other checkout too.
COLD_ROWS = ("cold (--no-cache)", "cold, --no-data")
WARM_ROWS = (
    "warm, one revision added",
    "warm, nothing new (receipt)",
    "warm, nothing new, in full",
)


def measure(
    root: Path,
    count: int,
    server: Server,
    source: Path | None = None,
    width: int | None = None,
    merges: int = 0,
) -> dict[str, Command]:
    """Each row's command, by name, on a new project at ``root`` (its columns in tables of at
    most ``width``, its history merging ``merges`` branches); run by the migrail in ``source``
    (a checkout's ``src``), this one's when ``None``."""
    admin_url = server.admin_url
    root.mkdir()
    make_history(root, count, merges, width)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    migrail = [str(BIN / "migrail"), "migrate-staging"]
    env = None if source is None else {**os.environ, "PYTHONPATH": str(source)}
    if source is not None:  # the checkout's own entry, whatever its console script is
        migrail = [sys.executable, "-m", "migrail", "migrate-staging"]

    fresh_database = new_database(admin_url)

    newest = root / "migrations" / "versions" / f"{count + 1:04d}_add_field_{count + 1}.py"
    models = (root / "models.py").read_text()

    def without_newest() -> None:
        newest.unlink(missing_ok=True)
        (root / "models.py").write_text(models)
        shutil.rmtree(root / "migrations" / "versions" / "__pycache__", ignore_errors=True)

    def cache_without_newest() -> None:
        """The cache as a run of the history without the newest revision left it, and a newest
        revision no template holds (its content is new each time)."""
        without_newest()
        subprocess.run(migrail, cwd=root, check=True, capture_output=True, env=env)
        add_revision(root, count + 1)
        newest.write_text(newest.read_text() + f"# {time.time_ns()}\n")

    def unchanged() -> None:
        """The history without the newest revision, proven, with a receipt recorded."""
        if newest.exists():
            without_newest()
            subprocess.run(migrail, cwd=root, check=True, capture_output=True, env=env)
            subprocess.run(migrail, cwd=root, check=True, capture_output=True, env=env)

    report = root.parent / f"{root.name}-report.md"
    commands = {
        "alembic upgrade head": Command(
            [str(BIN / "alembic"), "upgrade", "head"], root, fresh_database
        ),
        "alembic up, down, up": Command([sys.executable, "-c", BY_HAND], root, fresh_database),
        "cold (--no-cache)": Command([*migrail, "--no-cache"], root),
        "cold, --no-data": Command([*migrail, "--no-cache", "--no-data"], root),
        "warm, one revision added": Command(migrail, root, cache_without_newest),
        "warm, nothing new (receipt)": Command(migrail, root, unchanged),
        "warm, nothing new, in full": Command([*migrail, "--report", str(report)], root, unchanged),
    }
    if source is not None:
        commands = {name: command.of(source) for name, command in commands.items()}
    return commands


if __name__ == "__main__":
    main()

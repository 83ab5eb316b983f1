"""``migrail migrate-staging`` on 200 generated revisions, against plain ``alembic upgrade head``.

Everything runs on one warm cluster of the benchmark's own, started first, so that no row pays
for starting PostgreSQL; each is a whole command (process start included), median of a few:
- ``alembic upgrade head`` on an empty database: the baseline;
- a cold ``migrate-staging --no-cache``: every revision up, the models compared, down, up again;
- the same with ``--no-data``: what giving the tables sample rows before each revision costs;
- a warm ``migrate-staging`` after adding one revision: the template cache holds the history up
  to the revision before it (filled by an untimed run), so one revision is proven (goal: at
  least 10 times faster than the cold run);
- a warm run with nothing new to prove: what every run pays (Python and its imports, loading the
  revision files, one copy of a template, the model comparison).
Run: python bench/staging.py [--revisions 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from histories import make_history, timed, warm_cluster, write_revision
from psycopg import sql

from migrail.postgres.ephemeral import (
    Server,
    admin_connection,
    throwaway_name,
)
from migrail.staging.templates import clear_templates, project_key

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
    options = parser.parse_args()
    count = options.revisions
    with warm_cluster() as (directory, server):
        rows = measure(directory / "project", count, options.rounds, server)
    baseline = rows[0][1]
    print(f"{count} revisions, median of {options.rounds} runs, one warm cluster")
    for name, seconds, goal in rows:
        print(f"  {name:<46} {seconds:6.2f} s  {seconds / baseline:6.2f}x baseline  {goal}")
    cold, no_data, warm = rows[1][1], rows[2][1], rows[3][1]
    print(f"  warm run after adding one revision: {cold / warm:.1f} times faster than cold")
    print(f"  sample rows cost {cold / no_data:.2f}x the same run without them")


def measure(root: Path, count: int, rounds: int, server: Server) -> list[tuple[str, float, str]]:
    """The four rows: name, median seconds, goal."""
    admin_url = server.admin_url
    root.mkdir()
    make_history(root, count)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    migrail = [str(BIN / "migrail"), "migrate-staging"]

    def fresh_database() -> None:
        name = throwaway_name()
        with admin_connection(admin_url) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        os.environ["BENCH_DATABASE_URL"] = url

    alembic = timed([str(BIN / "alembic"), "upgrade", "head"], root, rounds, fresh_database)
    cold = timed([*migrail, "--no-cache"], root, rounds)
    no_data = timed([*migrail, "--no-cache", "--no-data"], root, rounds)
    newest = root / "migrations" / "versions" / f"{count + 1:04d}_add_field_{count + 1}.py"
    models = (root / "models.py").read_text()

    def cache_without_newest() -> None:
        """The cache as a run of the history without the newest revision left it."""
        newest.unlink(missing_ok=True)
        (root / "models.py").write_text(models)
        shutil.rmtree(root / "migrations" / "versions" / "__pycache__", ignore_errors=True)
        clear_templates(admin_url, project_key(root / "migrations"))
        subprocess.run(migrail, cwd=root, check=True, capture_output=True)
        add_revision(root, count + 1)

    warm = timed(migrail, root, rounds, cache_without_newest, ok=(0,))
    unchanged = timed(migrail, root, rounds, ok=(0,))
    return [
        ("alembic upgrade head (empty database)", alembic, "baseline"),
        ("migrate-staging, cold (--no-cache)", cold, ""),
        ("migrate-staging, cold, --no-data", no_data, ""),
        ("migrate-staging, warm, one revision added", warm, "goal: cold / 10"),
        ("migrate-staging, warm, nothing new (fixed cost)", unchanged, ""),
    ]


if __name__ == "__main__":
    main()

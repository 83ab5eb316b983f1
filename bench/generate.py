"""``migrail generate`` with a warm cluster and no model change, against ``alembic upgrade head``.

Before, generate replayed the whole history on a throwaway database before comparing the models
with it; now it copies the template cache's database at head (migrate-staging's, or one a
replay of its own kept). All on one warm cluster of the benchmark's own, as whole commands
(process start included), in turns, median with its min and max:
- ``alembic upgrade head`` on an empty database: the baseline, measured in the same run;
- ``generate``, warm: a template at head exists (the untimed first run kept it), with the
  receipt an earlier run recorded on it (``staging.generate_receipt``): the answer is said again;
- ``generate``, warm, no receipt: the receipts removed before each run, so it copies the
  template and compares the models with it (as the first run after a change to an input does);
- ``generate``, after migrate-staging: the receipts removed, then ``migrate-staging`` run
  (untimed), whose model check at head records that the models match: what a generate after a
  change to an input pays once migrate-staging has proven it;
- ``generate``, replaying: the project's templates dropped before each run, so it replays the
  history (and keeps a template again), as every run did before.
- ``drizzle-kit generate`` with no schema change (``drizzle.py``: installed with npm for the run,
  on the same tables): the goal, from issue 16, is at most its time (0.64-0.70 s when the issue
  measured it), and flat in history length (run at 200 and 1,000 revisions). ``--no-drizzle``
  leaves it out and holds the rows to the issue's 0.70 s instead.
``--before ../main/src`` times the generate of another checkout alongside (before and after in
one run, under the same load: from its receipt, and comparing), on a copy of the project of its
own: the replaying row drops the project's templates, and a checkout whose templates are keyed
otherwise would replay too.
Run: python bench/generate.py [--revisions 200] [--rounds 5] [--before PATH] [--no-drizzle]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from drizzle import drizzle_generate
from histories import Command, alternate, machine_load, make_history, warm_cluster
from histories import fresh_database as new_database
from psycopg import sql

from migrail.postgres.ephemeral import admin_connection
from migrail.staging.generate_receipt import FIELD, MATCH_FIELD
from migrail.staging.templates import TEMPLATE_PREFIX, clear_templates, project_key
from staging import ENV_PY

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

BIN = Path(sys.executable).parent
DRIZZLE_GOAL = 0.70  # seconds: drizzle-kit generate, as issue 16 measured it (0.64-0.70 s)
DRIZZLE_ROW = "drizzle-kit generate (no change)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout's src/, timed alongside")
    parser.add_argument("--no-drizzle", action="store_true", help="without drizzle-kit's row")
    options = parser.parse_args()
    with warm_cluster() as (directory, server):
        root = directory / "project"
        root.mkdir()
        make_history(root, options.revisions)
        (root / "migrations" / "env.py").write_text(ENV_PY)
        admin_url = server.admin_url
        databases: list[str] = []

        fresh_database = new_database(admin_url, databases)

        def no_template() -> None:
            clear_templates(admin_url, project_key(root / "migrations"))

        def no_receipt() -> None:
            forget_receipts(admin_url, project_key(root / "migrations"))

        def after_staging() -> None:
            forget_receipts(admin_url, project_key(root / "migrations"), ("receipt",))
            staging = [str(BIN / "migrail"), "migrate-staging"]
            subprocess.run(staging, cwd=root, check=True, capture_output=True)

        generate = [str(BIN / "migrail"), "generate", "nothing"]
        commands = {
            "alembic upgrade head (empty database)": Command(
                [str(BIN / "alembic"), "upgrade", "head"], root, fresh_database
            ),
            "generate, warm (template at head)": Command(generate, root),
            "generate, warm, no receipt (compares)": Command(generate, root, no_receipt),
            "generate, after migrate-staging": Command(generate, root, after_staging),
            "generate, replaying the history": Command(generate, root, no_template),
        }
        drizzle = (
            None
            if options.no_drizzle
            else drizzle_generate(root / "models.py", directory / "drizzle")
        )
        if drizzle is not None:
            commands[DRIZZLE_ROW] = drizzle
        warm_row = "generate, warm (template at head)"
        compare_row = "generate, warm, no receipt (compares)"
        if options.before is not None:
            other = directory / "before"
            shutil.copytree(root, other)

            def no_receipt_before() -> None:
                forget_receipts(admin_url, project_key(other / "migrations"))

            before = {
                warm_row: Command(generate, other).of(options.before),
                compare_row: Command(generate, other, no_receipt_before).of(options.before),
            }
            ordered = {}
            for name, command in commands.items():
                ordered[name] = command
                if name in before:  # right after it, as with_before lists it
                    ordered[f"{name} (before)"] = before[name]
            commands = ordered
        timings = alternate(commands, options.rounds)
        with admin_connection(admin_url) as admin:
            for name in databases:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    print(
        f"{options.revisions} revisions, no model change, {options.rounds} rounds in turns, "
        f"one warm cluster ({machine_load()})"
    )
    print(f"  {'':<44} {'median (min-max)':>20}  ratio  peak RSS")
    baseline = timings["alembic upgrade head (empty database)"]
    warm, replay = timings[warm_row], timings["generate, replaying the history"]
    measured = timings.get(DRIZZLE_ROW)
    goal = (
        f"{measured.median:.2f} s, measured" if measured else f"{DRIZZLE_GOAL:.2f} s, the issue's"
    )
    goals = {
        row: f"goal <= {goal} (drizzle-kit generate)"
        for row in (warm_row, compare_row, "generate, after migrate-staging")
    }
    for name, timing in timings.items():
        print(timing.row(name, baseline, goals.get(name, "")))
    print(f"  the template makes generate {replay.median / warm.median:.1f} times faster")


def forget_receipts(admin_url: URL, project: str, others: tuple[str, ...] = ()) -> None:
    """Remove generate's receipts (and the ``others`` fields) from ``project``'s templates: its
    next run compares again."""
    with admin_connection(admin_url) as admin:
        rows = admin.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE starts_with(datname, %s)",
            (f"{TEMPLATE_PREFIX}{project}_",),
        ).fetchall()
        for name, comment in rows:
            about = json.loads(str(comment or "{}"))
            removed = [about.pop(field, None) for field in (FIELD, MATCH_FIELD, *others)]
            if any(receipt is not None for receipt in removed):
                admin.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                        sql.Identifier(str(name)), sql.Literal(json.dumps(about))
                    )
                )


if __name__ == "__main__":
    main()

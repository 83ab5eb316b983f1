"""``migrate-staging``'s upgrade pass alone, against plain ``alembic upgrade head``.

The cold run's first phase applies every revision as ``alembic upgrade head`` does, and around
each one it also gives new tables sample rows, measures the revision's locks and rewrites,
checks for INVALID indexes and holds the revision to its one transaction. This times that phase
as a whole command: ``migrate-staging --no-cache`` in a process that stops once the upgrade
pass is done (the database is dropped as any run drops it), so it pays what the cold run pays
up to there (process start, imports, loading the history, a new database on the cluster) and
nothing after (the models, the round trip, the summary). Goal from issue 16: at most 1.5 times
``alembic upgrade head``.

All on one warm cluster of the benchmark's own, whole commands timed in turns
(``histories.alternate``), median with its min and max, and the peak RSS. ``--before PATH``
(another checkout's ``src/``) times that checkout's upgrade pass alongside.
Run: python bench/upgrade_pass.py [--revisions 200] [--rounds 5] [--before PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

STOP = "--stop-after-upgrade"  # the child: migrate-staging, up to the end of the upgrade pass


class UpgradePassDone(BaseException):
    """Raised once the upgrade pass is over: no ``except Exception`` of the run catches it, and
    every ``finally`` (the database dropped, the server left) still runs."""


def stop_after_upgrade(argv: list[str]) -> int:
    """``migrail migrate-staging argv``, stopped when its upgrade pass ends; 0 if it got there."""
    from migrail.main import main as migrail
    from migrail.staging import proof

    phase = proof._phase

    def upgrade_only(report: object, name: str, *args: object, **kwargs: object) -> None:
        phase(report, name, *args, **kwargs)  # type: ignore[arg-type]
        if name == "upgrade":
            failed = report.failure is not None  # type: ignore[attr-defined]
            raise UpgradePassDone(failed)

    proof._phase = upgrade_only  # type: ignore[assignment]
    try:
        migrail(["migrate-staging", *argv])
    except UpgradePassDone as done:
        return 1 if done.args[0] else 0
    return 1  # the run ended before its upgrade pass did


def main() -> None:
    from histories import Command, alternate, machine_load, make_history, warm_cluster, with_before
    from histories import fresh_database as new_database

    from staging import ENV_PY

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout's src/, timed alongside")
    options = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with warm_cluster() as (directory, server):
        root = directory / "project"
        root.mkdir()
        make_history(root, options.revisions)
        (root / "migrations" / "env.py").write_text(ENV_PY)
        admin_url = server.admin_url

        fresh_database = new_database(admin_url)

        upgrade_pass = [sys.executable, str(Path(__file__).resolve()), STOP, "--no-cache"]
        commands = {
            "alembic upgrade head": Command(
                [str(bin_dir / "alembic"), "upgrade", "head"], root, fresh_database
            ),
            "upgrade pass (data, measured)": Command(upgrade_pass, root),
            "upgrade pass, --no-data": Command([*upgrade_pass, "--no-data"], root),
        }
        rows = with_before(commands, options.before, *list(commands)[1:])
        timings = alternate(rows, options.rounds)
    print(
        f"{options.revisions} revisions, median (min-max) of {options.rounds} runs in turns, "
        "one warm cluster"
    )
    print(f"  {machine_load()}")
    baseline = timings["alembic upgrade head"]
    for name, timing in timings.items():
        goal = "goal: 1.5x" if name == "upgrade pass (data, measured)" else ""
        print(timing.row(name, baseline, goal))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == STOP:
        sys.exit(stop_after_upgrade(sys.argv[2:]))
    main()

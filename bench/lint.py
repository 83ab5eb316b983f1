"""``migrail lint`` against plain ``alembic upgrade base:head --sql``, on generated revisions.

All are timed in the same run, as whole commands (process start included), in turns (alembic,
lint, lint --since newest, lint --since oldest, alembic...), median with its min and max:
- the full lint, as a ratio to Alembic merely rendering the same history offline (goal <= 1.5);
- ``lint --since`` with one changed revision, in seconds (goal <= 0.5 s at 1,000 revisions):
  the newest (one revision rendered) and the second (every revision after it rendered).
``--before PATH`` times ``lint --since`` of another checkout's src/ alongside.
Run: python bench/lint.py [--revisions 200] [--rounds 5] [--before PATH]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from histories import (
    Command,
    alternate,
    commit_history,
    machine_load,
    make_history,
    with_before,
)

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout's src/, timed alongside")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="migrail-bench-") as directory:
        root = Path(directory)
        make_history(root, options.revisions)
        commit_history(root, BIN / "migrail", ["lint", "--fix-sql"])
        revisions = sorted((root / "migrations" / "versions").glob("*.py"))

        def changed(path: Path | None) -> Callable[[], None]:
            def change() -> None:  # the one revision changed, against the commit
                subprocess.run(["git", "checkout", "-q", "."], cwd=root, check=True)
                if path is not None:
                    text = path.read_text().replace('"""Add field', '"""Add the field')
                    path.write_text(text)

            return change

        lint = [str(BIN / "migrail"), "lint"]
        alembic = [str(BIN / "alembic"), "upgrade", "base:head", "--sql"]
        commands = {
            "alembic upgrade base:head --sql": Command(alembic, root, changed(None)),
            "migrail lint": Command(lint, root, changed(None), ok=(0, 1)),
            "lint --since (newest changed)": Command(
                [*lint, "--since", "HEAD"], root, changed(revisions[-1]), ok=(0, 1)
            ),
            "lint --since (second changed)": Command(
                [*lint, "--since", "HEAD"], root, changed(revisions[1]), ok=(0, 1)
            ),
        }
        newest = "lint --since (newest changed)"
        timings = alternate(with_before(commands, options.before, newest), options.rounds)
    goals = {
        "alembic upgrade base:head --sql": "baseline",
        "migrail lint": "goal <= 1.5x",
        newest: "goal <= 0.5 s at 1,000",
        "lint --since (second changed)": "(renders all after it)",
    }
    print(f"{options.revisions} revisions, {options.rounds} rounds in turns ({machine_load()})")
    print(f"  {'':<44} {'median (min-max)':>20}  ratio  peak RSS")
    baseline = timings["alembic upgrade base:head --sql"]
    for name, timing in timings.items():
        print(timing.row(name, baseline, goals.get(name, "")))


if __name__ == "__main__":
    main()

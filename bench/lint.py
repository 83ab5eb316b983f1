"""``migrail lint`` against plain ``alembic upgrade base:head --sql``, on 200 generated revisions.

Both are timed in the same run, as whole commands (process start included), median of a few:
- the full lint, as a ratio to Alembic merely rendering the same history offline (goal <= 1.5);
- ``lint --since`` with one changed revision, in seconds (goal < 0.5 s) and as a ratio.
Run: python bench/lint.py [--revisions 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from histories import commit_history, make_history, timed

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="migrail-bench-") as directory:
        root = Path(directory)
        make_history(root, options.revisions)
        migrail = [str(BIN / "migrail"), "lint"]
        commit_history(root, BIN / "migrail", ["lint", "--fix-sql"])
        revisions = sorted((root / "migrations" / "versions").glob("*.py"))

        def change(path: Path) -> None:
            path.write_text(path.read_text().replace('"""Add field', '"""Add the field'))

        alembic = timed(
            [str(BIN / "alembic"), "upgrade", "base:head", "--sql"], root, options.rounds
        )
        full = timed(migrail, root, options.rounds)
        change(revisions[-1])
        since_newest = timed([*migrail, "--since", "HEAD"], root, options.rounds)
        subprocess.run(["git", "checkout", "-q", "."], cwd=root, check=True)
        change(revisions[1])
        since_oldest = timed([*migrail, "--since", "HEAD"], root, options.rounds)
    rows = [
        ("alembic upgrade base:head --sql", alembic, "baseline"),
        ("migrail lint", full, "goal <= 1.5x"),
        ("lint --since (newest changed)", since_newest, "goal < 0.5 s"),
        ("lint --since (oldest changed)", since_oldest, "goal < 0.5 s"),
    ]
    print(f"{options.revisions} revisions, median of {options.rounds} runs")
    for name, seconds, goal in rows:
        print(f"  {name:<34} {seconds:6.2f} s  {seconds / alembic:5.2f}x  ({goal})")


if __name__ == "__main__":
    main()

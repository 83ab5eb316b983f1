"""``migrail lint`` against plain ``alembic upgrade base:head --sql``, on 200 generated revisions.

Both are timed in the same run, as whole commands (process start included), median of a few:
- the full lint, as a ratio to Alembic merely rendering the same history offline (goal <= 1.5);
- ``lint --since`` with one changed revision, in seconds (goal < 0.5 s) and as a ratio.
Run: python bench/lint.py [--revisions 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_history(root: Path, count: int) -> None:
    """A project whose linear history adds ``count`` columns to ``tasks``, one a revision."""
    (root / "migrations" / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(REPO / "migrations" / name, root / "migrations" / name)
    shutil.copy(
        REPO / "migrations" / "versions" / "0001_create_tasks.py", root / "migrations" / "versions"
    )
    (root / "pyproject.toml").write_text('[tool.migrail]\nmigrations = "migrations"\n')
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    for number in range(2, count + 1):
        revision = f"{number:04d}"
        (root / "migrations" / "versions" / f"{revision}_add_field_{number}.py").write_text(
            f'"""Add field {number} to tasks"""\n\n'
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "{revision}"\ndown_revision = "{number - 1:04d}"\n'
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade() -> None:\n"
            f'    op.add_column("tasks", sa.Column("field_{number}", sa.Text()))\n\n\n'
            "def downgrade() -> None:\n"
            f'    op.drop_column("tasks", "field_{number}")\n'
        )


def timed(command: list[str], cwd: Path, rounds: int) -> float:
    def once() -> float:
        started = time.perf_counter()
        # lint exits 1 on findings; anything else (a crash) must not pass for a fast run
        done = subprocess.run(command, cwd=cwd, check=False, capture_output=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{command} failed: {done.stderr.decode()[-500:]}")
        return time.perf_counter() - started

    once()  # warm the file cache
    return statistics.median(once() for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="migrail-bench-") as directory:
        root = Path(directory)
        make_history(root, options.revisions)
        migrail = [str(BIN / "migrail"), "lint"]
        subprocess.run([*migrail, "--fix-sql"], cwd=root, check=True, capture_output=True)
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
        subprocess.run([*git, "init", "-q"], cwd=root, check=True)
        subprocess.run([*git, "add", "-A"], cwd=root, check=True)
        subprocess.run([*git, "commit", "-qm", "history"], cwd=root, check=True)
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

"""Benchmark helpers: a project with a long linear history, and a timer for whole commands."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_history(root: Path, count: int) -> None:
    """A project whose linear history adds ``count`` columns to ``tasks``, one a revision, and
    whose models (``models.py``) have them all."""
    (root / "migrations" / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(REPO / "migrations" / name, root / "migrations" / name)
    shutil.copy(
        REPO / "migrations" / "versions" / "0001_create_tasks.py", root / "migrations" / "versions"
    )
    (root / "pyproject.toml").write_text(
        '[tool.migrail]\nmigrations = "migrations"\nmetadata = "models:metadata"\n'
    )
    fields = "".join(f'    sa.Column("field_{n}", sa.Text()),\n' for n in range(2, count + 1))
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
        f"{fields})\n"
    )
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    for number in range(2, count + 1):
        write_revision(root, number)


def write_revision(root: Path, number: int) -> Path:
    """Revision ``number``, which adds ``field_<number>`` to ``tasks``."""
    revision = f"{number:04d}"
    path = root / "migrations" / "versions" / f"{revision}_add_field_{number}.py"
    path.write_text(
        f'"""Add field {number} to tasks"""\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "{revision}"\ndown_revision = "{number - 1:04d}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        f'    op.add_column("tasks", sa.Column("field_{number}", sa.Text()))\n\n\n'
        "def downgrade() -> None:\n"
        f'    op.drop_column("tasks", "field_{number}")\n'
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


def timed(
    command: list[str],
    cwd: Path,
    rounds: int,
    before: Callable[[], None] = lambda: None,
    ok: tuple[int, ...] = (0, 1),
) -> float:
    """Median wall time of a whole command (process start included), which must exit with one
    of ``ok`` (a crash must not pass for a fast run). ``before`` runs ahead of each, untimed."""

    def once() -> float:
        before()
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, check=False, capture_output=True)
        if done.returncode not in ok:
            raise SystemExit(f"{command} failed: {done.stderr.decode()[-500:]}")
        return time.perf_counter() - started

    once()  # warm the file cache
    return statistics.median(once() for _ in range(rounds))

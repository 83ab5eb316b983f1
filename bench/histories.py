"""Benchmark helpers: a project with a long linear history, and a timer for whole commands."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrail.postgres.ephemeral import Server

REPO = Path(__file__).resolve().parents[1]


def make_history(root: Path, count: int, merges: int = 0) -> None:
    """A project whose history adds ``count`` columns to ``tasks``, one a revision, and whose
    models (``models.py``) have them all. Linear, unless ``merges``: then that many times, spread
    evenly, two revisions branch from the same parent and the next one merges them."""
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
    branch_points = {count * (k + 1) // (merges + 1) for k in range(merges)}
    for number in range(2, count + 1):
        down: str | tuple[str, ...] = f"{number - 1:04d}"
        if number - 1 in branch_points:  # a sibling of the revision before it
            down = f"{number - 2:04d}"
        elif number - 2 in branch_points:  # the merge of the two
            down = (f"{number - 2:04d}", f"{number - 1:04d}")
        write_revision(root, number, down)


def write_revision(root: Path, number: int, down: str | tuple[str, ...] | None = None) -> Path:
    """Revision ``number``, which adds ``field_<number>`` to ``tasks`` (after the one before
    it, or after ``down``)."""
    revision = f"{number:04d}"
    down = down or f"{number - 1:04d}"
    path = root / "migrations" / "versions" / f"{revision}_add_field_{number}.py"
    path.write_text(
        f'"""Add field {number} to tasks"""\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "{revision}"\ndown_revision = {down!r}\n'
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

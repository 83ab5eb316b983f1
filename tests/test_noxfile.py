"""The nox sessions, run by the real nox, as users run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from migrail.postgres.ephemeral import Server
from testing.projects import REPO, add_priority_to_task, copy_repository


def _nox(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Real nox; with ``--no-venv`` its sessions find ``migrail`` beside this Python."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": path},
    )


def test_every_command_is_a_session_with_a_docstring() -> None:
    listed = _nox("--list", cwd=REPO).stdout
    for line in (
        "- generate -> Write the next revision from the model changes: nox -s generate -- NAME.",
        "- migrate-staging -> Prove the migration history on a throwaway PostgreSQL",
        "- migrate -> Apply pending revisions: nox -s migrate -- --env staging (production: plan and apply).",
        "- status -> Show the database's revision and the pending revisions.",
        "- lint -> Check every revision's SQL with squawk and migrail's rules",
        "* tests -> Run the tests on real PostgreSQL",
    ):
        assert line in listed


def test_generate_then_migrate_staging_through_nox(tmp_path: Path, pg_server: Server) -> None:
    root = copy_repository(tmp_path / "repo")
    add_priority_to_task(root)
    generated = _nox("--no-venv", "-s", "generate", "--", "add_priority", cwd=root)
    assert generated.returncode == 0, generated.stderr
    assert "nox > migrail generate add_priority" in generated.stderr
    assert (root / "migrations" / "versions" / "0002_add_priority.py").is_file()
    assert (root / "migrations" / "sql" / "0002_add_priority.sql").is_file()
    staged = _nox("--no-venv", "-s", "migrate-staging", cwd=root)
    assert staged.returncode == 0, staged.stderr
    assert "│ 0002_add_priority │" in staged.stdout + staged.stderr
    assert "[✓] round trip: down to base and up to head again" in staged.stdout + staged.stderr

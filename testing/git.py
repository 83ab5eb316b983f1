"""Real git repositories for tests: a project committed, then changed the way a developer would."""

from __future__ import annotations

import subprocess
from pathlib import Path

IDENTITY = ["-c", "user.name=migrail tests", "-c", "user.email=tests@example.com"]


def git(root: Path, *args: str, check: bool = True) -> str:
    """Run git in ``root`` (with a fixed identity) and return its output; failures raise unless
    ``check`` is false (a merge that conflicts, say)."""
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=root, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout + done.stderr


def commit_all(root: Path, message: str = "commit") -> None:
    """``git init`` (once) and commit everything in ``root``."""
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", message)

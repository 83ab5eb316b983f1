"""The staged tree and the disk agree on what the revision files are called, however the project
is reached, and the staged tree reads them once a run."""

from __future__ import annotations

import subprocess
from pathlib import Path

from migrail.history.revision_files import by_key
from migrail.history.tree import DiskTree, StagedTree


def _repository(root: Path) -> Path:
    """A repository with a project whose revisions are at the top of versions/ and in a
    subfolder, all staged; the versions folder."""
    versions = root / "app" / "migrations" / "versions"
    (versions / "2024").mkdir(parents=True)
    (versions / "0001_first.py").write_text('revision = "0001"\ndown_revision = None\n')
    (versions / "2024" / "0002_second.py").write_text('revision = "0002"\ndown_revision = "0001"\n')
    (versions / "notes.txt").write_text("not a revision\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return versions


def test_staged_and_disk_revisions_have_the_same_keys_through_a_symlink(tmp_path: Path) -> None:
    _repository(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    versions = tmp_path / "link" / "app" / "migrations" / "versions"  # not resolved
    staged = by_key(StagedTree(tmp_path / "link" / "app").revisions(versions), versions)
    on_disk = by_key(DiskTree().revisions(versions), versions)
    assert staged == on_disk
    assert sorted(staged) == ["0001_first.py", "2024/0002_second.py"]


def test_the_staged_revisions_are_read_once_a_run(tmp_path: Path) -> None:
    versions = _repository(tmp_path)
    tree = StagedTree(tmp_path / "app")
    first = tree.revisions(versions)
    (versions / "0001_first.py").write_text("changed, and staged after the run read it\n")
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    assert tree.revisions(versions) is first
    assert StagedTree(tmp_path / "app").revisions(versions) != first  # a new run reads anew

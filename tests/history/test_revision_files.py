"""Revision files resolved as ``Path.resolve()`` resolves them, their folder once for all."""

from __future__ import annotations

from pathlib import Path

from migrail.history.revision_files import Folders, resolved


def test_files_resolve_through_their_folder_and_links_on_their_own(tmp_path: Path) -> None:
    """A folder reached through a link, holding a file, a link to a file elsewhere and a
    dangling link: each resolves as ``Path.resolve()`` says, the folder resolved once."""
    real = tmp_path / "real"
    elsewhere = tmp_path / "elsewhere"
    real.mkdir()
    elsewhere.mkdir()
    (real / "0001_a.py").write_text("")
    (elsewhere / "0002_b.py").write_text("")
    (real / "0002_b.py").symlink_to(elsewhere / "0002_b.py")
    (real / "0003_c.py").symlink_to("nowhere.py")
    (tmp_path / "link").symlink_to(real)
    folders: Folders = {}
    paths = [tmp_path / "link" / name for name in ("0001_a.py", "0002_b.py", "0003_c.py")]
    assert [resolved(path, folders) for path in paths] == [path.resolve() for path in paths]
    assert [resolved(path, folders) for path in paths] == [
        real / "0001_a.py",
        elsewhere / "0002_b.py",
        real / "nowhere.py",
    ]
    assert list(folders) == [str(tmp_path / "link")]

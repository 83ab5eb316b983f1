"""The wheel ships migrail, all of it, and nothing else: not this repository's example app."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.wheel
def test_the_wheel_holds_every_migrail_module_and_no_example_app(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is not None:  # as nox installs: uv, with its cache of the build backend
        build = [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(REPO)]
    else:
        build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(REPO)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("migrail-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {name.split("/")[0] for name in names}
    assert {entry for entry in top if not entry.endswith(".dist-info")} == {"migrail"}
    assert not [name for name in names if name.startswith("agent_armor/")]
    source = {
        p.relative_to(REPO / "src").as_posix() for p in (REPO / "src" / "migrail").rglob("*.py")
    }
    assert source - names == set()
    assert "migrail/py.typed" in names
    # The studio's pages, styles and vendored scripts: it must work with no network at all.
    studio = REPO / "src" / "migrail" / "studio"
    assets = {
        p.relative_to(REPO / "src").as_posix()
        for folder in ("templates", "static")
        for p in (studio / folder).iterdir()
    }
    assert "migrail/studio/static/htmx.min.js" in assets
    assert assets - names == set()

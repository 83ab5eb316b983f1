"""Revision file names as Alembic's file_template makes them, in the variants projects use."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrail.core.config import load_config
from migrail.core.errors import FatalError
from migrail.history.file_names import (
    name_fits,
    project_template,
    renamed,
    stem_pattern,
    with_id,
)

DATED = "%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d-%(rev)s_%(slug)s"


@pytest.mark.parametrize(
    ("template", "rev", "stem"),
    [
        ("%(rev)s_%(slug)s", "41e5ed9e1034", "41e5ed9e1034_"),
        (DATED, "1975ea83b712", "2024_01_02_0304-1975ea83b712_create_account"),
        (
            "%(year)d/%(month).2d/%(day).2d_%(hour).2d%(minute).2d_%(second).2d_%(rev)s_%(slug)s",
            "1975ea83b712",
            "2024/01/02_0304_05_1975ea83b712_create_account",
        ),
        (
            "%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d%(second).2d_%(rev)s_%(slug)s",
            "5f376def75c3",
            "2022_02_13_125213_5f376def75c3_block_data",
        ),
        (
            "%(year)d-%(month).2d-%(day).2d_%(hour).2d-%(minute).2d_%(rev)s_%(slug)s",
            "4e6a06bad7a8",
            "2015-09-21_17-30_4e6a06bad7a8_init",
        ),
        ("%(year)d-%(month).2d-%(day).2d_%(rev)s", "ec00175489a1", "2021-05-26_ec00175489a1"),
        (
            "%(year)d-%(month).2d-%(day).2d-%(hour).2d.%(minute).2d.%(second).2d_%(rev)s_%(slug)s",
            "6b0f5f32d602",
            "2022-02-21-19.56.24_6b0f5f32d602_initial_tables",
        ),
        ("%(epoch)d_%(rev)s_%(slug)s", "abc123", "1700000000_abc123_init"),
        ("%(year)d%(month)02d%(day)02d_%(rev)s_%(slug)s", "abc123", "20240102_abc123_init"),
        ("%%_%(rev)s", "abc123", "%_abc123"),
    ],
)
def test_a_name_the_template_gives_its_revision_fits(template: str, rev: str, stem: str) -> None:
    assert name_fits(stem, rev, template)
    assert not name_fits(stem.replace(rev, "0badc0ffee00"), rev, template)


@pytest.mark.parametrize(
    ("template", "stem"),
    [
        (DATED, "2024_1_02_0304-1975ea83b712_x"),  # the month is padded to two digits
        (DATED, "2024_01_02_0304_1975ea83b712_x"),  # "-" before the id, as written
        (DATED, "create_account-1975ea83b712"),
        ("%(year)d-%(month).2d-%(day).2d_%(rev)s", "2021-05-26_1975ea83b712_extra"),
    ],
)
def test_a_name_off_the_template_does_not_fit(template: str, stem: str) -> None:
    assert not name_fits(stem, "1975ea83b712", template)


@pytest.mark.parametrize("stem", ["1975ea83b712", "1975ea83b712_create_account"])
def test_migrail_names_fit_whatever_the_template(stem: str) -> None:
    assert name_fits(stem, "1975ea83b712", DATED)
    assert name_fits(stem, "1975ea83b712", None)


def test_a_template_without_rev_ties_no_name_to_an_id() -> None:
    assert (
        stem_pattern("%(year)d-%(month).2d-%(day).2d-%(hour).2d%(minute).2d_%(slug)s", "a") is None
    )


def test_a_field_alembic_does_not_fill_is_refused() -> None:
    with pytest.raises(FatalError, match=r"file_template has %\(branch\)"):
        stem_pattern("%(branch)s_%(rev)s", "a")


def test_a_renamed_revision_keeps_the_shape_of_its_name(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    dated = versions / "2024_01_02_0304-0002_add_note.py"
    assert (
        renamed(dated, versions, "0002", "0003", DATED).name == "2024_01_02_0304-0003_add_note.py"
    )
    assert renamed(versions / "0002_x.py", versions, "0002", "0003", DATED).name == "0003_x.py"
    assert renamed(versions / "note.py", versions, "0002", "0003", DATED).name == "0003_note.py"
    nested = versions / "2024" / "01" / "02_0304_05_0002_x.py"
    subdirs = "%(year)d/%(month).2d/%(day).2d_%(hour).2d%(minute).2d_%(second).2d_%(rev)s_%(slug)s"
    assert renamed(nested, versions, "0002", "0003", subdirs) == nested.with_name(
        "02_0304_05_0003_x.py"
    )


def _project(root: Path, pyproject_extra: str = "") -> Path:
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.migrail]\nmigrations = "db/migrations"\n{pyproject_extra}'
    )
    return root


@pytest.mark.parametrize(
    "where",
    ["alembic.ini", "db/alembic.ini"],  # the project root, or beside the migrations
)
def test_the_template_is_read_from_alembic_ini_unescaped(tmp_path: Path, where: str) -> None:
    root = _project(tmp_path / "p")
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    (root / where).write_text(f"[alembic]\nfile_template = {DATED.replace('%', '%%')}\n")
    found = project_template(load_config(root))
    assert found is not None
    assert (found.template, found.source) == (DATED, root / where)


def test_the_template_is_read_from_tool_alembic(tmp_path: Path) -> None:
    escaped = DATED.replace("%", "%%")
    root = _project(tmp_path / "p", f'\n[tool.alembic]\nfile_template = "{escaped}"\n')
    found = project_template(load_config(root))
    assert found is not None
    assert (found.template, found.source) == (DATED, root / "pyproject.toml")


def test_no_template_when_the_project_sets_none(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    (root / "alembic.ini").write_text("[alembic]\nscript_location = db/migrations\n")
    assert project_template(load_config(root)) is None


def test_a_dated_name_moved_into_a_release_folder_still_fits(tmp_path: Path) -> None:
    """Projects group revisions by release by hand: the folder is not the template's."""
    stem = "v1.0/2024_01_02_0304-1975ea83b712_create_account"
    assert name_fits(stem, "1975ea83b712", DATED)
    assert not name_fits(stem.replace("1975ea83b712", "0badc0ffee00"), "1975ea83b712", DATED)
    versions = tmp_path / "versions"
    moved = versions / "v1.0" / "2024_01_02_0304-0002_add_note.py"
    assert renamed(moved, versions, "0002", "0003", DATED) == moved.with_name(
        "2024_01_02_0304-0003_add_note.py"
    )


@pytest.mark.parametrize(
    ("stem", "rev", "shown"),
    [
        ("0002_add_x", "0002", "0002_add_x"),
        ("0002", "0002", "0002"),
        ("2024_11_07_1502-ab12cd34ef56_remove_x", "ab12cd34ef56", None),
        ("20240102_030405_add_x", "20240102_030405", None),
        ("2024-11-07-1502_remove_x", "ab12cd34ef56", "2024-11-07-1502_remove_x (ab12cd34ef56)"),
        ("10002_add_x", "0002", "10002_add_x (0002)"),  # the id inside a longer number
        ("0002b_add_x", "0002", "0002b_add_x (0002)"),
    ],
)
def test_output_adds_the_id_to_a_name_that_does_not_hold_it(
    stem: str, rev: str, shown: str | None
) -> None:
    assert with_id(stem, rev) == (shown or stem)

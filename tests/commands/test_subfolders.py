"""A project whose revisions sit in subfolders of ``versions/`` (a folder per year, made by its
``file_template``): every check reads them, on disk and staged, and generate writes into the
folder the template names."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.history.graph import read_header
from migrail.main import main
from testing.git import commit_all, git
from testing.nested_projects import revision_files, versions, yearly_project
from testing.projects import DATED_NAMES, date_named_history, write_revision

CREATE, NAME = 0, 1  # the 2024 and the 2025 revision, in revision_files' order


@pytest.fixture
def adopted(
    tmp_path: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Path]:
    """The yearly project, adopted with ``migrail init`` and released on main; on a branch."""
    project = yearly_project(tmp_path / "app", database_url)
    monkeypatch.chdir(project)
    git(project, "init", "-q", "-b", "main")
    assert main(["init"]) == 0, capsys.readouterr().err
    commit_all(project, "adopted")
    git(project, "checkout", "-q", "-b", "feature")
    capsys.readouterr()
    yield project
    sys.modules.pop("app_models", None)
    sys.path[:] = [entry for entry in sys.path if not entry.startswith(str(tmp_path))]


def _id(project: Path, index: int) -> str:
    revision = read_header(versions(project) / revision_files(project)[index]).revision
    assert revision is not None
    return revision


def _check(only: str, *, staged: bool = False) -> int:
    return main(["check", *(["--staged"] if staged else []), "--only", only])


def test_init_records_the_nested_revisions_by_their_path_and_check_passes(
    adopted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = (adopted / "migrations" / "migrail.sum").read_text().splitlines()
    assert [line.split()[0] for line in recorded] == [*revision_files(adopted), "total"]
    assert [name.split("/")[0] for name in revision_files(adopted)] == ["2024", "2025"]
    assert main(["check"]) == 0
    err = capsys.readouterr().err
    assert "[✓] single-head, immutable, schema-sync, lint: the history is sound" in err
    assert (  # the old revision's lint error is the baseline: listed once, not failed
        "note: lint/constraint-missing-not-valid: "
        f"migrations/versions/{revision_files(adopted)[NAME]}:24: "
    ) in err
    assert "(released)" in err


@pytest.mark.parametrize("staged", [False, True])
def test_a_second_head_in_a_subfolder_is_caught(
    adopted: Path, capsys: pytest.CaptureFixture[str], staged: bool
) -> None:
    fork = write_revision(
        adopted,
        "f0f0f0f0f0f0",
        "fork",
        _id(adopted, CREATE),
        'op.add_column("accounts", sa.Column("note", sa.Text()))',
        file_name="2025/2025_09_10_f0f0f0f0f0f0_fork.py",
    )
    git(adopted, "add", "-A")
    assert _check("single-head", staged=staged) == 1
    err = capsys.readouterr().err
    assert "single-head/multiple-heads: the history has 2 heads: " in err
    assert fork.stem in err


@pytest.mark.parametrize("staged", [False, True])
def test_an_edit_of_a_released_nested_revision_is_refused(
    adopted: Path, capsys: pytest.CaptureFixture[str], staged: bool
) -> None:
    key = revision_files(adopted)[CREATE]
    revision = versions(adopted) / key
    revision.write_text(revision.read_text().replace("def upgrade", "# tweaked\ndef upgrade"))
    git(adopted, "add", "-A")
    assert _check("immutable", staged=staged) == 1
    assert (
        f"immutable/changed: {key} was changed after it was recorded in migrail.sum"
        in capsys.readouterr().err
    )


def test_a_lint_error_in_a_new_nested_revision_fails_and_a_released_one_is_a_note(
    adopted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = write_revision(
        adopted,
        "a0a0a0a0a0a0",
        "check_name",
        _id(adopted, NAME),
        'op.execute("ALTER TABLE accounts ADD CONSTRAINT name_short CHECK (length(name) < 99)")',
        'op.execute("ALTER TABLE accounts DROP CONSTRAINT name_short")',
        file_name="2025/2025_09_10_a0a0a0a0a0a0_check_name.py",
    )
    git(adopted, "add", "-A")
    for staged in (False, True):
        assert _check("lint", staged=staged) == 1
        err = capsys.readouterr().err
        released = f"migrations/versions/{revision_files(adopted)[NAME]}"
        assert (
            f"error: lint/constraint-missing-not-valid: migrations/versions/2025/{new.name}:"
        ) in err
        assert f"error: lint/constraint-missing-not-valid: {released}" not in err
        # On disk every revision is linted, the released one as a note; staged, only what changed.
        note = f"note: lint/constraint-missing-not-valid: {released}:24: "
        assert (note in err) is not staged


def test_generate_writes_into_the_templates_folder_and_migrate_staging_proves_it(
    adopted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = adopted / "app_models.py"
    models.write_text(
        models.read_text().replace(
            'Column("name", Text)', 'Column("name", Text), Column("email", Text)'
        )
    )
    sys.modules.pop("app_models", None)  # a new process, in real life
    before = set(revision_files(adopted))
    assert main(["generate", "add_email"]) == 0, capsys.readouterr().err
    [new] = set(revision_files(adopted)) - before
    folder, _, name = new.partition("/")
    assert folder.isdigit() and name.startswith(f"{folder}_") and name.endswith("_add_email.py")
    stem = name.removesuffix(".py")
    assert (adopted / "migrations" / "sql" / f"{stem}.sql").is_file()
    assert (adopted / "migrations" / "schema" / f"{stem}.sql").is_file()
    recorded = (adopted / "migrations" / "migrail.sum").read_text()
    assert f"\n{new} sha256:" in recorded
    capsys.readouterr()
    assert main(["check"]) == 0, capsys.readouterr().err
    assert main(["migrate-staging"]) == 0, capsys.readouterr().err
    # The released revision's validating CHECK scans accounts under ACCESS EXCLUSIVE: measured,
    # said as the baseline, and not failed (it ran long ago wherever it ran).
    err = capsys.readouterr().err
    assert "baseline: 2025_03_04_" in err
    assert "scan-under-exclusive of accounts" in err


def test_a_history_grouped_by_release_by_hand_is_recorded_and_named_as_written(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flat ``file_template``, and older revisions moved into a folder per release (Alembic
    reads them with ``recursive_version_locations``): the sum records them by path, and their
    names still follow the template."""
    date_named_history(project)
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text() + "recursive_version_locations = true\n")
    folder = versions(project)
    for release, name in zip(("v1.0", "v1.1"), sorted(DATED_NAMES.values())[1:], strict=True):
        (folder / release).mkdir()
        (folder / f"{name}.py").rename(folder / release / f"{name}.py")
    assert main(["sum", "--update"]) == 0
    recorded = (project / "migrations" / "migrail.sum").read_text()
    assert [line.split()[0] for line in recorded.splitlines()] == [
        f"{DATED_NAMES['1975ea83b712']}.py",  # at the top level: its bare name, as before
        f"v1.0/{DATED_NAMES['a1b2c3d4e5f6']}.py",
        f"v1.1/{DATED_NAMES['0f1e2d3c4b5a']}.py",
        "total",
    ]
    capsys.readouterr()
    main(["lint", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    assert [f for f in findings if f["rule"] == "file-name-mismatch"] == []
    assert main(["check", "--only", "single-head,immutable"]) == 0, capsys.readouterr().err


def test_an_empty_revision_file_in_a_subfolder_is_named_where_it_is(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = versions(project) / "2025" / "0002_empty.py"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    assert main(["lint"]) == 2  # what the user must fix before anything runs
    assert capsys.readouterr().err.startswith(
        f"error: {empty} declares no revision id (an empty or unfinished revision file)\n"
    )


def test_a_nested_draft_is_dropped_with_its_sql_and_sum_line(
    adopted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(revision_files(adopted))
    assert main(["generate", "--empty", "note"]) == 0, capsys.readouterr().err
    [new] = set(revision_files(adopted)) - before
    sum_path = adopted / "migrations" / "migrail.sum"
    assert f"\n{new} sha256:" in sum_path.read_text()
    stem = new.rpartition("/")[2].removesuffix(".py")
    assert main(["drop", stem]) == 0, capsys.readouterr().err
    assert set(revision_files(adopted)) == before
    assert not (adopted / "migrations" / "sql" / f"{stem}.sql").exists()
    assert new not in sum_path.read_text()
    assert _check("immutable") == 0, capsys.readouterr().err

"""A project adopted from plain Alembic names its revision files by its own ``file_template``
(dates, hex ids): lint, generate, migrate-staging and rebase work with those names."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.git import commit_all, git
from testing.projects import DATED_NAMES, add_priority_column, date_named_history

NAMED = re.compile(r"\d{4}_\d{2}_\d{2}_\d{4}-[0-9a-f]{12}_(?P<slug>\w+)")


def _name_findings(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    main(["lint", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    return [finding for finding in findings if finding["rule"] == "file-name-mismatch"]


def test_names_made_by_the_template_are_not_findings(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    date_named_history(project, naming="")
    assert _name_findings(capsys) == []


def test_a_name_that_does_not_hold_its_id_is_still_found(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    date_named_history(project, naming="")
    versions = project / "migrations" / "versions"
    copied = versions / "2024_04_05_0607-0f1e2d3c4b5a_tag_tasks_again.py"
    text = (versions / f"{DATED_NAMES['0f1e2d3c4b5a']}.py").read_text()
    copied.write_text(
        text.replace("'0f1e2d3c4b5a'", "'ffff00001111'").replace(
            "down_revision = 'a1b2c3d4e5f6'", "down_revision = '0f1e2d3c4b5a'"
        )
    )
    findings = _name_findings(capsys)
    assert [(f["revision"], f["severity"], f["message"]) for f in findings] == [
        (
            "ffff00001111",
            "error",
            f"the file name {copied.name} does not hold its revision id ffff00001111 as "
            "file_template '%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d-%(rev)s_%(slug)s'"
            " names it",
        )
    ]


def test_a_history_named_by_hand_is_said_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    date_named_history(project, naming="")
    versions = project / "migrations" / "versions"
    for number, name in enumerate(sorted(DATED_NAMES.values())[1:], start=2):
        (versions / f"{name}.py").rename(versions / f"{number:04d}_{name.split('_', 4)[-1]}.py")
    findings = _name_findings(capsys)
    assert [(f["revision"], f["severity"], f["message"]) for f in findings] == [
        (
            None,
            "warning",
            "2 of 3 revision files are not named by file_template "
            "'%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d-%(rev)s_%(slug)s': "
            "file names are not checked",
        )
    ]


def test_a_template_without_rev_is_said_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    date_named_history(project, naming="")
    (project / "alembic.ini").write_text("[alembic]\nfile_template = %%(year)d-%%(slug)s\n")
    (project / "migrations" / "versions" / "0001_create_tasks.py").write_text(
        (project / "migrations" / "versions" / f"{DATED_NAMES['1975ea83b712']}.py").read_text()
    )
    (project / "migrations" / "versions" / f"{DATED_NAMES['1975ea83b712']}.py").unlink()
    findings = _name_findings(capsys)
    assert [(f["revision"], f["severity"], f["message"]) for f in findings] == [
        (
            None,
            "warning",
            "file_template in alembic.ini has no %(rev)s: revision file names are not checked "
            "against their ids",
        )
    ]


@pytest.mark.parametrize(("naming", "new_id"), [("alembic", "[0-9a-f]{12}"), ("", "0004")])
def test_generate_names_the_new_revision_by_the_template(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str], naming: str, new_id: str
) -> None:
    date_named_history(project, naming)
    add_priority_column(project)
    assert main(["generate", "add_priority"]) == 0, capsys.readouterr().err
    versions = project / "migrations" / "versions"
    new = sorted({path.stem for path in versions.glob("*.py")} - set(DATED_NAMES.values()))
    assert len(new) == 1
    assert re.fullmatch(rf"\d{{4}}_\d{{2}}_\d{{2}}_\d{{4}}-{new_id}_add_priority", new[0]), new
    assert (project / "migrations" / "sql" / f"{new[0]}.sql").is_file()
    assert (project / "migrations" / "schema" / f"{new[0]}.sql").is_file()
    assert _name_findings(capsys) == []


@pytest.mark.parametrize("start", ["2024_02_03_0405-a1b2c3d4e5f6_note_tasks", "a1b2c3d4e5f6"])
def test_migrate_staging_from_a_dated_file_name_or_its_id(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str], start: str
) -> None:
    date_named_history(project)
    code = main(["migrate-staging", "--from", start])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        "built at 2024_02_03_0405-a1b2c3d4e5f6_note_tasks (as deployed); proving only what is "
        "newer\n"
    ) in err


def _add_column(project: Path, name: str) -> None:
    sys.modules.pop("tasks_models", None)  # each generate runs in a process of its own in real life
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text().replace(
            '    Column("owner", Text),\n',
            f'    Column("owner", Text),\n    Column("{name}", Text),\n',
        )
    )


def test_rebase_moves_a_dated_revision_after_main(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    date_named_history(project)
    assert main(["sum", "--update"]) == 0
    commit_all(project, "released")
    git(project, "checkout", "-q", "-b", "feature")
    _add_column(project, "note")
    assert main(["generate", "add_note"]) == 0
    commit_all(project, "feature: note")
    git(project, "checkout", "-q", "main")
    _add_column(project, "tag")
    assert main(["generate", "add_tag"]) == 0
    commit_all(project, "main: tag")
    git(project, "checkout", "-q", "feature")
    git(project, "merge", "main", check=False)
    models = project / "tasks_models.py"
    models.write_text(
        "\n".join(
            line
            for line in models.read_text().splitlines()
            if not line.startswith(("<<<", "===", ">>>"))
        )
        + "\n"
    )
    sys.modules.pop("tasks_models", None)
    versions = project / "migrations" / "versions"
    before = {path.name for path in versions.glob("*.py")}
    capsys.readouterr()

    assert main(["rebase", "--onto", "main"]) == 0, capsys.readouterr().err
    assert {path.name for path in versions.glob("*.py")} == before  # hex ids do not collide
    note = next(path for path in versions.glob("*_add_note.py"))
    tag = next(path for path in versions.glob("*_add_tag.py"))
    tag_id = NAMED.fullmatch(tag.stem)
    assert tag_id is not None
    assert f"Revises: {tag.stem.split('-')[1][:12]}\n" in note.read_text()
    assert (project / "migrations" / "sql" / f"{note.stem}.sql").is_file()
    assert main(["check"]) == 0, capsys.readouterr().err
    assert main(["migrate-staging"]) == 0, capsys.readouterr().err


def test_an_orphan_dated_sql_file_with_the_new_id_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRAIL_EPHEMERAL", "server")  # refused before any database is needed
    date_named_history(project, naming="")  # sequence ids: the next one is 0004
    orphan = project / "migrations" / "sql" / "2024_05_06_0708-0004_add_priority.sql"
    orphan.write_text("-- the SQL of a revision deleted since\n")
    assert main(["generate", "--empty", "add priority"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        f"error: migrations/sql/{orphan.name} belongs to no revision, and the new revision would "
        "be numbered 0004 too\n"
    )

"""The template cache of migrate-staging: a warm run proves only what changed, never from a stale
template, and the cache stays bounded and can be cleared."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from migrail.staging import templates
from testing.postgres import database_names, template_names
from testing.projects import add_priority_with_revision, write_revision


def _run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, list[str]]:
    """Exit code, messages, and the revisions in the summary table (those proven this run)."""
    code = main(["migrate-staging", *arguments])
    err = capsys.readouterr().err
    proven = [line.split("│")[1].strip() for line in err.splitlines() if line.startswith("│ 0")]
    return code, err, proven


def _add_revision_3(project: Path, body: str = 'op.execute("SELECT 3")') -> None:
    write_revision(project, "0003", "third", "0002", body)


@pytest.fixture
def ours(project: Path, pg_server: Server) -> set[str]:
    """The templates on the server before the test: other tests' projects'."""
    return template_names(pg_server.admin_url)


def test_a_warm_run_proves_only_what_is_newer_than_its_template(
    project: Path, pg_server: Server, ours: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_with_revision(project)
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert proven == ["0001_create_tasks", "0002_add_priority"]
    assert (
        "template cache: kept the database at 0001_create_tasks, 0002_add_priority for next runs"
        in err
    )
    assert len(template_names(pg_server.admin_url) - ours) == 2

    _add_revision_3(project)
    before = database_names(pg_server.admin_url)
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert (
        "template cache: starting from a copy of the database at 0002_add_priority, proven by an "
        "earlier run and unchanged since\n"
    ) in err
    assert proven == ["0003_third"]
    assert "data: sample rows: 1 table(s) as the cached template's run left them\n" in err
    assert err.endswith("[✓] round trip: down to 0002_add_priority and up to head again\n")
    assert database_names(pg_server.admin_url) == before  # the run's own database is gone
    assert len(template_names(pg_server.admin_url) - ours) == 3

    code, err, proven = _run(capsys, "--report", "report.md")  # the models are still checked
    assert code == 0 and proven == []
    assert (
        "Started from the template cache's copy of the database at `0003_third` (proven by an "
        "earlier run, unchanged since); newer revisions proven.\n"
    ) in (project / "report.md").read_text()
    assert "copy of the database at 0003_third" in err
    assert "[✓] models match the schema at head\n" in err


def test_a_changed_revision_invalidates_its_template_and_every_later_one(
    project: Path, pg_server: Server, ours: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_with_revision(project)
    _add_revision_3(project)
    assert _run(capsys)[0] == 0
    kept = template_names(pg_server.admin_url) - ours
    assert len(kept) == 2  # at 0002 and 0003

    _add_revision_3(project, 'op.execute("SELECT 33")')  # the newest revision, edited
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "copy of the database at 0002_add_priority" in err
    assert proven == ["0003_third"]
    assert len(template_names(pg_server.admin_url) - ours - kept) == 1  # the new 0003
    assert len(kept - template_names(pg_server.admin_url)) == 1  # the stale 0003 is gone

    first = project / "migrations" / "versions" / "0001_create_tasks.py"
    first.write_text(first.read_text() + "\n# reviewed\n")  # same ids, other content
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "template cache: starting from" not in err
    assert proven == ["0001_create_tasks", "0002_add_priority", "0003_third"]
    assert not kept & template_names(pg_server.admin_url)  # none of the old ones is left


def test_a_failed_run_keeps_no_template_and_leaves_no_copy(
    project: Path, pg_server: Server, ours: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_with_revision(project)
    write_revision(project, "0003", "broken", "0002", "pass", downgrade='op.execute("nonsense")')
    before = database_names(pg_server.admin_url)
    code, err, _ = _run(capsys)
    assert code == 1
    assert "downgrade of 0003_broken failed" in err
    assert "template cache: kept" not in err
    assert template_names(pg_server.admin_url) == ours
    assert database_names(pg_server.admin_url) == before


def test_the_cache_is_skipped_on_request_and_where_it_cannot_serve(
    project: Path, pg_server: Server, ours: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_with_revision(project)
    assert _run(capsys)[0] == 0
    code, err, proven = _run(capsys, "--no-cache")
    assert code == 0 and "template cache: off (--no-cache)\n" in err
    assert proven == ["0001_create_tasks", "0002_add_priority"]
    code, err, proven = _run(capsys, "--no-data")  # another setting: another template
    assert code == 0 and proven == ["0001_create_tasks", "0002_add_priority"]
    code, err, proven = _run(capsys, "--from", "0001")
    assert "template cache: not used when building at a given revision\n" in err
    assert proven == ["0002_add_priority"]


def test_the_cache_is_bounded_and_cleared_by_cleanup(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    private_tmp: Path,  # cleanup stops warm clusters: only this test's own
) -> None:
    monkeypatch.setattr(templates, "MAX_TEMPLATES", 3)
    add_priority_with_revision(project)
    previous = "0002"
    for number in range(3, 6):
        write_revision(project, f"000{number}", f"step_{number}", previous, "pass")
        previous = f"000{number}"
        assert _run(capsys)[0] == 0
    assert len(template_names(pg_server.admin_url)) == 3  # of all projects: the newest three
    code, err, proven = _run(capsys)
    assert code == 0 and proven == []
    assert "copy of the database at 0005_step_5" in err
    assert main(["cleanup"]) == 0
    assert "dropped 3 cached template(s)" in capsys.readouterr().err
    assert template_names(pg_server.admin_url) == set()


def test_a_file_beside_the_revisions_is_part_of_every_template(
    project: Path, pg_server: Server, ours: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A revision that runs SQL from a file: changing the file changes what the revision does."""
    raw = project / "migrations" / "raw"
    raw.mkdir()
    (raw / "0002.sql").write_text("SELECT 1")
    write_revision(
        project,
        "0002",
        "from_file",
        "0001",
        'op.execute((Path(__file__).parents[1] / "raw" / "0002.sql").read_text())',
        extra="from pathlib import Path",
    )
    _add_revision_3(project)
    assert _run(capsys)[0] == 0
    (raw / "0002.sql").write_text("SELECT 1/0")
    code, err, _ = _run(capsys)
    assert code == 1
    assert "template cache: starting from" not in err
    assert "upgrade of 0002_from_file failed: division by zero" in err


@pytest.mark.parametrize("beside", ["0002_backfill.sql", "sql/0002.sql", "data/0002.sql"])
def test_a_file_among_the_revisions_is_part_of_every_template(
    project: Path,
    pg_server: Server,
    ours: set[str],
    capsys: pytest.CaptureFixture[str],
    beside: str,
) -> None:
    """SQL a revision reads from beside it in versions/ (or a folder there) is hashed as any
    other file beside the revisions; only the revision files themselves are hashed on their own."""
    sql = project / "migrations" / "versions" / beside
    sql.parent.mkdir(exist_ok=True)
    sql.write_text("SELECT 1")
    write_revision(
        project,
        "0002",
        "backfill",
        "0001",
        f'op.execute((Path(__file__).parent / "{beside}").read_text())',
        extra="from pathlib import Path",
    )
    _add_revision_3(project)
    assert _run(capsys)[0] == 0
    sql.write_text("SELECT 1/0")
    code, err, _ = _run(capsys)
    assert code == 1, err
    assert "template cache: starting from" not in err
    assert "upgrade of 0002_backfill failed: division by zero" in err


def test_an_editors_leftovers_and_compiled_python_change_no_template(
    project: Path, pg_server: Server, ours: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Swap files, backups and bytecode come and go while one edits; what revisions read does
    not change with them, so the templates are still served."""
    add_priority_with_revision(project)
    _add_revision_3(project)
    assert _run(capsys)[0] == 0
    migrations = project / "migrations"
    for leftover in (
        ".env.py.swp",
        "env.py~",
        "__pycache__/env.cpython-311.pyc",
        "versions/.0003_third.py.swp",
        "versions/0003_third.py~",
        "versions/__pycache__/0003_third.cpython-311.pyc",
    ):
        (migrations / leftover).parent.mkdir(exist_ok=True)
        (migrations / leftover).write_bytes(b"\0 changing while one edits")
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "template cache: starting from a copy of the database at 0003_third" in err
    assert proven == []


def test_a_template_dropped_by_another_run_meanwhile_means_a_full_run(
    project: Path,
    pg_server: Server,
    ours: set[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_priority_with_revision(project)
    assert _run(capsys)[0] == 0
    found = templates.TemplateCache.longest

    def found_then_dropped_by_another_run(cache: templates.TemplateCache) -> int:
        position = found(cache)
        templates.clear_templates(pg_server.admin_url)
        return position

    monkeypatch.setattr(templates.TemplateCache, "longest", found_then_dropped_by_another_run)
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "template cache: its template was just dropped by another run\n" in err
    assert proven == ["0001_create_tasks", "0002_add_priority"]
    assert "template cache: kept the database at 0001_create_tasks, 0002_add_priority" in err

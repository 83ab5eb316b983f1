"""The template cache of migrate-staging: a warm run proves only what changed, never from a stale
template, and the cache stays bounded and can be cleared."""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from migrail.staging import templates
from testing.postgres import left_behind, run_sql, template_names, templates_of
from testing.projects import (
    add_priority_with_revision,
    branches_alembic_reorders,
    write_revision,
)


def _run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, list[str]]:
    """Exit code, messages, and the revisions in the summary table (those proven this run)."""
    code = main(["migrate-staging", *arguments])
    err = capsys.readouterr().err
    proven = [line.split("│")[1].strip() for line in err.splitlines() if line.startswith("│ 0")]
    return code, err, proven


def _add_revision_3(project: Path, body: str = 'op.execute("SELECT 3")') -> None:
    write_revision(project, "0003", "third", "0002", body)


def _ours(pg_server: Server, project: Path) -> set[str]:
    """This test's project's templates: the server may hold other projects' (other runs')."""
    return templates_of(pg_server.admin_url, project)


def test_a_warm_run_proves_only_what_is_newer_than_its_template(
    project: Path,
    pg_server: Server,
    throwaway_names: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_priority_with_revision(project)
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert proven == ["0001_create_tasks", "0002_add_priority"]
    assert (
        "template cache: kept the database at 0001_create_tasks, 0002_add_priority for next runs"
        in err
    )
    assert len(_ours(pg_server, project)) == 2
    from testing.postgres import query

    names = ", ".join(f"'{name}'" for name in _ours(pg_server, project))
    allowed = f"SELECT datallowconn FROM pg_database WHERE datname IN ({names})"
    assert query(pg_server.admin_url, allowed) == [(False,), (False,)]  # no one changes them

    _add_revision_3(project)
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert (
        "template cache: starting from a copy of the database at 0002_add_priority, proven by an "
        "earlier run and unchanged since\n"
    ) in err
    assert proven == ["0003_third"]
    # The answer is the whole history's, as a run from base gives it: the template recorded
    # what was proven of the revisions it holds (``staging.earlier``).
    assert "data: sample rows: 3 in tasks\n" in err
    assert "1 revision takes a brief ACCESS EXCLUSIVE for metadata-only changes" in err
    assert err.endswith("[✓] round trip: down to base and up to head again\n")
    assert (
        left_behind(pg_server.admin_url, throwaway_names) == set()
    )  # the run's own database is gone
    assert len(_ours(pg_server, project)) == 3

    code, err, proven = _run(capsys, "--report", "report.md")  # the models are still checked
    assert code == 0 and proven == []
    assert (
        "Started from the template cache's copy of the database at `0003_third` (proven by an "
        "earlier run, unchanged since); newer revisions proven.\n"
    ) in (project / "report.md").read_text()
    assert "copy of the database at 0003_third" in err
    assert "[✓] models match the schema at head\n" in err


def test_a_changed_revision_invalidates_its_template_and_every_later_one(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    add_priority_with_revision(project)
    _add_revision_3(project)
    assert _run(capsys)[0] == 0
    kept = _ours(pg_server, project)
    assert len(kept) == 2  # at 0002 and 0003

    _add_revision_3(project, 'op.execute("SELECT 33")')  # the newest revision, edited
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "copy of the database at 0002_add_priority" in err
    assert proven == ["0003_third"]
    assert len(_ours(pg_server, project) - kept) == 1  # the new 0003
    assert len(kept - _ours(pg_server, project)) == 1  # the stale 0003 is gone

    first = project / "migrations" / "versions" / "0001_create_tasks.py"
    first.write_text(first.read_text() + "\n# reviewed\n")  # same ids, other content
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "template cache: starting from" not in err
    assert proven == ["0001_create_tasks", "0002_add_priority", "0003_third"]
    assert not kept & _ours(pg_server, project)  # none of the old ones is left


def test_a_failed_run_keeps_no_template_and_leaves_no_copy(
    project: Path,
    pg_server: Server,
    throwaway_names: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_priority_with_revision(project)
    write_revision(project, "0003", "broken", "0002", "pass", downgrade='op.execute("nonsense")')
    code, err, _ = _run(capsys)
    assert code == 1
    assert "downgrade of 0003_broken failed" in err
    assert "template cache: kept" not in err
    assert _ours(pg_server, project) == set()
    assert left_behind(pg_server.admin_url, throwaway_names) == set()


def test_the_cache_is_skipped_on_request_and_where_it_cannot_serve(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
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


def test_a_run_that_read_the_whole_environment_says_why_it_keeps_no_template(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "from_everything",
        "0001",
        'settings = dict(__import__("os").environ)\n    op.execute("SELECT 2")',
    )
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert (
        "template cache: nothing kept: the project's code read the whole environment "
        "(os.environ.copy(), dict(os.environ)...)"
    ) in err
    assert "kept the database at" not in err
    code, err, proven = _run(capsys)
    assert proven == ["0001_create_tasks", "0002_from_everything"], "no template to start from"


@pytest.fixture
def another_projects_template(pg_server: Server) -> Iterator[str]:
    """A template of another project on the same server, used just before the test's own: the
    first to go were the bound or a cleanup the server's rather than the project's."""
    name = f"{templates.TEMPLATE_PREFIX}{secrets.token_hex(4)}_{secrets.token_hex(12)}"
    run_sql(pg_server.admin_url, f'CREATE DATABASE "{name}"')
    about = json.dumps({"revision": "0001", "used": time.time()})
    run_sql(pg_server.admin_url, f"COMMENT ON DATABASE \"{name}\" IS '{about}'")
    try:
        yield name
    finally:
        run_sql(pg_server.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_cache_is_bounded_and_cleared_by_cleanup_per_project(
    project: Path,
    pg_server: Server,
    another_projects_template: str,
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
    assert len(_ours(pg_server, project)) == 3  # this project's newest three
    code, err, proven = _run(capsys)
    assert code == 0 and proven == []
    assert "copy of the database at 0005_step_5" in err
    assert main(["cleanup"]) == 0
    assert "dropped 3 cached template(s) of this project" in capsys.readouterr().err
    assert _ours(pg_server, project) == set()
    assert another_projects_template in template_names(pg_server.admin_url)


def test_cleanup_outside_a_project_leaves_the_template_cache_alone(
    tmp_path: Path,
    pg_server: Server,
    another_projects_template: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    private_tmp: Path,  # cleanup stops warm clusters: only this test's own
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["cleanup"]) == 0
    assert (
        "left the template cache alone: no migrail project here (--all-projects drops every "
        "project's templates)\n"
    ) in capsys.readouterr().err
    assert another_projects_template in template_names(pg_server.admin_url)


def test_a_file_beside_the_revisions_is_part_of_every_template(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
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
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
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
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_priority_with_revision(project)
    assert _run(capsys)[0] == 0
    found = templates.TemplateCache.longest

    def found_then_dropped_by_another_run(cache: templates.TemplateCache) -> int:
        position = found(cache)
        templates.clear_templates(pg_server.admin_url, cache.project)
        return position

    monkeypatch.setattr(templates.TemplateCache, "longest", found_then_dropped_by_another_run)
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "template cache: its template was just dropped by another run\n" in err
    assert proven == ["0001_create_tasks", "0002_add_priority"]
    assert "template cache: kept the database at 0001_create_tasks, 0002_add_priority" in err


def _role_revision(project: Path, role: str) -> None:
    """0002 makes a role and grants it a table; its downgrade undoes both."""
    write_revision(
        project,
        "0002",
        "reader_role",
        "0001",
        f'op.execute("CREATE ROLE {role} NOLOGIN")\n'
        f'    op.execute("GRANT SELECT ON tasks TO {role}")',
        f'op.execute("REVOKE SELECT ON tasks FROM {role}")\n    op.execute("DROP ROLE {role}")',
    )


def _roles(pg_server: Server, role: str) -> list[tuple[object, ...]]:
    from testing.postgres import query

    return query(pg_server.admin_url, f"SELECT rolname FROM pg_roles WHERE rolname = '{role}'")


def test_a_role_a_revision_makes_does_not_outlive_the_run(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Roles are the server's: left behind, the next run's CREATE ROLE would fail. Every run
    passes, cached or not, and none leaves the role; no template keeps the revision that makes
    it (a template would keep the role), the one before it is kept."""
    role = f"reader_{secrets.token_hex(4)}"
    _role_revision(project, role)
    for arguments in ((), (), ("--no-cache",), ()):
        code, err, _ = _run(capsys, *arguments)
        assert code == 0, err
        assert _roles(pg_server, role) == [], arguments
    assert len(_ours(pg_server, project)) == 1


def test_a_role_a_revision_makes_and_grants_nothing_does_not_outlive_the_run(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing depends on it, but the revision's own CREATE ROLE named it: it is the run's."""
    role = f"lonely_{secrets.token_hex(4)}"
    write_revision(
        project,
        "0002",
        "lonely_role",
        "0001",
        f'op.execute("CREATE ROLE {role} NOLOGIN")',
        f'op.execute("DROP ROLE {role}")',
    )
    for arguments in ((), ("--no-cache",), ()):
        code, err, _ = _run(capsys, *arguments)
        assert code == 0, err
        assert _roles(pg_server, role) == [], arguments


def test_a_role_that_already_exists_on_the_server_is_explained(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    role = f"reader_{secrets.token_hex(4)}"
    _role_revision(project, role)
    run_sql(pg_server.admin_url, f"CREATE ROLE {role} NOLOGIN")
    try:
        code, err, _ = _run(capsys, "--no-cache")
    finally:
        run_sql(pg_server.admin_url, f"DROP ROLE {role}")
    assert code == 1
    assert f'error: upgrade of 0002_reader_role failed: role "{role}" already exists' in err
    assert "  roles belong to the server, not the database: another database on it made" in err


def test_a_warm_run_imports_no_revision_older_than_its_template(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the template holds is neither run nor imported: a revision that now fails to import
    (it looks for a file outside the project) goes unnoticed from a template, and fails the
    full run, before anything runs. (Were it an environment variable, the template would not be
    served: the variables a run reads are part of what a template stands on.)"""
    add_priority_with_revision(
        project,
        extra="import pathlib\n\n"
        'if pathlib.Path(__file__).resolve().parents[3].joinpath("break-0002").exists():\n'
        '    raise RuntimeError("imported")',
    )
    assert _run(capsys)[0] == 0
    _add_revision_3(project)
    (project.parent / "break-0002").touch()
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "starting from a copy of the database at 0002_add_priority" in err
    assert proven == ["0003_third"]

    code, err, proven = _run(capsys, "--no-cache")
    assert code == 2 and proven == [], err  # a FatalError: stopped before anything ran
    assert "0002_add_priority.py:" in err, err
    assert "a revision file failed to load: RuntimeError: imported" in err, err


def _branches(project: Path) -> None:
    """0002 and 0003 branch from 0001, each adding a column the models have; 0004 merges them."""
    write_revision(
        project,
        "0002",
        "alpha",
        "0001",
        'op.add_column("tasks", sa.Column("alpha", sa.Text()))',
        'op.drop_column("tasks", "alpha")',
    )
    write_revision(
        project,
        "0003",
        "beta",
        "0001",
        'op.add_column("tasks", sa.Column("beta", sa.Text()))',
        'op.drop_column("tasks", "beta")',
    )
    write_revision(project, "0004", "merge", ("0002", "0003"), "pass")
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text().replace(
            '    Column("owner", Text),\n',
            '    Column("owner", Text),\n    Column("alpha", Text),\n    Column("beta", Text),\n',
        )
    )


def _held(pg_server: Server, project: Path, revision: str) -> list[object]:
    """The revisions in alembic_version of the template kept at ``revision`` (read on a copy:
    no one connects to a template)."""
    from testing.postgres import query

    names = ", ".join(f"'{name}'" for name in _ours(pg_server, project))
    described = query(
        pg_server.admin_url,
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
        f" WHERE datname IN ({names})",
    )
    (template,) = [
        name for name, about in described if json.loads(str(about))["revision"] == revision
    ]
    copy = f"held_{secrets.token_hex(4)}"
    run_sql(pg_server.admin_url, f'CREATE DATABASE {copy} TEMPLATE "{template}"')
    try:
        rows = query(
            pg_server.admin_url.set(database=copy), "SELECT version_num FROM alembic_version"
        )
    finally:
        run_sql(pg_server.admin_url, f"DROP DATABASE {copy}")
    return sorted(row[0] for row in rows)


def test_a_history_with_branches_is_served_from_its_templates(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its templates hold prefixes of its revisions in order: the one before the merge holds
    both branches (two heads in alembic_version), so that editing the merge, as one does while
    writing it, proves the merge alone; each answer is the full run's."""
    _branches(project)
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert proven[0] == "0001_create_tasks" and sorted(proven[1:3]) == ["0002_alpha", "0003_beta"]
    assert f"template cache: kept the database at {proven[2]}, 0004_merge for next runs" in err
    before_merge = proven[2]  # the second branch's revision, holding the first's too
    assert _held(pg_server, project, before_merge[:4]) == ["0002", "0003"]

    write_revision(project, "0004", "merge", ("0002", "0003"), 'op.execute("SELECT 4")')
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert f"template cache: starting from a copy of the database at {before_merge}," in err
    assert proven == ["0004_merge"]
    assert "[✓] models match the schema at head\n" in err  # both branches' columns are there
    assert err.endswith("[✓] round trip: down to base and up to head again\n")
    full_code, full_err, _ = _run(capsys, "--no-cache")
    assert full_code == 0
    assert full_err.splitlines()[-3:] == err.splitlines()[-3:]

    write_revision(project, "0005", "fifth", "0004", 'op.execute("SELECT 5")')
    code, err, proven = _run(capsys)
    assert code == 0, err
    assert "starting from a copy of the database at 0004_merge," in err
    assert proven == ["0005_fifth"]
    code, err, proven = _run(capsys)
    assert code == 0 and proven == [] and "copy of the database at 0005_fifth," in err


@pytest.mark.parametrize("floor", ["base", "irreversible"])
def test_a_run_from_a_template_upgrades_again_in_the_order_a_run_from_base_does(
    floor: str, project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """The round trip's upgrade again applies the revisions newer than the template in the
    order the full run applies them (Alembic's from base, or from where an irreversible
    revision stops its round trip), not in the order Alembic's upgrade from the template's
    heads picks: where the two differ and the history depends on it, the answers would
    differ."""
    add_priority_with_revision(project)
    if floor == "irreversible":
        second = next((project / "migrations" / "versions").glob("0002_*.py"))
        second.write_text(second.read_text() + '\nirreversible = "kept"\n')
    _add_revision_3(project)
    assert _run(capsys)[0] == 0  # templates at 0002 and 0003
    branches_alembic_reorders(project)
    sys.modules.pop("tasks_models", None)  # the models changed: imported again
    code, err, proven = _run(capsys)
    assert "starting from a copy of the database at 0003_third," in err
    assert proven == ["0005_audit", "0006_audit_note", "0004_fourth", "0007_merge"]
    assert code == 0, err
    down_to = "base" if floor == "base" else "0002_add_priority (kept)"
    assert err.endswith(f"[✓] round trip: down to {down_to} and up to head again\n")
    full_code, full_err, _ = _run(capsys, "--no-cache")
    assert full_code == 0, full_err
    assert full_err.splitlines()[-3:] == err.splitlines()[-3:]


def test_a_rebuild_after_a_broken_downgrade_seeds_the_template_s_tables_as_they_were_made(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a downgrade the step round trip finds broken, it goes on in a new database built
    at what it had applied; from a template, that is the template's revisions and the rest. Each
    table gets its seed right after the revision that creates it, as in a run from base, not
    once the template's revisions are all applied (a later one dropped a column it names)."""
    from testing.git import commit_all, git

    write_revision(
        project,
        "0002",
        "labels",
        "0001",
        'op.create_table("labels", sa.Column("id", sa.Integer(), primary_key=True), '
        'sa.Column("legacy", sa.Text()))',
        'op.drop_table("labels")',
    )
    write_revision(project, "0003", "third", "0001", 'op.execute("SELECT 3")')
    write_revision(
        project,
        "0004",
        "merge",
        ("0002", "0003"),
        'op.drop_column("labels", "legacy")',
        'op.add_column("labels", sa.Column("legacy", sa.Text()))',
    )
    seeds = project / "migrations" / "seeds"
    seeds.mkdir()
    (seeds / "labels.sql").write_text("INSERT INTO labels (id, legacy) VALUES (1, 'old');\n")
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text()
        + "\nfrom sqlalchemy import Integer\n\n"
        + 'labels = Table("labels", metadata, Column("id", Integer, primary_key=True))\n'
    )
    commit_all(project)
    code, err, _ = _run(capsys)
    assert code == 0 and "kept the database at" in err, err
    git(project, "checkout", "-q", "-b", "feature")
    write_revision(
        project,
        "0005",
        "left_behind",
        "0004",
        'op.add_column("labels", sa.Column("due", sa.Date()))',
        "pass",  # forgets the column
    )
    write_revision(project, "0006", "sixth", "0005", 'op.execute("SELECT 6")')
    commit_all(project, "feature")
    code, err, proven = _run(capsys)
    assert "starting from a copy of the database at 0004_merge," in err
    assert proven == ["0005_left_behind", "0006_sixth"]
    assert code == 1 and "0005_left_behind: its downgrade does not restore the schema" in err
    assert "seed migrations/seeds/labels.sql failed" not in err, err
    full_code, full_err, _ = _run(capsys, "--no-cache")
    assert full_code == 1
    assert [line for line in err.splitlines() if line.startswith("data: ")] == [
        line for line in full_err.splitlines() if line.startswith("data: ")
    ]

"""An INVALID index, left by a failed concurrent build, fails the run that finds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.postgres import query, version
from testing.projects import INVALID_INDEX_DOWNGRADE, INVALID_INDEX_UPGRADE, write_revision


def test_staging_fails_a_revision_that_leaves_an_invalid_index(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project, "0002", "unique_names", "0001", INVALID_INDEX_UPGRADE, INVALID_INDEX_DOWNGRADE
    )
    assert main(["migrate-staging"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: upgrade of 0002_unique_names failed: it leaves INVALID index "
        "public.ix_tasks_name (pg_index.indisvalid is false)"
    ) in err
    assert "the database was at revision 0001_create_tasks when it stopped" in err


def test_an_index_on_only_a_partitioned_table_waits_for_its_partitions_and_fails_nothing(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """PostgreSQL's way to index a partitioned table without a long lock: ``CREATE INDEX ...
    ON ONLY`` the parent (INVALID until every partition's index is attached), then each
    partition's index built concurrently and attached, often in later revisions. The parent's
    index is waiting, not a failed build."""
    write_revision(
        project,
        "0002",
        "events",
        "0001",
        'op.execute("CREATE TABLE events (id int, at date) PARTITION BY RANGE (at)")\n'
        '    op.execute("CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM '
        "('2026-01-01') TO ('2027-01-01')\")\n"
        '    op.execute("CREATE INDEX events_at ON ONLY events (at)")',
        'op.execute("DROP TABLE events")',
    )
    write_revision(
        project,
        "0003",
        "events_2026_at",
        "0002",
        "with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE INDEX CONCURRENTLY events_2026_at ON events_2026 (at)")\n'
        '    op.execute("ALTER INDEX events_at ATTACH PARTITION events_2026_at")',
        'op.execute("DROP INDEX events_2026_at")',
    )
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate", "--to", "0002"]) == 0, capsys.readouterr().err
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_at'::regclass"
    assert query(database_url, valid) == [(False,)]
    assert main(["migrate"]) == 0, capsys.readouterr().err
    assert version(database_url) == ["0003"]
    assert query(database_url, valid) == [(True,)]

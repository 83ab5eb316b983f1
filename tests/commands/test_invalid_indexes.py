"""An INVALID index, left by a failed concurrent build, fails the run that finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
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

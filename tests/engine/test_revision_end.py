"""What is read at each revision's end (INVALID indexes, the guard's release, the locks) works
whether the session can keep it as a function of its own or not: without the TEMP privilege
the statement is sent as text, and a revision that leaves an INVALID index still fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.main import main
from testing.postgres import login_role, query, version
from testing.projects import INVALID_INDEX_DOWNGRADE, INVALID_INDEX_UPGRADE, write_revision


def test_without_the_temp_privilege_an_invalid_index_still_fails_the_revision(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_revision(
        project, "0002", "unique_names", "0001", INVALID_INDEX_UPGRADE, INVALID_INDEX_DOWNGRADE
    )
    database = database_url.database
    grants = (
        f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC",
        f"GRANT CREATE ON DATABASE {database} TO {{role}}",
        "GRANT USAGE, CREATE ON SCHEMA public TO {role}",
    )
    with login_role(database_url, *grants) as (_role, as_role):
        assert query(as_role, f"SELECT has_database_privilege('{database}', 'TEMP')") == [(False,)]
        monkeypatch.setenv("DATABASE_URL", as_role.render_as_string(hide_password=False))
        assert main(["migrate"]) == 1
        err = capsys.readouterr().err
        assert (
            "upgrade of 0002_unique_names failed: it leaves INVALID index public.ix_tasks_name "
            "(pg_index.indisvalid is false)"
        ) in err
        assert version(database_url) == ["0001"], "its version is not recorded"

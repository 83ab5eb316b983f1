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


def test_an_invalid_index_found_as_a_revision_commits_rolls_that_revision_back(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """0002 runs in its one transaction, whose end is read in the same message as its COMMIT:
    an INVALID index there (a unique build that failed, by hand, before the run) fails the
    read, and the COMMIT after it never runs."""
    import psycopg

    from migrail.core.urls import libpq_conninfo

    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as admin:
        admin.execute("CREATE TABLE twice (x int)")
        admin.execute("INSERT INTO twice VALUES (1), (1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            admin.execute("CREATE UNIQUE INDEX CONCURRENTLY twice_x ON twice (x)")
    write_revision(
        project, "0002", "add_flag", "0001", 'op.execute("ALTER TABLE tasks ADD flag int")'
    )
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert (
        "upgrade of 0002_add_flag failed: it leaves INVALID index public.twice_x "
        "(pg_index.indisvalid is false)"
    ) in err
    assert version(database_url) == ["0001"], "its version is not recorded"
    assert query(database_url, "SELECT count(*) FROM pg_attribute WHERE attname = 'flag'") == [
        (0,)
    ], "nothing of it committed"

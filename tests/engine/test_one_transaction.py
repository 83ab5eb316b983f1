"""One transaction per revision, held: a revision that ends its own transaction part-way is
stopped, rolled back and named, in migrate, apply and staging; lint finds it in review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.engine.one_transaction import transaction_end
from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.postgres import columns, query, version
from testing.projects import write_revision

ADVICE = (
    "A revision runs in one transaction; what cannot run in one goes in "
    "`with op.get_context().autocommit_block():`"
)
STOPPED = "stopped there and rolled back, none of it applied"
ADD_A = 'op.execute("ALTER TABLE tasks ADD COLUMN a int")'
ADD_B = 'op.execute("ALTER TABLE tasks ADD COLUMN b int")'

# A revision that adds column a, ends its transaction (line 13), then adds column b.
STOPPED_BEFORE_DAMAGE = {
    "connection commit": (
        "op.get_bind().commit()",
        f"it commits its transaction part-way (commit() at migrations/versions/0002_split.py:13): "
        f"{STOPPED}. {ADVICE}",
    ),
    "a name for the connection": (
        "conn = op.get_bind(); conn.commit()",
        f"it commits its transaction part-way (commit() at migrations/versions/0002_split.py:13): "
        f"{STOPPED}. {ADVICE}",
    ),
    "rollback, then going on": (
        "op.get_bind().rollback()",
        "it ended its transaction part-way (rollback() at migrations/versions/0002_split.py:13) "
        f"and went on in a second one: {STOPPED}. {ADVICE}",
    ),
    "COMMIT as SQL": (
        'op.execute("COMMIT")',
        "it runs COMMIT at migrations/versions/0002_split.py:13, which would end its transaction "
        f"part-way: {STOPPED}. {ADVICE}",
    ),
    "END as SQL, lower case, with a comment": (
        'op.execute("/* done */ end")',
        "it runs END at migrations/versions/0002_split.py:13, which would end its transaction "
        f"part-way: {STOPPED}. {ADVICE}",
    ),
}


def _split_revision(project: Path, middle: str) -> None:
    write_revision(project, "0002", "split", "0001", f"{ADD_A}\n    {middle}\n    {ADD_B}")


@pytest.mark.parametrize(
    ("middle", "expected"), STOPPED_BEFORE_DAMAGE.values(), ids=STOPPED_BEFORE_DAMAGE.keys()
)
def test_a_revision_ending_its_transaction_is_stopped_before_anything_is_committed(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    middle: str,
    expected: str,
) -> None:
    _split_revision(project, middle)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert f"error: upgrade of 0002_split failed: {expected}\n" in err
    assert err.endswith("  the database is at 0001_create_tasks\n")
    assert version(database_url) == ["0001"]
    assert not {"a", "b"} & set(columns(database_url, "tasks"))
    rows = query(database_url, "SELECT revision, success FROM migrail.history ORDER BY id")
    assert rows == [("0001", True), ("0002", False)]


def test_an_end_among_several_statements_in_one_string_is_caught_before_they_run(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_revision(
        project,
        "0002",
        "split",
        "0001",
        'op.execute("ALTER TABLE tasks ADD COLUMN a int; SELECT CASE WHEN true THEN 1 END; '
        'END; ALTER TABLE tasks ADD COLUMN b int")',
    )
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "error: upgrade of 0002_split failed: it runs END at" in err
    assert version(database_url) == ["0001"]
    assert not {"a", "b"} & set(columns(database_url, "tasks"))


def test_a_revision_allowed_to_commit_part_way_runs_and_keeps_its_version(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A revision whose file accepts ``ends-transaction`` runs as written. What it runs after its
    own commit ends with it, version included: the next revision's failure does not undo it,
    and is that revision's."""
    allowed = "op.get_bind().commit()  # migrail: allow ends-transaction -- deployed as is"
    _split_revision(project, allowed)
    write_revision(
        project, "0003", "broken", "0002", 'op.execute("ALTER TABLE tasks ADD COLUMN c nosuchtype")'
    )
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert (
        'error: upgrade of 0003_broken failed: type "nosuchtype" does not exist (SQLSTATE 42704)\n'
    ) in err
    assert version(database_url) == ["0002"]
    assert {"a", "b"} <= set(columns(database_url, "tasks"))
    rows = query(database_url, "SELECT revision, success FROM migrail.history ORDER BY id")
    assert rows == [("0001", True), ("0002", True), ("0003", False)]


# Ways past SQLAlchemy's events: the session's own guard fails the COMMIT they send.
BEHIND_SQLALCHEMY = {
    "the driver's commit": "op.get_bind().connection.dbapi_connection.commit()",
    "the pool's connection": "op.get_bind().connection.commit()",
    "a raw cursor": 'op.get_bind().connection.dbapi_connection.execute("COMMIT")',
    "a nested comment": 'op.execute("/* a /* b */ c */ COMMIT")',
    "rollback, then autocommit": (
        "c = op.get_bind(); c.rollback(); c.execution_options(isolation_level='AUTOCOMMIT')"
    ),
}


@pytest.mark.parametrize("middle", BEHIND_SQLALCHEMY.values(), ids=BEHIND_SQLALCHEMY.keys())
def test_a_commit_behind_sqlalchemys_back_rolls_the_revision_back_whole(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    middle: str,
) -> None:
    _split_revision(project, middle)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "error: upgrade of 0002_split failed: it " in err
    assert "transaction part-way" in err and "none of it applied" in err
    assert version(database_url) == ["0001"]
    assert not {"a", "b"} & set(columns(database_url, "tasks"))


def test_a_second_connection_inside_a_revision_is_refused(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its work would commit on its own, whatever became of the revision."""
    _split_revision(
        project,
        "from sqlalchemy.orm import Session\n"
        "    with Session(op.get_bind().engine) as session:\n"
        "        session.execute(sa.text('CREATE TABLE elsewhere (id int)')); session.commit()",
    )
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "error: upgrade of 0002_split failed: it opens a second connection at " in err
    assert query(database_url, "SELECT to_regclass('elsewhere')") == [(None,)]
    assert not {"a", "b"} & set(columns(database_url, "tasks"))


@pytest.mark.parametrize(
    "upgrade",
    [
        f"{ADD_A}\n    with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE INDEX CONCURRENTLY ix_a ON tasks (a)")\n'
        f"    {ADD_B}",
        'op.execute("CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC '
        'SELECT CASE WHEN true THEN 1 END; END")',
        "op.execute(\"DO $$ BEGIN RAISE NOTICE 'commit; end'; END $$\")",
        f"{ADD_A}\n    from sqlalchemy.orm import Session\n"
        "    session = Session(bind=op.get_bind())\n"
        "    session.execute(sa.text('UPDATE tasks SET a = 1'))\n    session.commit()",
        f"{ADD_A}\n    op.execute('SET CONSTRAINTS ALL IMMEDIATE')\n    {ADD_B}",
        f"{ADD_A}\n    with op.get_bind().begin_nested():\n        {ADD_B}",
    ],
    ids=[
        "autocommit block",
        "BEGIN ATOMIC body",
        "DO block",
        "ORM session on the connection",
        "constraints checked at once",
        "a savepoint",
    ],
)
def test_what_looks_like_an_end_but_is_not_runs(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    upgrade: str,
) -> None:
    write_revision(project, "0002", "fine", "0001", upgrade)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0, capsys.readouterr().err
    assert version(database_url) == ["0002"]


def test_staging_stops_a_revision_that_commits_part_way(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _split_revision(project, "op.get_bind().commit()")
    assert main(["migrate-staging", "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: upgrade of 0002_split failed: it commits its transaction part-way (commit() at "
        "migrations/versions/0002_split.py:13)"
    ) in err


def test_apply_stops_a_revision_that_commits_part_way(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It commits only when run (offline it renders as planned), as a data migration may."""
    _split_revision(project, "if not op.get_context().as_sql: op.get_bind().commit()")
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("MIGRAIL_ACTOR", "alice")
    assert main(["plan", "--env", "production", "--force"]) in (0, 1)
    assert (project / "plan.json").exists(), capsys.readouterr().err
    monkeypatch.setenv("MIGRAIL_ACTOR", "bob")
    assert main(["approve", "plan.json"]) == 0
    capsys.readouterr()
    assert main(["apply", "--plan", "plan.json"]) == 1
    err = capsys.readouterr().err
    assert "error: upgrade of 0002_split failed: it commits its transaction part-way" in err
    assert version(database_url) == ["0001"]
    assert not {"a", "b"} & set(columns(database_url, "tasks"))
    plan_id = json.loads((project / "plan.json").read_text())["plan_id"]
    rows = query(database_url, "SELECT revision, success, plan_id FROM migrail.history ORDER BY id")
    assert rows == [("0001", True, plan_id), ("0002", False, plan_id)]


@pytest.mark.parametrize(
    ("upgrade", "line", "what"),
    [
        ("op.get_bind().commit()", 13, "op.get_bind().commit()"),
        ("conn = op.get_bind()\n    conn.rollback()", 14, "conn.rollback()"),
        ('op.execute(sa.text("COMMIT"))', 13, "COMMIT in op.execute(sa.text('COMMIT'))"),
        (
            'op.get_bind().exec_driver_sql("UPDATE tasks SET a = 1; commit")',
            13,
            "COMMIT in op.get_bind().exec_driver_sql('UPDATE tasks SET a = 1; commit')",
        ),
    ],
)
def test_lint_finds_a_revision_that_ends_its_transaction(
    project: Path,
    pg_server: Server,
    capsys: pytest.CaptureFixture[str],
    upgrade: str,
    line: int,
    what: str,
) -> None:
    _split_revision(project, upgrade)
    main(["lint", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    found = [(f["line"], f["message"]) for f in findings if f["rule"] == "ends-transaction"]
    assert found == [
        (
            line,
            f"upgrade() ends its transaction part-way ({what}): a failure after it leaves the "
            "first half applied",
        )
    ]


def test_lint_leaves_autocommit_blocks_and_sessions_alone(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _split_revision(
        project,
        "with op.get_context().autocommit_block():\n"
        '        op.execute("COMMIT")\n'
        "    session = Session(bind=op.get_bind())\n    session.commit()",
    )
    main(["lint", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    assert [f for f in findings if f["rule"] == "ends-transaction"] == []


@pytest.mark.parametrize(
    ("sql", "end"),
    [
        ("COMMIT", "COMMIT"),
        ("commit;", "COMMIT"),
        ("UPDATE t SET x = 1; COMMIT; UPDATE t SET x = 2", "COMMIT"),
        ("end transaction", "END"),
        ("ABORT", "ABORT"),
        ("rollback", "ROLLBACK"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("ROLLBACK TO SAVEPOINT a", None),
        ("SELECT '; commit'", None),
        ("UPDATE t SET x = 1 -- commit", None),
        ("DO $$ BEGIN COMMIT; END $$", None),
        ("DO $body$ BEGIN PERFORM 1; END $body$", None),
        ("SELECT CASE WHEN a THEN 1 ELSE 2 END FROM t", None),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", None),
        ('CREATE TABLE "commit" (id int)', None),
        ("CREATE TABLE endpoints (id int)", None),
    ],
)
def test_statements_that_end_a_transaction_are_told_apart(sql: str, end: str | None) -> None:
    assert transaction_end(sql) == end

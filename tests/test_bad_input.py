"""Bad input gets one or two lines saying what is wrong and what to try, exit code 2, no traceback."""

from __future__ import annotations

import io
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from migrail.core.urls import libpq_conninfo
from migrail.main import main
from migrail.postgres import cluster
from migrail.postgres.catalog import schema_facts
from migrail.postgres.database import MIGRATE_LOCK_KEY, connect
from migrail.postgres.ephemeral import Server
from migrail.release.plan import Plan, write_plan
from testing.git import commit_all
from testing.postgres import database_names, query, run_sql, version
from testing.projects import write_revision

Setup = Callable[[Path, pytest.MonkeyPatch], None]
SECRET = "s3cr3t-pw"


def _env(name: str, value: str) -> Setup:
    return lambda project, monkeypatch: monkeypatch.setenv(name, value)


def _edit(path: str, old: str, new: str) -> Setup:
    def edit(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        target = project / path
        target.write_text(target.read_text().replace(old, new))

    return edit


def _write(path: str, text: str) -> Setup:
    return lambda project, monkeypatch: (project / path).write_text(text)


def _base_branch(name: str) -> Setup:
    def setup(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        commit_all(project)
        _edit("pyproject.toml", "[tool.migrail]\n", f'[tool.migrail]\nbase_branch = "{name}"\n')(
            project, monkeypatch
        )

    return setup


def _two_heads(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_revision(project, "0002", "left", "0001", "pass")
    write_revision(project, "0003", "right", "0001", "pass")


def _two_plans(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans a.json and b.json (same history, planned a day apart); b carries a's approval."""
    for name, day in (("a", 27), ("b", 28)):
        plan = Plan(
            environment="production",
            database={"name": "agent_armor"},
            from_revision=[],
            to_revision="0001",
            revisions=[],
            author="alice",
            created_at=f"2026-11-{day}T09:00:00+00:00",
        )
        write_plan(plan.seal(), project / f"{name}.json")
    monkeypatch.setenv("MIGRAIL_ACTOR", "bob")
    assert main(["approve", "a.json"]) == 0
    (project / "b.approval.json").write_text((project / "a.approval.json").read_text())
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x")


def _edited_plan(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_plans(project, monkeypatch)
    path = project / "a.json"
    path.write_text(path.read_text().replace('"to_revision": "0001"', '"to_revision": "0002"'))


def _truncated_plan(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_plans(project, monkeypatch)
    path = project / "a.json"
    path.write_text(path.read_text()[:40])


def _append(path: str, data: bytes) -> Setup:
    def append(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        with (project / path).open("ab") as file:
            file.write(data)

    return append


def _folder_instead(path: str) -> Setup:
    """A folder where the file ``path`` should be (testable as root, unlike permissions)."""

    def replace(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (project / path).unlink(missing_ok=True)
        (project / path).mkdir()

    return replace


def _dangling_link(path: str) -> Setup:
    return lambda project, monkeypatch: (project / path).symlink_to("nowhere.py")


def _plan_holding(value: str) -> Setup:
    """A plan file holding a JSON value that is not an object."""
    return lambda project, monkeypatch: (project / "a.json").write_text(value + "\n") and None


def _revision(name: str, body: bytes) -> Setup:
    return lambda project, monkeypatch: (
        (project / "migrations" / "versions" / name).write_bytes(body) and None
    )


def _cycle(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_revision(project, "0002", "left", "0003", "pass")
    write_revision(project, "0003", "right", "0002", "pass")


def _duplicate_id(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    versions = project / "migrations" / "versions"
    text = (versions / "0001_create_tasks.py").read_text()
    (versions / "0001_create_tasks_again.py").write_text(text)


def _huge_revision(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = "".join(f"    ({n}, 'task {n}'),\n" for n in range(600_000))
    write_revision(project, "0002", "seed_tasks", "0001", "pass", extra=f"ROWS = [\n{rows}]\n")


def _versions_replaced_by(what: str) -> Setup:
    def replace(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        versions = project / "migrations" / "versions"
        versions.rename(project / "migrations" / "versions.old")
        if what == "a file":
            versions.write_text("")
        else:
            versions.symlink_to("nowhere")

    return replace


def _folder(path: str) -> Setup:
    return lambda project, monkeypatch: (project / path).mkdir()


def _file_for_folder(path: str) -> Setup:
    def replace(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        shutil.rmtree(project / path)
        (project / path).write_text("")

    return replace


def _remove(path: str) -> Setup:
    return lambda project, monkeypatch: shutil.rmtree(project / path)


def _deep_approval(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_plans(project, monkeypatch)
    (project / "a.approval.json").write_text("[" * 100_000)


CASES: list[tuple[str, list[str], Setup, str]] = [
    (
        "password in the query string",
        ["status"],
        _env("DATABASE_URL", f"postgresql://app@127.0.0.1:1/agent_armor?password={SECRET}"),
        "error: cannot connect to postgresql://app@127.0.0.1:1/agent_armor?password=***: "
        "Connection refused\n"
        "hint: is the server running and reachable? try: pg_isready -h 127.0.0.1 -p 1\n",
    ),
    (
        "unreachable host",
        ["status"],
        _env("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/agent_armor"),
        "error: cannot connect to postgresql://app:***@127.0.0.1:1/agent_armor: Connection refused\n"
        "hint: is the server running and reachable? try: pg_isready -h 127.0.0.1 -p 1\n",
    ),
    (
        "unknown host name",
        ["migrate"],
        _env("DATABASE_URL", f"postgresql://app:{SECRET}@db.invalid:5432/agent_armor"),
        "error: cannot connect to postgresql://app:***@db.invalid:5432/agent_armor: failed to "
        "resolve host 'db.invalid': [Errno -2] Name or service not known\n"
        "hint: is the server running and reachable? try: pg_isready -h db.invalid -p 5432\n",
    ),
    (
        "malformed URL",
        ["status"],
        _env("DATABASE_URL", f"app:{SECRET}@localhost/agent_armor"),
        "error: DATABASE_URL is not a valid database URL (its value is not shown: it may hold "
        "a password)\n"
        "hint: expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n",
    ),
    (
        "URL of another database engine",
        ["migrate"],
        _env("DATABASE_URL", f"mysql://app:{SECRET}@localhost/agent_armor"),
        "error: DATABASE_URL is not a PostgreSQL URL: mysql://app:***@localhost/agent_armor\n"
        "hint: migrail works with PostgreSQL only: postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n",
    ),
    (
        "missing environment variable",
        ["migrate"],
        lambda project, monkeypatch: None,
        "error: DATABASE_URL is not set (the URL of environment 'development')\n"
        "hint: export DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DATABASE or put it in .env\n",
    ),
    (
        "unknown environment",
        ["migrate", "--env", "prod"],
        lambda project, monkeypatch: None,
        "error: unknown environment 'prod'\n"
        "hint: environments in [tool.migrail.environments]: development, production, staging\n",
    ),
    (
        "metadata module that does not import",
        ["generate", "add_priority"],
        _edit("pyproject.toml", "tasks_models:metadata", "tasks_modles:metadata"),
        "error: cannot import the models module 'tasks_modles' (No module named 'tasks_modles')\n"
        "hint: check [tool.migrail] metadata in pyproject.toml, and that the package is installed\n",
    ),
    (
        "metadata attribute that is not MetaData",
        ["migrate-staging"],
        _edit("pyproject.toml", "tasks_models:metadata", "tasks_models:tasks_table"),
        "error: tasks_models:tasks_table is not a SQLAlchemy MetaData (found NoneType)\n"
        "hint: point [tool.migrail] metadata at your models, e.g. 'app.models:Base.metadata'\n",
    ),
    (
        "revision file with a syntax error",
        ["migrate-staging"],
        _write("migrations/versions/0002_broken.py", "revision = '0002'\ndef upgrade(:\n"),
        "{project}/migrations/versions/0002_broken.py:2: syntax error in a revision file: invalid syntax\n",
    ),
    (
        "revision file that raises when it is loaded",
        ["migrate-staging"],
        _write(
            "migrations/versions/0002_broken.py", "revision = '0002'\ndown_revision = undefined\n"
        ),
        "{project}/migrations/versions/0002_broken.py:2: a revision file failed to load: "
        "NameError: name 'undefined' is not defined\n",
    ),
    (
        "metadata that is not a string",
        ["status"],
        _edit("pyproject.toml", 'metadata = "tasks_models:metadata"', "metadata = 5"),
        "error: [tool.migrail] metadata must be a string, not 5\n",
    ),
    (
        "environments that are not a table",
        ["status"],
        _write("pyproject.toml", '[tool.migrail]\nenvironments = "prod"\n'),
        "error: [tool.migrail.environments] must be a table of environments\n",
    ),
    (
        "revision pointing at a parent that does not exist",
        ["migrate-staging"],
        lambda project, monkeypatch: (
            write_revision(project, "0002", "orphan", "0042", "pass") and None
        ),
        "error: the migration history is broken: Revision 0042 referenced from 0042 -> 0002 (head), "
        "orphan is not present\n"
        "hint: fix the down_revision of the revision that names a missing parent\n",
    ),
    (
        "two heads",
        ["migrate-staging"],
        _two_heads,
        "error: the migration history has 2 heads: 0002_left, 0003_right\n"
        "hint: merge them: alembic merge, or rebase one branch's revision onto the other\n"
        "  the branches from 0001_create_tasks:\n"
        "    0002_left\n"
        "    0003_right\n",
    ),
    (
        "unknown key in [tool.migrail]",
        ["status"],
        _edit("pyproject.toml", 'migrations = "migrations"', 'migration = "migrations"'),
        "error: unknown key(s) in [tool.migrail]: migration\n"
        "hint: known keys: base_branch, default_environment, environments, flask_app, four_eyes, "
        "lint, lock_retries, lock_timeout, locks, metadata, migrations, revision_naming, "
        "statement_timeout\n",
    ),
    (
        "unknown revision naming",
        ["generate", "x"],
        _edit(
            "pyproject.toml",
            'migrations = "migrations"',
            'migrations = "migrations"\nrevision_naming = "uuid"',
        ),
        "error: [tool.migrail] revision_naming must be 'sequence', 'timestamp' or 'alembic', not 'uuid'\n",
    ),
    (
        "invalid TOML",
        ["status"],
        _edit("pyproject.toml", "[tool.migrail]", "[tool.migrail"),
        "error: {project}/pyproject.toml is not valid TOML: Expected ']' at the end of a table "
        "declaration (at line 5, column 14)\n",
    ),
    (
        "no migrations folder",
        ["migrate-staging"],
        _edit("pyproject.toml", 'migrations = "migrations"', 'migrations = "db/migrations"'),
        "error: {project}/db/migrations has no env.py: it is not an Alembic environment\n"
        "hint: check [tool.migrail] migrations in pyproject.toml\n",
    ),
    (
        "a revision name without words",
        ["generate", "--empty", "!!!"],
        lambda project, monkeypatch: None,
        "error: '!!!' is not a usable revision name\nhint: name the change in a few words, e.g. add_user_roles\n",
    ),
    (
        "two revision files with the same id",
        ["migrate-staging"],
        _duplicate_id,
        "error: the migration history is broken: Revision 0001 is present more than once\n"
        "hint: two revision files declare that id: give one a new id (and its child)\n",
    ),
    (
        "an empty revision file",
        ["lint"],
        _revision("0002_empty.py", b""),
        "error: {project}/migrations/versions/0002_empty.py declares no revision id "
        "(an empty or unfinished revision file)\n"
        "hint: give it revision = '<id>' and down_revision, or delete it\n",
    ),
    (
        "a revision file without its id",
        ["migrate-staging"],
        _revision("0002_noid.py", b'down_revision = "0001"\ndef upgrade():\n    pass\n'),
        "error: {project}/migrations/versions/0002_noid.py declares no revision id "
        "(an empty or unfinished revision file)\n"
        "hint: give it revision = '<id>' and down_revision, or delete it\n",
    ),
    (
        "a cycle",
        ["migrate-staging"],
        _cycle,
        "error: the migration history has a cycle: 0002, 0003 descend from each other\n"
        "hint: fix their down_revision (or depends_on): each names what it comes after\n",
    ),
    (
        "a revision file that is not UTF-8",
        ["check"],
        _revision(
            "0002_latin.py",
            b'revision = "0002"\ndown_revision = "0001"\nNAME = "caf\xe9"\n',
        ),
        "{project}/migrations/versions/0002_latin.py:3: syntax error in a revision file: "
        "(unicode error) 'utf-8' codec can't decode byte 0xe9 in position 3: unexpected "
        "end of data\nhint: save the file as UTF-8\n",
    ),
    (
        "a huge revision file",
        ["migrate-staging"],
        _huge_revision,
        "error: {project}/migrations/versions/0002_seed_tasks.py: a revision file of 17.2 MB "
        "(the limit is 10 MB)\n"
        "hint: load bulk data from a file or a script run by the revision, not from the "
        "revision's own source\n",
    ),
    (
        "a plan file that does not exist",
        ["apply", "--plan", "missing.json"],
        lambda project, monkeypatch: None,
        "error: missing.json does not exist\nhint: make one: migrail plan --env NAME\n",
    ),
    (
        "a truncated plan file",
        ["apply", "--plan", "a.json"],
        _truncated_plan,
        "error: a.json is not a migrail plan (JSONDecodeError: Unterminated string starting at: "
        "line 3 column 18 (char 34))\n",
    ),
    (
        "an edited plan file",
        ["apply", "--plan", "a.json"],
        _edited_plan,
        "error: a.json was changed after it was planned (its content no longer matches its id)\n"
        "hint: plan again: migrail plan --env NAME\n",
    ),
    (
        "the approval of another plan",
        ["apply", "--plan", "b.json"],
        _two_plans,
        "error: apply is refused: the approval is for another plan\n"
        "hint: a reviewer approves this one: migrail approve b.json\n",
    ),
    (
        "migrate on a protected environment",
        ["migrate", "--env", "production"],
        _env("PRODUCTION_DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x"),
        "error: migrate is refused: production is protected, and changes only through an "
        "approved plan\nhint: migrail plan --env production; a reviewer runs migrail approve "
        "plan.json; then migrail apply --plan plan.json\n",
    ),
    (
        "push on a protected environment",
        ["push", "--env", "production", "--yes"],
        _env("PRODUCTION_DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x"),
        "error: push is refused: environment production is protected (protected = true in "
        "[tool.migrail.environments.production] in pyproject.toml)\n"
        "hint: write the change as a revision (migrail generate NAME), then release it: "
        "migrail plan --env production, approve and apply\n",
    ),
    (
        "a file where the revisions folder should be",
        ["migrate-staging"],
        _versions_replaced_by("a file"),
        "error: migrations/versions is not a folder: it should hold the revision files\n"
        "hint: move it aside and restore the folder of revision files (git checkout)\n",
    ),
    (
        "a dangling link where the revisions folder should be",
        ["check"],
        _versions_replaced_by("a dangling link"),
        "error: migrations/versions is not a folder: it should hold the revision files\n"
        "hint: move it aside and restore the folder of revision files (git checkout)\n",
    ),
    (
        "a file where the revisions folder should be, recorded in the sum",
        ["sum", "--update"],
        _versions_replaced_by("a file"),
        "error: migrations/versions is not a folder: it should hold the revision files\n"
        "hint: move it aside and restore the folder of revision files (git checkout)\n",
    ),
    (
        "an unknown revision to prove from",
        ["migrate-staging", "--from", "9999"],
        lambda project, monkeypatch: None,
        "error: --from 9999: no such revision in {project}/migrations/versions\n"
        "hint: name a revision by its id or file name, e.g. one of: 0001_create_tasks\n",
    ),
    # generate: an SQL file left by a deleted revision
    (
        "generate over an orphan SQL file",
        ["generate", "--empty", "add_priority"],
        _write("migrations/sql/0002_add_priority.sql", "-- a revision deleted since\n"),
        "error: migrations/sql/0002_add_priority.sql belongs to no revision, and the new "
        "revision would be numbered 0002 too\n"
        "hint: remove it if its revision was deleted on purpose (migrail lint --fix-sql removes "
        "such files), or restore that revision; then generate again\n",
    ),
    # generate: what it writes, and what it writes from
    (
        "a folder named like the next revision file",
        ["generate", "--empty", "add_priority"],
        _folder("migrations/versions/0002_add_priority.py"),
        "error: cannot write {project}/migrations/versions/0002_add_priority.py: a folder of that "
        "name is in the way\nhint: move or rename that folder; nothing was written\n",
    ),
    (
        "a file where the SQL folder should be",
        ["generate", "--empty", "add_priority"],
        _file_for_folder("migrations/sql"),
        "error: cannot write {project}/migrations/sql/0002_add_priority.sql: {project}/migrations/sql "
        "is a file, not a folder\nhint: move that file away; nothing was written\n",
    ),
    (
        "a migrail.sum that is not UTF-8",
        ["generate", "--empty", "add_priority"],
        lambda project, monkeypatch: (
            (project / "migrations" / "migrail.sum").write_bytes(b"caf\xe9 sha256:0\n") and None
        ),
        "error: {project}/migrations/migrail.sum is not UTF-8 text\n"
        "hint: restore it (git checkout it), or record the history anew: migrail sum --update\n",
    ),
    (
        "no revision template",
        ["generate", "--empty", "add_priority"],
        lambda project, monkeypatch: (project / "migrations" / "script.py.mako").unlink(),
        "error: {project}/migrations/script.py.mako does not exist: Alembic writes each revision "
        "from that template\nhint: restore it (git checkout it), or copy the one alembic init "
        "writes\n",
    ),
    (
        "a revision template with a syntax error",
        ["generate", "--empty", "add_priority"],
        _edit("migrations/script.py.mako", "${upgrades", "% if\n${upgrades"),
        "error: Alembic could not write the revision: Fragment 'if' is not a partial control "
        "statement in file '{project}/migrations/script.py.mako' at line: 25 char: 1\n"
        "hint: check {project}/migrations/script.py.mako, the template revisions are written from\n",
    ),
    # Secrets: passwords of any shape, values that are not URLs
    (
        "a password with an unencoded @, #, space and %",
        ["status"],
        _env("DATABASE_URL", f"postgresql://app:p@{SECRET}#w rd%zz@127.0.0.1:1/agent_armor"),
        "error: cannot connect to postgresql://app:***@127.0.0.1:1/agent_armor: Connection refused\n"
        "hint: is the server running and reachable? try: pg_isready -h 127.0.0.1 -p 1\n",
    ),
    (
        "a password with an unencoded @, and the server's socket in the query",
        ["status"],
        _env("DATABASE_URL", f"postgresql://app:x@{SECRET}@/agent_armor?host=/nonexistent"),
        "error: cannot connect to postgresql://app:***@/agent_armor?host=%2Fnonexistent: "
        "No such file or directory\n"
        "hint: is the server running and reachable? try: pg_isready -h /nonexistent\n",
    ),
    (
        "a URL that does not parse",
        ["status"],
        _env("DATABASE_URL", f"postgresql://app:{SECRET}@db:PORT/agent_armor"),
        "error: DATABASE_URL is not a valid postgresql:// URL (its value is not shown: it may "
        "hold a password)\n"
        "hint: expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n",
    ),
    # Files that cannot be read, settings out of range, plans that are not plans
    (
        "tool in pyproject.toml that is not a table",
        ["status"],
        _write("pyproject.toml", 'tool = "migrail"\n'),
        "error: {project}/pyproject.toml: tool must be a table (the [tool.NAME] sections), "
        "not 'migrail'\n"
        "hint: remove the line tool = ...; migrail's settings go in [tool.migrail]\n",
    ),
    (
        "pyproject.toml that is not UTF-8",
        ["status"],
        _append("pyproject.toml", b"# caf\xe9\n"),
        "error: {project}/pyproject.toml:18: not UTF-8 text (byte 0xe9)\n"
        "hint: save the file as UTF-8\n",
    ),
    (
        ".env that is not UTF-8",
        ["status"],
        _append(
            ".env", f"DATABASE_URL=postgresql://app:{SECRET}@db/x\nNOTE=caf\xe9\n".encode("latin-1")
        ),
        "error: {project}/.env:2: not UTF-8 text (byte 0xe9)\nhint: save the file as UTF-8\n",
    ),
    (
        ".env.<environment> that is not UTF-8",
        ["status", "--env", "staging"],
        _append(
            ".env.staging",
            f"STAGING_DATABASE_URL=postgresql://app:{SECRET}\xe9@db/x\n".encode("latin-1"),
        ),
        "error: {project}/.env.staging:1: not UTF-8 text (byte 0xe9)\n"
        "hint: save the file as UTF-8\n",
    ),
    (
        "a lock_timeout longer than PostgreSQL allows",
        ["status"],
        _edit(
            "pyproject.toml",
            "[tool.migrail]",
            '[tool.migrail]\nlock_timeout = "99999999999999999999s"',
        ),
        "error: [tool.migrail] lock_timeout is longer than PostgreSQL allows (at most 2147483647ms, "
        "about 24 days), not '99999999999999999999s'\n"
        "hint: give it in seconds or minutes, e.g. '5s'; '0' turns it off\n",
    ),
    (
        "a statement_timeout longer than PostgreSQL allows",
        ["migrate-staging"],
        _edit("pyproject.toml", "[tool.migrail]", '[tool.migrail]\nstatement_timeout = "25d"'),
        "error: [tool.migrail] statement_timeout is longer than PostgreSQL allows (at most "
        "2147483647ms, about 24 days), not '25d'\n"
        "hint: give it in seconds or minutes, e.g. '30min'; '0' turns it off\n",
    ),
    (
        "a folder in place of migrail.sum",
        ["check"],
        _folder_instead("migrations/migrail.sum"),
        "error: cannot read {project}/migrations/migrail.sum: Is a directory\nhint: a folder is where the file should be: move the folder away\n",
    ),
    (
        "a folder in place of a revision file",
        ["check"],
        _folder_instead("migrations/versions/0001_create_tasks.py"),
        "error: cannot read {project}/migrations/versions/0001_create_tasks.py: Is a directory\nhint: a folder is where the file should be: move the folder away\n",
    ),
    (
        "a revision file that links to nothing",
        ["sum", "--update"],
        _dangling_link("migrations/versions/0002_gone.py"),
        "error: cannot read {project}/migrations/versions/0002_gone.py: No such file or directory\n"
        "hint: it is a link to nothing: remove it, or point it at the file\n",
    ),
    (
        "a folder in place of migrail.sum, to record the sum in",
        ["sum", "--update"],
        _folder_instead("migrations/migrail.sum"),
        "error: cannot write {project}/migrations/migrail.sum: Is a directory\n"
        "hint: a folder is where the file should be: move the folder away\n",
    ),
    (
        "a folder in place of migrail.sum, to record a new revision in",
        ["generate", "--empty", "add_notes"],
        _folder_instead("migrations/migrail.sum"),
        "error: cannot read {project}/migrations/migrail.sum: Is a directory\n"
        "hint: a folder is where the file should be: move the folder away\n",
    ),
    (
        "plan --out naming a folder",
        ["plan", "--env", "staging", "--out", "migrations"],
        _env("STAGING_DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x"),
        "error: --out migrations is a folder: the plan is a file\n"
        "hint: name the file, e.g. --out migrations/plan.json\n",
    ),
    (
        "a plan file holding a number",
        ["apply", "--plan", "a.json"],
        _plan_holding("5"),
        "error: a.json is not a migrail plan (it holds a number, not an object)\n"
        "hint: make one: migrail plan --env NAME\n",
    ),
    (
        "a plan file holding a string",
        ["approve", "a.json"],
        _plan_holding('"x"'),
        "error: a.json is not a migrail plan (it holds a string, not an object)\n"
        "hint: make one: migrail plan --env NAME\n",
    ),
    (
        "a plan file holding null",
        ["apply", "--plan", "a.json"],
        _plan_holding("null"),
        "error: a.json is not a migrail plan (it holds null, not an object)\n"
        "hint: make one: migrail plan --env NAME\n",
    ),
    (
        "URL options that cancel every statement",
        ["status"],
        _env(
            "DATABASE_URL",
            f"postgresql://app:{SECRET}@127.0.0.1:1/agent_armor?options=-c statement_timeout=1",
        ),
        "error: the database URL's options cancel statements: statement_timeout=1 stops any "
        "statement after 1 ms\n"
        "hint: remove statement_timeout from the URL's options, or give it a unit: 60s (a bare "
        "number is ms): migrail times each revision itself, with [tool.migrail] statement_timeout\n",
    ),
    # Plans and approvals nested deeper than JSON is read
    (
        "a plan file nested too deeply, to apply",
        ["apply", "--plan", "a.json"],
        _plan_holding("[" * 100_000),
        "error: a.json is not a migrail plan (its JSON is nested too deeply)\n"
        "hint: make one: migrail plan --env NAME\n",
    ),
    (
        "a plan file nested too deeply, to approve",
        ["approve", "a.json"],
        _plan_holding("[" * 100_000),
        "error: a.json is not a migrail plan (its JSON is nested too deeply)\n"
        "hint: make one: migrail plan --env NAME\n",
    ),
    (
        "an approval nested too deeply",
        ["apply", "--plan", "a.json"],
        _deep_approval,
        "error: apply is refused: a.approval.json is not an approval\n",
    ),
    # What is read before the history: its folder, env.py, the revision files' headers
    *(
        (
            f"a missing revisions folder while the sum records revisions, for {argv[0]}",
            argv,
            _remove("migrations/versions"),
            "error: migrations/versions does not exist, but migrations/migrail.sum records 1 "
            "revision(s)\n"
            "hint: restore the folder (git checkout migrations/versions); to start the history "
            "anew, remove migrations/migrail.sum too\n",
        )
        for argv in (["migrate-staging"], ["sum", "--update"], ["lint"], ["check"])
    ),
    (
        "a revision file with NUL bytes",
        ["migrate-staging"],
        _revision("0002_nul.py", b'"""x"""\nrevision = "0002"\ndown_revision = "0001"\x00\n'),
        "error: {project}/migrations/versions/0002_nul.py:3: a NUL byte in a revision file: it "
        "is not Python source\n"
        "hint: restore it (git checkout it); an editor that saves UTF-16 writes NUL bytes too: "
        "save it as UTF-8\n",
    ),
    (
        "a revision id that is not a string",
        ["lint"],
        _revision("0002_int.py", b'revision = 6\ndown_revision = "0001"\n'),
        "error: {project}/migrations/versions/0002_int.py:1: revision = 6: a revision id is a "
        "string\n"
        "hint: write revision ids in quotes, e.g. revision = '0002', down_revision = '0001'\n",
    ),
    (
        "a parent that is not a revision id",
        ["check"],
        _revision("0002_parent.py", b'revision = "0002"\ndown_revision = 1  # 0001\n'),
        "error: {project}/migrations/versions/0002_parent.py:2: down_revision = 1: it names "
        "revisions: a revision id (a string), a tuple of them, or None\n"
        "hint: write revision ids in quotes, e.g. revision = '0002', down_revision = '0001'\n",
    ),
    (
        "a revision id of bytes",
        ["migrate-staging"],
        _revision("0002_bytes.py", b'revision = b"0002"\ndown_revision = "0001"\n'),
        "error: {project}/migrations/versions/0002_bytes.py:1: revision = b'0002': a revision "
        "id is a string\n"
        "hint: write revision ids in quotes, e.g. revision = '0002', down_revision = '0001'\n",
    ),
    # released and unreleased revisions: drop, sum --update, base_branch
    (
        "drop of a revision that does not exist",
        ["drop", "0099"],
        _env("UNUSED", ""),
        "error: no revision '0099' in migrations/versions\n"
        "hint: name it by its id or its file name without .py (migrail status lists them)\n",
    ),
    (
        "drop outside a git repository",
        ["drop", "0001"],
        _env("UNUSED", ""),
        "error: 0001_create_tasks is released (outside a git repository with a base branch, "
        "every revision counts as released), so it may have run somewhere\n"
        "hint: undo it with a new revision instead: migrail generate NAME\n",
    ),
    (
        "sum --update over an edited released revision",
        ["sum", "--update"],
        _edit("migrations/versions/0001_create_tasks.py", "def upgrade", "# x\ndef upgrade"),
        "error: released revision(s) changed since recorded in migrail.sum: "
        "0001_create_tasks.py\n"
        "hint: restore them (git checkout), or, if the change is deliberate and already applied "
        "where they ran, record it: migrail sum --update --force\n",
    ),
    (
        "a base_branch that does not exist",
        ["check", "--only", "immutable"],
        _base_branch("trunk"),
        "error: [tool.migrail] base_branch 'trunk' is not a commit this repository knows\n"
        "hint: fetch it first (git fetch origin), or name another branch\n",
    ),
    # file names by the project's file_template
    *(
        (
            f"a file_template field Alembic does not fill ({command[0]})",
            command,
            _write("alembic.ini", "[alembic]\nfile_template = %%(branch)s_%%(rev)s\n"),
            "error: file_template has %(branch), which Alembic does not fill\n"
            "hint: use rev, slug, epoch, year, month, day, hour, minute and second\n",
        )
        for command in (["lint"], ["generate", "--empty", "x"])
    ),
    # pull and stamp: adopting a database without migrations
    (
        "pull over an existing models module",
        ["pull"],
        _env("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x"),
        "pull is refused: tasks_models.py exists, and pull does not overwrite models\n"
        "hint: move it away (or name another module with --models), then pull again\n",
    ),
    (
        "pull into a project that has a history",
        ["pull", "--models", "app/models.py"],
        _edit("pyproject.toml", 'metadata = "tasks_models:metadata"\n', ""),
        "pull is refused: migrations already has a migration history, and pull writes a first "
        "revision\n"
        "hint: a project with a history changes through migrail generate NAME; to start over, "
        "move migrations/versions and migrations/migrail.sum away\n",
    ),
    (
        "pull --models elsewhere than the configured models",
        ["pull", "--models", "app/models.py"],
        _env("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x"),
        "--models app/models.py is not the module [tool.migrail] metadata names "
        "(tasks_models:metadata)\n"
        "hint: leave out --models, or change [tool.migrail] metadata to point at it\n",
    ),
    (
        "pull --stamp on a protected environment",
        ["pull", "--env", "production", "--stamp"],
        _env("PRODUCTION_DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x"),
        "stamping is refused: environment production is protected, and changes only through an "
        "approved plan\n"
        "hint: stamp it through a release plan: migrail plan --env production --stamp, then "
        "approve and apply\n",
    ),
    (
        "stamp on a protected environment",
        ["stamp", "--env", "production"],
        _env("PRODUCTION_DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x"),
        "stamping is refused: environment production is protected, and changes only through an "
        "approved plan\n"
        "hint: stamp it through a release plan: migrail plan --env production --stamp, then "
        "approve and apply\n",
    ),
    # the project's own env.py, run under migrail
    (
        "an env.py that never runs the migrations",
        ["lint"],
        _write("migrations/env.py", "from alembic import context\n\ncontext.configure()\n"),
        "error: migrations/env.py returned without running migrations\n"
        "hint: env.py must call context.run_migrations() (inside context.begin_transaction())\n",
    ),
    (
        "an env.py that configures Alembic twice",
        ["lint"],
        _write(
            "migrations/env.py",
            "from alembic import context\n\ncontext.configure()\ncontext.configure()\n",
        ),
        "error: migrations/env.py configures Alembic more than once (several databases)\n"
        "hint: migrail migrates one database per history: keep one configure() call\n",
    ),
]


@pytest.mark.parametrize(
    ("argv", "setup", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    setup: Setup,
    expected: str,
) -> None:
    setup(project, monkeypatch)
    capsys.readouterr()
    before = _files(project)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    if not expected.startswith("error:"):
        expected = "error: " + expected
    assert err == expected.format(project=project)
    assert SECRET not in err
    written = {path: text for path, text in _files(project).items() if before.get(path) != text}
    assert not [path for path, text in written.items() if SECRET.encode() in text]


def _files(root: Path) -> dict[Path, bytes]:
    return {
        path: path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and os.access(path, os.R_OK)
    }


def test_debug_shows_the_traceback_with_the_password_masked(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/agent_armor")
    for argv in (["status", "--debug"], ["--debug", "status"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last):" in err, argv
        assert (
            "migrail.core.errors.FatalError: cannot connect to postgresql://app:***@127.0.0.1:1"
            in err
        )
        assert SECRET not in err


def test_project_and_debug_may_come_before_the_command(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``migrail --project DIR status`` as ``migrail status --project DIR``; a value given
    before the command is kept when the command does not repeat it."""
    from migrail.main import build_parser

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    parser = build_parser()
    before = parser.parse_args(["--project", str(project), "--debug", "status"])
    assert (before.project, before.debug) == (project, True)
    after = parser.parse_args(["status", "--project", str(project)])
    assert (after.project, after.debug) == (project, False)
    assert parser.parse_args(["status"]).project is None
    assert main(["--project", str(project), "sum"]) == 0


def test_a_project_folder_that_is_not_there_is_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing, afile = tmp_path / "nowhere", tmp_path / "a-file"
    afile.write_text("")
    assert main(["status", "--project", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"error: --project {missing}: no such folder\n"
        "hint: name the folder that holds the project's pyproject.toml\n"
    )
    assert main(["--project", str(afile), "status"]) == 2
    assert f"error: --project {afile}: it is a file, not a folder\n" in capsys.readouterr().err


def test_no_project_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 2
    assert capsys.readouterr().err == (
        f"error: no pyproject.toml with a [tool.migrail] table in {tmp_path} or above\n"
        "hint: add one: migrail init (it finds your Alembic environment, or makes one), or pass "
        "--project DIR to name a project elsewhere\n"
    )
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    assert main(["status"]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: {tmp_path / 'pyproject.toml'} has no [tool.migrail] table\nhint: add one: "
        "migrail init"
    )


def test_wrong_password_is_named_and_never_shown(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bindir = cluster.find_embedded_bindir()
    assert bindir is not None
    with cluster.private_cluster(bindir) as running:
        admin = f"postgresql://postgres@/postgres?host={running.socket_dir}"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("CREATE ROLE app LOGIN PASSWORD 'right-password'")
            (running.data_dir / "pg_hba.conf").write_text(
                "local all postgres trust\nlocal all all scram-sha-256\n"
            )
            connection.execute("SELECT pg_reload_conf()")
        monkeypatch.setenv(
            "DATABASE_URL", f"postgresql://app:{SECRET}@/postgres?host={running.socket_dir}"
        )
        assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: cannot connect to postgresql://app:***@/postgres?host={str(running.socket_dir).replace('/', '%2F')}: "
        'password authentication failed for user "app"\n'
        "hint: check the user and password\n"
    )


def test_a_database_ahead_of_the_code(
    project: Path,
    database_url: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sqlalchemy.engine import URL

    assert isinstance(database_url, URL)
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('0099')")
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == (
        "error: the database is at revision 0099, which this repository does not have\n"
        "hint: the database is ahead of the code: check out the branch that added it\n"
    )


def test_a_database_that_does_not_exist(
    project: Path,
    pg_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = pg_server.admin_url.set(database="no_such_database", password=SECRET)
    monkeypatch.setenv("DATABASE_URL", missing.render_as_string(hide_password=False))
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot connect to postgresql://postgres:***@")
    assert err.endswith(
        ': database "no_such_database" does not exist\n'
        "hint: create the database (createdb NAME) or fix its name\n"
    )
    assert SECRET not in err
    assert "no_such_database" not in database_names(pg_server.admin_url)  # not made by migrate


def test_a_sql_error_inside_a_revision_changes_nothing(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0
    write_revision(
        project,
        "0002",
        "broken_sql",
        "0001",
        'op.execute("ALTER TABLE tasks ADD COLUMN note text")\n'
        "    op.execute(\"UPDATE tasks SET note = 'x' WHERE\")",
    )
    capsys.readouterr()
    with connect(database_url) as connection:
        before = schema_facts(connection)
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "error: upgrade of 0002_broken_sql failed: syntax error at end of input" in err
    assert "UPDATE tasks SET note = 'x' WHERE" in err
    assert "Traceback" not in err
    with connect(database_url) as connection:
        assert schema_facts(connection) == before  # the column added before it is rolled back
    assert version(database_url) == ["0001"]


def test_an_editor_lock_file_among_the_revisions_is_ignored(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Emacs marks an unsaved buffer with a dangling link ``.#name``; Alembic skips it."""
    versions = project / "migrations" / "versions"
    (versions / ".#0001_create_tasks.py").symlink_to("user@host.1234:1700000000")
    assert main(["lint"]) == 0, capsys.readouterr().err


_CANNOT_READ = "hint: let the user running migrail read it (chmod u+r), or run as its owner\n"
UNREADABLE: list[tuple[str, str, list[str], str]] = [
    # (what, the path made unreadable, the command, the message): read as an empty folder,
    # the revisions would make "nothing to prove" and "up to date"
    *(
        (
            f"the revisions folder, for {argv[0]}",
            "migrations/versions",
            argv,
            "error: cannot read the revision files in migrations/versions: Permission denied\n"
            "hint: let this user read it: chmod u+rx migrations/versions (or run as its owner)\n",
        )
        for argv in (["check"], ["migrate-staging"], ["lint"])
    ),
    (
        "pyproject.toml",
        "pyproject.toml",
        ["status"],
        "error: cannot read {project}/pyproject.toml: Permission denied\n" + _CANNOT_READ,
    ),
    (
        "migrail.sum",
        "migrations/migrail.sum",
        ["check"],
        "error: cannot read {project}/migrations/migrail.sum: Permission denied\n" + _CANNOT_READ,
    ),
    (
        "the models module",
        "tasks_models.py",
        ["check"],
        "error: cannot read {project}/tasks_models.py: Permission denied\n" + _CANNOT_READ,
    ),
    (
        "a revision file",
        "migrations/versions/0001_create_tasks.py",
        ["sum", "--update"],
        "error: cannot read {project}/migrations/versions/0001_create_tasks.py: Permission "
        "denied\n" + _CANNOT_READ,
    ),
    # env.py, read where the history is loaded: was a failure blamed on the first revision
    *(
        (
            f"env.py, for {argv[0]}",
            "migrations/env.py",
            argv,
            "error: cannot read {project}/migrations/env.py: Permission denied\n" + _CANNOT_READ,
        )
        for argv in (["migrate-staging"], ["lint"])
    ),
]


@pytest.mark.parametrize(
    ("unreadable", "argv", "expected"), [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE]
)
def test_what_cannot_be_read_is_named(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    unreadable: str,
    argv: list[str],
    expected: str,
) -> None:
    """For real: as root (CI), the command runs as nobody, whom the permissions do stop."""
    from migrail.core.output import failure, make_console
    from testing.users import open_directory, unprivileged

    copy = open_directory() / "tasks_app"
    shutil.copytree(project, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    # What the run imports, imported while still allowed to: its own path, then an error's.
    main([*argv, "--project", str(copy)])
    failure(make_console(io.StringIO()), "warm-up", "hint")
    target = copy / unreadable
    target.chmod(0o300 if target.is_dir() else 0o200)  # may be written to, not read
    capsys.readouterr()
    try:
        with unprivileged():
            code = main([*argv, "--project", str(copy)])
    finally:
        shutil.rmtree(copy.parent)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == expected.format(project=copy)


_ALEMBIC_SHAPE = (
    "hint: give it back Alembic's shape: one column version_num varchar(32) PRIMARY KEY, "
    "holding the revision the database is at\n"
)
VERSION_TABLES = [
    (
        "a column of another name",
        "CREATE TABLE alembic_version (rev varchar(32) PRIMARY KEY);"
        " INSERT INTO alembic_version VALUES ('0001')",
        "error: alembic_version is not Alembic's version table: it has (rev character "
        "varying(32)), where Alembic keeps (version_num character varying(32))\n" + _ALEMBIC_SHAPE,
    ),
    (
        "a column of another type",
        "CREATE TABLE alembic_version (version_num integer PRIMARY KEY)",
        "error: alembic_version is not Alembic's version table: it has (version_num integer), "
        "where Alembic keeps (version_num character varying(32))\n" + _ALEMBIC_SHAPE,
    ),
    (
        "two columns",
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY, note text)",
        "error: alembic_version is not Alembic's version table: it has (version_num character "
        "varying(32), note text), where Alembic keeps (version_num character varying(32))\n"
        + _ALEMBIC_SHAPE,
    ),
    (
        "a view",
        "CREATE VIEW alembic_version AS SELECT '0001'::varchar(32) AS version_num",
        "error: alembic_version is a view, not a table: Alembic records the database's revision "
        "in it with INSERT and UPDATE\nhint: replace it by Alembic's table: one column "
        "version_num varchar(32) PRIMARY KEY, holding the revision the database is at\n",
    ),
    (
        "no primary key and a revision twice",
        "CREATE TABLE alembic_version (version_num varchar(32));"
        " INSERT INTO alembic_version VALUES ('0001'), ('0001')",
        "error: alembic_version holds revision 0001 in 2 rows, where Alembic keeps one (the table "
        "has no primary key)\nhint: keep one of them, then: ALTER TABLE alembic_version ADD "
        "PRIMARY KEY (version_num)\n",
    ),
    (
        "a row without a revision",
        "CREATE TABLE alembic_version (version_num varchar(32)); INSERT INTO alembic_version"
        " VALUES (NULL)",
        "error: alembic_version has a row without a revision (version_num is NULL)\n"
        "hint: delete it: DELETE FROM alembic_version WHERE version_num IS NULL\n",
    ),
]


@pytest.mark.parametrize(
    ("sql", "expected"), [c[1:] for c in VERSION_TABLES], ids=[c[0] for c in VERSION_TABLES]
)
def test_an_alembic_version_of_another_shape_is_named_and_left_alone(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sql: str,
    expected: str,
) -> None:
    """Alembic would read it blindly (a crash), or write a revision it cannot read back."""
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as connection:
        connection.execute(sql)  # type: ignore[arg-type]
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    before = _database(database_url)
    for argv in (["status"], ["migrate"], ["plan"]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        assert capsys.readouterr() == ("", expected), argv
        assert _database(database_url) == before, argv
    assert not (project / "plan.json").exists()


def _database(url: URL) -> tuple[object, ...]:
    """The schema, and alembic_version's columns and rows (which the schema's facts leave out)."""
    with connect(url) as connection:
        facts = schema_facts(connection)
    shape = query(
        url,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'alembic_version'::regclass AND attnum > 0 ORDER BY attnum",
    )
    return facts, shape, sorted(map(str, query(url, "SELECT * FROM alembic_version")))


def test_an_editor_lock_file_among_the_revisions_is_ignored_by_the_sum(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``check`` and ``sum --update`` read every revision file: a lock file is none."""
    versions = project / "migrations" / "versions"
    (versions / ".#0001_create_tasks.py").symlink_to("user@host.1234:1700000000")
    assert main(["check", "--only", "immutable"]) == 0, capsys.readouterr().err
    assert main(["sum", "--update"]) == 0, capsys.readouterr().err
    assert ".#" not in (project / "migrations" / "migrail.sum").read_text()


def test_a_statement_cancelled_by_the_urls_statement_timeout_is_named(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A statement_timeout long enough to pass the check, shorter than the lock_timeout (5 s)
    of a read that waits for a lock: the cancelled read is said, with the URL's options to
    blame."""
    url = database_url.update_query_dict({"options": "-c statement_timeout=1s"})
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    run_sql(database_url, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
    with psycopg.connect(libpq_conninfo(database_url)) as other:
        other.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.endswith(
        "error: a statement was cancelled: the database URL's options set statement_timeout=1s "
        "(canceling statement due to statement timeout)\n"
        "hint: remove statement_timeout from the URL's options, or make it longer: migrail times "
        "each revision itself, with [tool.migrail] statement_timeout\n"
    ), err
    assert version(database_url) == []


def test_the_urls_statement_timeout_does_not_cut_the_wait_for_another_migrate(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Waiting for another migrate is not a statement: a URL's statement_timeout of 1 s leaves a
    wait of 2 s alone, and the revisions are applied once the other run is done."""
    url = database_url.update_query_dict({"options": "-c statement_timeout=1s"})
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
        release = threading.Timer(
            2.0, other.execute, ("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))
        )
        release.start()
        try:
            assert main(["migrate"]) == 0, capsys.readouterr().err
        finally:
            release.join()
    assert "Waiting for another migrate to finish...\n" in capsys.readouterr().err
    assert version(database_url) != []


def test_a_project_that_defines_only_production_reaches_it_by_name(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The default environment (development) is not defined: only a run without --env says so."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        text[: text.index("[tool.migrail.environments.development]")]
        + '[tool.migrail.environments.production]\nurl_env = "PRODUCTION_DATABASE_URL"\n'
    )
    monkeypatch.setenv(
        "PRODUCTION_DATABASE_URL", database_url.render_as_string(hide_password=False)
    )
    assert main(["status", "--env", "production"]) == 0, capsys.readouterr().err
    assert "environment: production" in capsys.readouterr().err
    assert main(["status"]) == 2
    assert capsys.readouterr().err == (
        "error: no --env given, and the default environment 'development' is not in "
        "[tool.migrail.environments]\n"
        "hint: name one with --env (production), or set [tool.migrail] default_environment\n"
    )

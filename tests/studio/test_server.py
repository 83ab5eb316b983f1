"""The studio over plain HTTP: the token, the CSRF check, the JSON beside the pages, and
``migrail studio`` itself, whose output and pages never show the password."""

from __future__ import annotations

import html
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from migrail.studio.server import DEFAULT_PORT, bind
from testing.postgres import query, run_sql
from testing.studio import Served

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migrail.postgres.ephemeral import Server

REPO = Path(__file__).resolve().parents[2]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _fetch(
    url: str, *, cookie: str | None = None, data: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """Status, headers and body, redirects not followed."""
    from urllib.parse import urlencode

    request = urllib.request.Request(url, data=urlencode(data).encode() if data else None)
    if cookie:
        request.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_the_token_is_exchanged_for_a_cookie_and_required(writable: Served) -> None:
    status, _, body = _fetch(writable.base + "/tables")
    assert status == 403
    assert body.startswith("403: open the studio through the URL `migrail studio` printed")
    assert _fetch(writable.base + "/tables?token=guess")[0] == 403
    status, headers, _ = _fetch(
        writable.base + f"/tables/public.books?_sort=title&token={writable.token}"
    )
    assert status == 303
    assert headers["location"] == "/tables/public.books?_sort=title"  # the token leaves the URL
    assert headers["set-cookie"] == f"{writable.cookie}; HttpOnly; Path=/; SameSite=strict"
    assert _fetch(writable.base + "/static/htmx.min.js")[0] == 403  # assets too
    cookie = writable.cookie
    assert _fetch(writable.base + "/tables", cookie=cookie)[0] == 200


def test_a_post_without_the_token_in_its_form_is_refused(writable: Served, studio_url: URL) -> None:
    """A page of another site can make the browser send the cookie, not read the token."""
    cookie = writable.cookie
    form = {
        "key": '["3"]',
        "columns": '["id", "name", "born"]',
        "o0": "3",
        "o1": "Jorge",
        "o2": "1899-08-24",
        "v0": "3",
        "v1": "forged",
        "v2": "1899-08-24",
    }
    status, _, body = _fetch(writable.base + "/tables/public.authors/row", cookie=cookie, data=form)
    assert status == 403
    assert "the form carries no valid token: reload the page" in body
    assert query(studio_url, "SELECT name FROM authors WHERE id = 3") == [("Jorge",)]


def test_json_beside_the_pages_and_keyset_paging(writable: Served) -> None:
    cookie = writable.cookie
    status, _, body = _fetch(
        writable.base + "/tables/public.books?_format=json&_size=2&author_id__eq=1", cookie=cookie
    )
    assert status == 200
    first = json.loads(body)
    assert [row["title"] for row in first["rows"]] == ["Book 003", "Book 006"]
    assert first["count"] == 40 and first["exact"] is True
    assert first["next"] == ("/tables/public.books?_size=2&author_id__eq=1&_after=%5B%226%22%5D")
    _, _, body = _fetch(writable.base + first["next"] + "&_format=json", cookie=cookie)
    assert [row["title"] for row in json.loads(body)["rows"]] == ["Book 009", "Book 012"]
    status, _, body = _fetch(writable.base + "/tables/public.books?nope__eq=1", cookie=cookie)
    assert status == 400 and "no column nope in this table" in body


def test_a_table_without_a_key_pages_by_ctid_and_a_view_by_offset(writable: Served) -> None:
    cookie = writable.cookie

    def page(path: str) -> dict[str, Any]:
        status, _, body = _fetch(writable.base + path, cookie=cookie)
        assert status == 200, body
        return dict(json.loads(body))

    first = page("/tables/public.reviews?_format=json&_size=2")
    assert [row["stars"] for row in first["rows"]] == ["5", "3"]
    assert first["next"] == "/tables/public.reviews?_size=2&_after=%5B%22%280%2C2%29%22%5D"
    rest = page(first["next"] + "&_format=json")
    assert [row["stars"] for row in rest["rows"]] == ["4"] and rest["next"] is None
    view = page("/tables/public.cheap_books?_format=json&_size=15&_sort=price&_desc=1")
    assert view["next"].endswith("&_offset=15")
    more = page(view["next"] + "&_format=json")
    assert [row["price"] for row in view["rows"] + more["rows"]] == [
        f"{n * 1.5:.2f}" for n in range(19, 0, -1)
    ]


def test_the_query_box_stops_a_statement_at_its_timeout(
    writable: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("migrail.studio.query.TIMEOUT", "300ms")  # the server runs in-process
    started = time.monotonic()
    status, _, body = _fetch(
        writable.base + "/query",
        cookie=writable.cookie,
        data={"csrf": writable.token, "sql": "SELECT pg_sleep(5)"},
    )
    assert time.monotonic() - started < 4
    assert status == 200
    assert "canceling statement due to statement timeout (SQLSTATE 57014)" in body


def test_a_large_table_is_counted_by_the_planner_not_by_count(
    writable: Served, studio_url: URL
) -> None:
    run_sql(
        studio_url,
        "CREATE TABLE big AS SELECT g AS id, repeat('x', 100) AS pad"
        " FROM generate_series(1, 80000) g; ANALYZE big",
    )

    def counted(path: str) -> tuple[int, bool]:
        status, _, body = _fetch(writable.base + path, cookie=writable.cookie)
        assert status == 200, body
        found = json.loads(body)
        return found["count"], found["exact"]

    assert counted("/tables/public.big?_format=json") == (80000, False)  # pg_class.reltuples
    estimate, exact = counted("/tables/public.big?_format=json&id__lt=20001")
    assert not exact and 10000 < estimate < 40000  # the plan's rows: close, not counted
    assert counted("/tables/public.authors?_format=json") == (3, True)  # small: counted


def test_without_the_studio_extra_it_says_how_to_install_it(studio_project: Path) -> None:
    hide = "import sys; sys.modules['uvicorn'] = None; sys.modules['multipart'] = None\n"
    run = "from migrail.main import main; sys.exit(main(['studio', '--no-browser']))"
    done = subprocess.run(
        [sys.executable, "-c", hide + run],
        cwd=studio_project,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: migrail studio needs uvicorn, multipart, which are not installed",
        "hint: pip install 'migrail[studio]' (or: nox -s studio)",
    ]


def test_the_usual_port_or_a_free_one() -> None:
    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", DEFAULT_PORT))
            taken.listen()
        except OSError:
            pass  # someone else has it: the same case
        sock = bind("127.0.0.1", None)
        with sock:
            assert sock.getsockname()[1] != DEFAULT_PORT


def test_migrail_studio_prints_its_url_and_no_password(
    studio_project: Path, studio_url: URL
) -> None:
    secret = "s3cret-Pw"
    url = studio_url.set(password=secret).render_as_string(hide_password=False)
    environment = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": f"{REPO / 'src'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "migrail", "studio", "--no-browser", "--port", "0"],
        cwd=studio_project,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines = []
    try:
        deadline = time.monotonic() + 60
        while not any("studio at http" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, lines
            lines.append(process.stderr.readline())
        address = next(line for line in lines if "studio at" in line).split("studio at ")[1].strip()
        assert address.startswith("http://127.0.0.1:") and "/?token=" in address
        base, token = address.split("/?token=")
        cookie = f"migrail_studio_{base.rsplit(':', 1)[1]}={token}"
        time.sleep(0.3)  # the socket listens already: uvicorn takes it up in a moment
        pages = [
            _fetch(base + path, cookie=cookie)
            for path in ("/tables", "/tables/public.books", "/query", "/diagram", "/migrations")
        ]
        assert [status for status, _, _ in pages] == [200] * 5
        assert all(secret not in body for _, _, body in pages)
        assert "***@" in pages[0][2]  # the banner shows where, masked
    finally:
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
    output = "".join(lines) + rest
    assert secret not in output
    assert lines[0].startswith("environment: development (postgresql://postgres:***@")
    assert lines[0].rstrip().endswith("), writable")


def _query_box(served: Served, statement: str) -> str:
    """What the query box shows for ``statement``: its status and rows, or its error, as text."""
    import html
    import re

    status, _, body = _fetch(
        served.base + "/query",
        cookie=served.cookie,
        data={"csrf": served.token, "sql": statement},
    )
    assert status == 200, body
    shown = body.split('<div id="result">', 1)[1].split("</main>", 1)[0]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", shown)).strip())


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1) TO PROGRAM 'true'",  # a shell command on the database's host
        "copy authors TO STDOUT",
        "LOCK TABLE authors IN ACCESS EXCLUSIVE MODE",  # every write would queue behind it
        "  NOTIFY studio",
        "ANALYZE authors",
        "CHECKPOINT",
        "SET statement_timeout = 0",
    ],
)
def test_a_protected_query_box_refuses_what_is_not_a_query(
    protected: Served, statement: str
) -> None:
    """A read-only transaction lets these run; only a query may on a protected environment."""
    word = statement.split()[0].upper()
    assert _query_box(protected, statement).endswith(
        f"{word} refused: on a protected environment the query box runs only queries "
        "(SELECT, WITH, VALUES, TABLE, EXPLAIN, SHOW)"
    )


def test_a_protected_query_box_runs_queries(protected: Served) -> None:
    assert _query_box(protected, "SELECT name FROM authors ORDER BY id LIMIT 1").endswith(
        "SELECT 1 name Ursula"
    )
    assert _query_box(protected, "WITH a AS (SELECT 2 AS n) SELECT n FROM a").endswith(
        "SELECT 1 n 2"
    )
    assert _query_box(protected, "VALUES (3)").endswith("SELECT 1 column1 3")
    assert "SELECT 3 id name born" in _query_box(protected, "TABLE authors")
    assert "Seq Scan on authors" in _query_box(protected, "explain SELECT * FROM authors")
    assert _query_box(protected, "SHOW transaction_read_only").endswith(
        "SHOW transaction_read_only on"
    )
    many = _query_box(protected, "SELECT g FROM generate_series(1, 600) g")
    assert "SELECT · first 500 rows shown g 1 2 3" in many and " 500 " in many
    assert " 501 " not in many
    assert _query_box(protected, "SELECT nme FROM authors").endswith(
        'column "nme" does not exist (SQLSTATE 42703)'
    )


def test_a_view_pages_without_a_sort(writable: Served) -> None:
    """A view has no key to order by: its first page is the view's rows as they come."""
    status, _, body = _fetch(
        writable.base + "/tables/public.cheap_books?_format=json&_size=15", cookie=writable.cookie
    )
    assert status == 200, body
    first = json.loads(body)
    assert len(first["rows"]) == 15 and first["next"].endswith("&_offset=15")
    _, _, body = _fetch(writable.base + first["next"] + "&_format=json", cookie=writable.cookie)
    rest = json.loads(body)["rows"]
    assert sorted(float(row["price"]) for row in first["rows"] + rest) == [
        n * 1.5 for n in range(1, 20)
    ]


def test_a_percent_sign_in_a_name_is_a_name_not_a_placeholder(
    writable: Served, studio_url: URL
) -> None:
    run_sql(
        studio_url,
        'CREATE TABLE "100%d a/b" (id integer PRIMARY KEY, "50%s off" text);'
        """INSERT INTO "100%d a/b" VALUES (1, 'one'), (2, 'two');""",
    )
    table = writable.base + "/tables/public.%22100%25d%20a~2Fb%22"
    cookie = writable.cookie
    status, _, body = _fetch(table + "?_format=json&50%25s%20off__eq=two", cookie=cookie)
    assert status == 200, body
    assert json.loads(body)["rows"] == [{"id": "2", "50%s off": "two"}]
    assert _fetch(table + "/row?key=%5B%221%22%5D", cookie=cookie)[0] == 200
    edit = {"csrf": writable.token, "key": '["1"]', "columns": '["id", "50%s off"]'}
    edit |= {"o0": "1", "o1": "one", "v0": "1", "v1": "uno"}
    status, _, body = _fetch(table + "/row", cookie=cookie, data=edit)
    assert status == 303, body
    added = {"csrf": writable.token, "columns": '["id", "50%s off"]', "v0": "3", "v1": "tres"}
    assert _fetch(table + "/new", cookie=cookie, data=added)[0] == 303
    gone = {"csrf": writable.token, "key": '["2"]', "columns": '["id", "50%s off"]'}
    gone |= {"o0": "2", "o1": "two", "action": "delete"}
    assert _fetch(table + "/row", cookie=cookie, data=gone)[0] == 303
    assert query(studio_url, 'SELECT * FROM "100%d a/b" ORDER BY id') == [(1, "uno"), (3, "tres")]


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/tables/public.books?_after=5", "_after is not a list of values"),
        ("/tables/public.books?_after=%5B1%2C2%2C3%5D", "_after holds 3 values, the order 1"),
        ("/tables/public.books/row", "key is missing"),
        ("/tables/public.books/row?key=null", "key is not a list of values"),
        ("/tables/public.books/row?key=%5B%221%22%2C%222%22%5D", "key holds 2 values, the key 1"),
    ],
)
def test_a_url_edited_by_hand_is_a_400_that_says_why(
    writable: Served, path: str, said: str
) -> None:
    status, _, body = _fetch(writable.base + path, cookie=writable.cookie)
    assert status == 400
    assert f"this URL does not make sense to the studio: {said}" in body


def test_a_huge_value_is_cut_in_the_table_page_and_whole_in_its_json(
    writable: Served, studio_url: URL
) -> None:
    """A 2 MB jsonb document made the table's page 2 MB of HTML (twice that folded open)."""
    run_sql(
        studio_url,
        "CREATE TABLE documents (id integer PRIMARY KEY, doc jsonb, title text);"
        "INSERT INTO documents SELECT 1, jsonb_agg(jsonb_build_object('n', g, 'pad', "
        "repeat('x', 80))) , 'big' FROM generate_series(1, 20000) g;"
        "INSERT INTO documents VALUES (2, '{\"small\": true}', 'small')",
    )
    table = writable.base + "/tables/public.documents"
    status, _, body = _fetch(table, cookie=writable.cookie)
    assert status == 200, body
    assert len(body) < 40_000
    assert "cut at 2,000 characters: the row's page shows all of it" in body
    assert '<code class="json">{&#34;small&#34;: true}</code>' in body
    _, _, body = _fetch(table + "?_format=json", cookie=writable.cookie)
    assert len(json.loads(body)["rows"][0]["doc"]) > 2_000_000
    _, _, body = _fetch(table + "?_format=json&_sort=doc&_size=1", cookie=writable.cookie)
    assert json.loads(body)["next"].count("x") > 2_000_000 // 100  # the sort's value, whole


def test_a_row_with_a_value_over_a_megabyte_can_be_edited(
    writable: Served, studio_url: URL
) -> None:
    """The form carries every old value (the optimistic check): Starlette's default 1 MB a
    field refused to save any column of such a row ("Field exceeded maximum size")."""
    run_sql(
        studio_url,
        "CREATE TABLE notes (id integer PRIMARY KEY, title text, body text);"
        "INSERT INTO notes VALUES (1, 'old', repeat('x', 1500000))",
    )
    big = "x" * 1_500_000
    form = {"csrf": writable.token, "key": '["1"]', "columns": '["id", "title", "body"]'}
    form |= {"o0": "1", "o1": "old", "o2": big, "v0": "1", "v1": "new", "v2": big}
    status, _, body = _fetch(
        writable.base + "/tables/public.notes/row", cookie=writable.cookie, data=form
    )
    assert status == 303, body[-2000:]
    assert query(studio_url, "SELECT title, length(body) FROM notes") == [("new", 1_500_000)]


def test_a_database_that_says_it_is_protected_is_read_only_whatever_the_variable(
    pg_server: Server,
) -> None:
    """``DATABASE_URL`` pointing at production's database: ``migrate`` and ``push`` refuse it
    (the database records what it is); the studio opened it writable, as development."""
    import sqlalchemy
    from sqlalchemy.exc import DBAPIError

    from migrail.core.config import Environment
    from migrail.postgres.identity import record_identity
    from migrail.studio.database import StudioDatabase, WriteRefused

    with pg_server.database() as url:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as connection:
            record_identity(connection, Environment("production", "PRODUCTION_DATABASE_URL", True))
        database = StudioDatabase(url, environment="development", protected=False)
        try:
            assert database.check()[0] == (
                "the database says it is production, a protected environment, but was reached "
                "as development: the studio only reads it"
            )
            assert database.protected and database.environment == "production"
            with pytest.raises(WriteRefused), database.transaction(write=True):
                pass
            with (
                pytest.raises(DBAPIError, match="read-only transaction"),
                database.transaction() as connection,
            ):
                connection.exec_driver_sql("CREATE TABLE planted (id int)")
        finally:
            database.close()


def test_the_readmes_configuration_keeps_production_protected(tmp_path: Path) -> None:
    """The README's studio section says production opens read only; its configuration example,
    copied as it is, replaces the built-in environments, so it must say ``protected = true``."""
    from migrail.core.config import load_config

    readme = (REPO / "README.md").read_text()
    example = readme.split("## Configuration", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "pyproject.toml").write_text(example)
    assert load_config(tmp_path).environment("production").protected


def test_the_query_box_reads_no_more_rows_than_it_shows(
    writable: Served, protected: Served, studio_url: URL
) -> None:
    """It read every row and showed 500: ``SELECT`` of a cross join held gigabytes in the
    studio for 10 s. Writable, the rest are computed in the database (a function called on
    each row is, as psql would) and counted; protected, they are not even computed: a row
    past the 501st would divide by zero here."""
    run_sql(studio_url, "CREATE SEQUENCE counted")
    every = "SELECT nextval('counted') AS n FROM generate_series(1, 600)"
    assert _query_box(writable, every).startswith("SELECT 600 · first 500 rows shown n 1 2 3")
    assert query(studio_url, "SELECT last_value FROM counted") == [(600,)]
    first = "SELECT 1 / (1000 - g) AS x FROM generate_series(1, 2000) g"
    assert _query_box(protected, first).startswith("SELECT · first 500 rows shown x 0 0")
    # What a cursor cannot hold still runs, as typed:
    gone = "WITH gone AS (DELETE FROM reviews WHERE false RETURNING *) SELECT count(*) FROM gone"
    assert _query_box(writable, gone).endswith("SELECT 1 count 0")
    assert _query_box(writable, "SELECT 1 AS x INTO TEMP kept").endswith("SELECT 1")
    assert _query_box(writable, "SELECT nme FROM authors").endswith(
        'column "nme" does not exist (SQLSTATE 42703)'
    )


def test_a_stale_edit_of_a_row_without_a_key_is_not_called_a_delete(
    writable: Served, studio_url: URL
) -> None:
    """A table without a primary key finds its rows by ctid, which an update moves: the
    second edit from the same page found nothing there, and said the row was deleted."""
    run_sql(
        studio_url, "CREATE TABLE tags (name text, uses integer); INSERT INTO tags VALUES ('a', 1)"
    )
    [(ctid,)] = query(studio_url, "SELECT ctid::text FROM tags")
    form = {"csrf": writable.token, "key": json.dumps([ctid]), "columns": '["name", "uses"]'}
    form |= {"o0": "a", "o1": "1", "v0": "a", "v1": "2"}
    page = writable.base + "/tables/public.tags/row"
    assert _fetch(page, cookie=writable.cookie, data=form)[0] == 303
    status, _, body = _fetch(page, cookie=writable.cookie, data=form | {"v1": "3"})
    assert status == 409
    assert (
        "nothing was saved: the row was changed or deleted since you read it (a table without "
        "a primary key finds a row by its place, which every change moves)"
    ) in html.unescape(body)
    assert query(studio_url, "SELECT uses FROM tags") == [(2,)]


def test_a_protected_environment_reached_as_a_superuser_is_warned_of(pg_server: Server) -> None:
    """A superuser's functions act outside any transaction (pg_terminate_backend, COPY TO
    PROGRAM through a function): read only is then the studio's promise, not the role's."""
    from migrail.studio.database import StudioDatabase

    with pg_server.database() as url:
        superuser = query(url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert superuser == [(True,)]  # the test server's role: the case to warn of
        for protected, said in ((False, []), (True, [SUPERUSER_WARNING])):
            database = StudioDatabase(url, environment="production", protected=protected)
            try:
                assert database.check() == said
            finally:
                database.close()


SUPERUSER_WARNING = (
    "production is protected, and its URL's role is a superuser: a function can act beyond "
    "the read-only transaction (pg_terminate_backend, pg_reload_conf); give the studio a role "
    "that may only read"
)


def test_the_migrations_page_shows_the_history_when_env_py_cannot_render_offline(
    tmp_path: Path, studio_project: Path, studio_url: URL
) -> None:
    """An env.py that reads its own URL variable fails offline where that variable is unset
    (``--env production`` with only PRODUCTION_DATABASE_URL): the whole page was an error."""
    import shutil

    import sqlalchemy

    from migrail.core.config import load_config
    from migrail.studio.migrations import read_migrations

    root = tmp_path / "project"
    shutil.copytree(studio_project, root)
    env_py = root / "migrations" / "env.py"
    env_py.write_text('import os\n\nos.environ["STUDIO_REVIEW_UNSET_URL"]\n' + env_py.read_text())
    engine = sqlalchemy.create_engine(studio_url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        found = read_migrations(load_config(root), connection)
    assert [entry.revision for entry in found.history] == ["0001"]
    [pending] = found.pending
    assert pending.name == "0002_add_priority" and pending.sql is None
    assert pending.error == (
        "migrations/env.py failed before running the migrations: KeyError: "
        "'STUDIO_REVIEW_UNSET_URL' at migrations/env.py:3"
    )

"""The studio in a real Chromium against a real PostgreSQL: what a person does with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.release.ledger import actor
from testing.postgres import query, run_sql
from testing.studio import WIDE_TABLES, Served, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from sqlalchemy.engine import URL


def _open(page: Page, served: Served, path: str = "") -> None:
    """The printed URL once (its token becomes a cookie), then ``path``."""
    page.goto(served.url)
    if path:
        page.goto(served.base + path)


def test_tables_rows_and_structure(page: Page, writable: Served) -> None:
    _open(page, writable)
    assert page.url == f"{writable.base}/tables"  # the token left the address bar
    assert page.inner_text("#banner .env") == "DEVELOPMENT"
    listed = page.inner_text("#tables")
    assert "public.books" in listed and "wide.t54" in listed
    assert "migrail.history" in listed
    screenshot(page, "tables")
    page.click("text=public.books")
    assert page.inner_text("#count") == "120 rows · insert a row"
    first = page.locator("#rows tbody tr").first
    cells = first.locator("td")
    # id, author_id, title, notes, data, price after the edit link: book 1 has NULL notes
    assert cells.nth(3).inner_text() == "Book 001"
    assert cells.nth(4).inner_html() == '<span class="null">NULL</span>'
    second = page.locator("#rows tbody tr").nth(1).locator("td")
    assert second.nth(4).inner_html().startswith('<span class="empty"')  # '' is not NULL
    third = page.locator("#rows tbody tr").nth(2).locator("td")
    assert "summary" in third.nth(5).inner_text()  # jsonb folded behind its start
    third.nth(5).locator("summary").click()
    assert '"tags": [\n    "sea",' in third.nth(5).locator("pre").inner_text()
    structure = page.inner_text("#structure")
    assert "books_author_id_fkey FOREIGN KEY (author_id) REFERENCES authors(id)" in structure
    assert "CREATE INDEX books_author ON public.books USING btree (author_id)" in structure
    assert "CHECK ((price >= (0)::numeric))" in structure
    screenshot(page, "table")


def test_paging_sorting_and_filtering(page: Page, writable: Served) -> None:
    _open(page, writable, "/tables/public.books")
    titles = page.locator("#rows tbody tr td:nth-child(4)")
    assert titles.count() == 50
    page.click("#next")
    assert titles.first.inner_text() == "Book 051"
    page.click("#next")
    assert titles.count() == 20 and titles.last.inner_text() == "Book 120"
    assert page.locator("#next").count() == 0
    page.click("#first")
    assert titles.first.inner_text() == "Book 001"
    page.click("#rows thead >> text=title")
    page.click("#rows thead >> text=title")  # again: the other way round
    assert titles.first.inner_text() == "Book 120"
    page.click("#next")
    assert titles.first.inner_text() == "Book 070"  # keyset on (title, id), descending
    page.goto(writable.base + "/tables/public.books")
    page.select_option("#filter-column", "notes")
    page.select_option("#filter-operator", "null")
    page.click("#filter-add")
    assert "notes__null=" in page.url
    assert page.inner_text("#count").startswith("12 rows")
    page.select_option("#filter-column", "author_id")
    page.select_option("#filter-operator", "eq")
    page.fill("#filter-value", "2")
    page.click("#filter-add")  # both filters hold
    assert page.inner_text("#count").startswith("4 rows")
    assert titles.all_inner_texts() == ["Book 001", "Book 031", "Book 061", "Book 091"]
    screenshot(page, "filtered")


def test_edit_insert_and_delete(page: Page, writable: Served, studio_url: URL) -> None:
    _open(page, writable, "/tables/public.authors")
    page.locator("#rows tbody tr", has_text="Italo").locator("a.open").click()
    page.fill("#v1", "Italo Calvino")
    page.check("#v2n")  # born stays NULL
    page.click("#save")
    assert page.inner_text("#done") == "Row saved."
    assert query(studio_url, "SELECT name, born FROM authors WHERE id = 2") == [
        ("Italo Calvino", None)
    ]
    page.click("#insert")
    page.fill("#v1", "Jorge")  # taken: the unique constraint refuses it in its own words
    page.uncheck("#v2n")
    page.fill("#v2", "1920-01-02")
    page.click("#insert-row")
    assert page.inner_text("#refused") == (
        'Not inserted: duplicate key value violates unique constraint "authors_name_key" '
        "(SQLSTATE 23505): Key (name)=(Jorge) already exists."
    )
    assert page.input_value("#v2") == "1920-01-02"  # the form as it was sent, to correct
    page.fill("#v1", "Clarice")
    page.click("#insert-row")
    assert page.inner_text("#done") == "Row inserted."
    assert query(studio_url, "SELECT born::text FROM authors WHERE name = 'Clarice'") == [
        ("1920-01-02",)
    ]
    page.locator("#rows tbody tr", has_text="Clarice").locator("a.open").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    assert page.inner_text("#done") == "Row deleted."
    assert query(studio_url, "SELECT count(*) FROM authors WHERE name = 'Clarice'") == [(0,)]


def test_a_concurrent_change_is_reported_not_overwritten(
    page: Page, writable: Served, studio_url: URL
) -> None:
    _open(page, writable, "/tables/public.books")
    page.locator("#rows tbody tr", has_text="Book 007").locator("a.open").click()
    page.fill("#v5", "-1")
    page.click("#save")
    assert page.inner_text("#refused").startswith(
        'Not saved: new row for relation "books" violates check constraint "books_price_check"'
    )
    assert page.input_value("#v5") == "-1"  # what was typed, kept; the row's old values too
    page.fill("#v2", "Book 007, my edit")
    run_sql(studio_url, "UPDATE books SET price = 99 WHERE title = 'Book 007'")  # behind its back
    page.click("#save")
    assert page.inner_text("#conflict") == (
        "nothing was saved: the row was changed since you read it (its values now are shown); "
        "read them, then try again"
    )
    assert page.input_value("#v5") == "99.00"  # the row as it is now
    screenshot(page, "conflict")
    assert query(studio_url, "SELECT title, price FROM books WHERE id = 7")[0][0] == "Book 007"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")  # now the page holds the current values: it may
    assert page.inner_text("#done") == "Row deleted."
    run_sql(studio_url, "DELETE FROM books WHERE title = 'Book 008'")
    page.goto(writable.base + "/tables/public.books/row?key=%5B%228%22%5D")
    assert page.inner_text("#gone") == "This row is not in the table (any more)."


def test_query_box(page: Page, writable: Served, studio_url: URL) -> None:
    _open(page, writable, "/query")
    page.fill(
        "#sql",
        "SELECT a.name, count(*) AS books, NULL AS nothing, '' AS empty FROM authors a"
        " JOIN books b ON b.author_id = a.id GROUP BY a.name ORDER BY a.name",
    )
    page.click("#run")
    page.wait_for_selector("#query-rows")
    assert page.inner_text("#query-status") == "SELECT 3"
    assert page.locator("#query-rows thead th").all_inner_texts() == [
        "name",
        "books",
        "nothing",
        "empty",
    ]
    screenshot(page, "query")
    page.fill("#sql", "SELECT 1; SELECT 2")
    page.click("#run")
    page.wait_for_selector("#query-error")
    assert "cannot insert multiple commands into a prepared statement" in page.inner_text(
        "#query-error"
    )
    page.fill("#sql", "UPDATE reviews SET stars = 4 WHERE body = 'superb'")
    page.click("#run")
    page.wait_for_selector("#query-status >> text=UPDATE 1")
    assert query(studio_url, "SELECT stars FROM reviews WHERE body = 'superb'") == [(4,)]
    page.fill("#sql", "SELECT g FROM generate_series(1, 100000) g")
    page.click("#run")
    page.wait_for_selector("#query-status >> text=SELECT 100000 · first 500 rows shown")
    assert page.locator("#query-rows tbody tr").count() == 500


def test_diagram_lays_out_every_table_and_opens_one(page: Page, writable: Served) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    _open(page, writable, "/diagram")
    # Every script and style came from the studio itself: it works with no network.
    assert f"{writable.base}/static/dagre.min.js" in requested
    assert [url for url in requested if not url.startswith(writable.base + "/")] == []
    nodes = page.locator("#diagram a.node")
    assert nodes.count() >= WIDE_TABLES + 4
    assert page.locator("#diagram g.edge").count() >= WIDE_TABLES - 1 + 2
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('#diagram a.node > rect:first-child')]
            .map(r => r.getBBox()).map(b => [b.x, b.y, b.x + b.width, b.y + b.height])"""
    )
    overlapping = [
        (a, b)
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    ]
    assert overlapping == []  # readable: no table drawn over another
    screenshot(page, "diagram")
    page.click('#diagram a.node[data-table="public.books"]')
    page.wait_for_url(f"{writable.base}/tables/public.books")
    assert page.inner_text("h1").startswith("public.books")


def test_migrations_page(page: Page, writable: Served) -> None:
    _open(page, writable, "/migrations")
    assert page.inner_text("#position") == (
        "Database at 0001_create_tasks · head of the checkout 0002_add_priority"
    )
    history = page.locator("#history tbody tr").first.locator("td").all_inner_texts()
    assert history[0] == "0001_create_tasks" and history[-1] == "ok"
    assert history[2] == actor() and history[3].endswith(" ms")  # who, and how long
    pending = page.inner_text("#pending")
    assert "0002_add_priority" in pending
    assert "ALTER TABLE tasks ADD COLUMN priority INTEGER DEFAULT '0' NOT NULL;" in pending
    assert "missing-sql-file" in pending  # lint's findings, as migrail lint has them
    assert page.inner_text(".staged") == (
        "Locks measured in staging (staging.md): metadata-only: ACCESS EXCLUSIVE on tasks"
    )
    screenshot(page, "migrations")
    page.click("#measure")
    page.wait_for_selector("#measured-result", timeout=60_000)
    # The seeded tables are in no revision: drift, as migrail drift words it.
    drift = page.locator("#drift li").all_inner_texts()
    assert "- table books (6 columns)" in drift and "- index books_author" in drift
    assert page.locator("#locks tbody tr").all_inner_texts() == [
        "0002_add_priority\tmetadata-only: ACCESS EXCLUSIVE on tasks"
    ]


def test_a_protected_environment_is_read_only_on_the_server(
    page: Page, protected: Served, studio_url: URL
) -> None:
    _open(page, protected, "/tables/public.authors")
    banner = page.locator("#banner")
    assert banner.inner_text().startswith("PRODUCTION\nPROTECTED · read only")
    assert "rgb(180, 35, 24)" in banner.evaluate("e => getComputedStyle(e).backgroundImage")
    assert page.locator("#insert").count() == 0
    page.locator("#rows tbody tr").first.locator("a.open").click()
    assert page.locator("#save").count() == 0 and page.locator("#delete").count() == 0
    screenshot(page, "protected")
    # The server refuses what a hidden button would have sent, token and all.
    refused = page.request.post(
        protected.base + "/tables/public.authors/row",
        form={"csrf": protected.token, "key": '["1"]', "columns": '["id", "name", "born"]'},
    )
    assert refused.status == 403
    assert "production is protected: the studio only reads it" in refused.text()
    page.goto(protected.base + "/query")

    def run(statement: str) -> str:
        page.evaluate("document.getElementById('result').innerHTML = ''")
        page.fill("#sql", statement)
        page.click("#run")
        page.wait_for_selector("#query-error, #query-status")
        return page.inner_text("#result")

    assert run("UPDATE authors SET name = 'x'") == (
        "cannot execute UPDATE in a read-only transaction (SQLSTATE 25006)"
    )
    screenshot(page, "protected-query")
    assert run("COMMIT; UPDATE authors SET name = 'x'") == (
        "cannot insert multiple commands into a prepared statement (SQLSTATE 42601)"
    )
    assert run("WITH gone AS (DELETE FROM reviews RETURNING *) SELECT count(*) FROM gone") == (
        "cannot execute SELECT in a read-only transaction (SQLSTATE 25006)"
    )
    assert run("SELECT set_config('transaction_read_only', 'off', false)") == (
        "transaction read-write mode must be set before any query (SQLSTATE 25001)"
    )
    # A SET of its own goes through, but ends with its transaction and its connection:
    assert run("SET default_transaction_read_only = off") == "SET"
    assert run("UPDATE authors SET name = 'x'") == (
        "cannot execute UPDATE in a read-only transaction (SQLSTATE 25006)"
    )
    assert query(studio_url, "SELECT count(*) FROM authors WHERE name = 'x'") == [(0,)]
    assert run("SELECT name FROM authors ORDER BY id LIMIT 1") == "SELECT 1\n\nname\nUrsula"

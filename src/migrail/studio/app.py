"""The studio's Starlette app: its routes, each a thin call into catalog, rows, query, diagram
and migrations, rendered by a Jinja2 template (``?_format=json`` gives the data instead)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError

from migrail.core.errors import FatalError
from migrail.core.urls import mask_text, mask_url
from migrail.studio import catalog, diagram, edits, links, migrations, query, rows, security
from migrail.studio.database import StudioDatabase, WriteRefused
from migrail.studio.query import Result as QueryResult

if TYPE_CHECKING:
    from jinja2 import Environment
    from sqlalchemy.engine import Connection
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from migrail.core.config import Config

HERE = Path(__file__).parent
# A field of a form holds a whole value, old and new (the optimistic check): PostgreSQL's
# largest, not Starlette's default 1 MB, which refused to save any column of a row with a
# larger one. The studio serves its own user: the memory is theirs.
FIELD_LIMIT = 1024**3
FIELDS = 4 * 1600 + 16  # four a column (old, new and their NULL boxes), 1,600 columns at most
T = TypeVar("T")


@dataclass
class Studio:
    """What every request needs: the project, its environment's database, the token."""

    config: Config
    database: StudioDatabase
    token: str
    staging_report: Path | None = None  # migrate-staging --report's page, for measured locks


def create_app(studio: Studio) -> Starlette:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    pages = _Pages(studio)
    routes = [
        Route("/", pages.home),
        Route("/tables", pages.tables),
        Route("/tables/{table}", pages.table),
        Route("/tables/{table}/row", pages.row, methods=["GET", "POST"]),
        Route("/tables/{table}/new", pages.new_row, methods=["GET", "POST"]),
        Route("/query", pages.query, methods=["GET", "POST"]),
        Route("/diagram", pages.diagram),
        Route("/migrations", pages.migrations),
        Route("/migrations/measure", pages.measure),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(security.TokenGuard, token=studio.token)],
        # What a person can act on (a refusal, PostgreSQL's error, a bad URL) is a page, not
        # a traceback; anything else is a bug: a page too, and uvicorn logs its traceback.
        exception_handlers=dict.fromkeys(
            (HTTPException, FatalError, DBAPIError, psycopg.Error, ValueError, Exception),
            pages.failure,
        ),
    )


def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from migrail.studio import cells

    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
    )
    environment.filters["cell"] = cells.cell
    environment.filters["size"] = cells.size
    environment.globals["table_path"] = links.table_path
    return environment


class _Pages:
    """The route handlers; database work runs in a thread, one transaction each."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.templates = _environment()

    async def _run(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        from starlette.concurrency import run_in_threadpool

        def run() -> T:
            with self.studio.database.transaction(write=write) as connection:
                return work(connection)

        return await run_in_threadpool(run)

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        from starlette.responses import HTMLResponse

        database = self.studio.database
        html = self.templates.get_template(template).render(
            request=request,
            environment=database.environment,
            protected=database.protected,
            target=mask_url(database.url),
            token=self.studio.token,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    async def _form(self, request: Request) -> dict[str, str]:
        """The POSTed form, refused (403) without the token: a page of another site sends none."""
        from starlette.exceptions import HTTPException

        form = await request.form(max_fields=FIELDS, max_part_size=FIELD_LIMIT)
        given = form.get(security.FORM_FIELD) or request.headers.get(security.HEADER)
        if not isinstance(given, str) or not security.same(given, self.studio.token):
            raise HTTPException(403, "the form carries no valid token: reload the page")
        return {key: value for key, value in form.multi_items() if isinstance(value, str)}

    def _refuse_writes(self) -> None:
        if self.studio.database.protected:
            from starlette.exceptions import HTTPException

            raise HTTPException(
                403, f"{self.studio.database.environment} is protected: the studio only reads it"
            )

    async def failure(self, request: Request, exc: Exception) -> Response:
        """Any error as one line on a page: PostgreSQL's words for a database error, masked."""
        from starlette.exceptions import HTTPException

        from migrail.postgres.database import server_message

        status = 500
        if isinstance(exc, HTTPException):
            status, message = exc.status_code, str(exc.detail)
        elif isinstance(exc, WriteRefused):
            status, message = 403, exc.message
        elif isinstance(exc, FatalError):
            message = exc.message + (f" ({exc.hint})" if exc.hint else "")
        elif isinstance(exc, ValueError):  # a URL's key or position that does not parse
            status, message = 400, f"this URL does not make sense to the studio: {exc}"
        elif isinstance(exc, (DBAPIError, psycopg.Error)):  # PostgreSQL refused: its words
            status, message = 400, server_message(getattr(exc, "orig", None) or exc)
        else:
            message = f"unexpected {type(exc).__name__}: {exc} (a bug in migrail studio)"
        return self.render(request, "error.html", status=status, message=mask_text(message))

    async def home(self, request: Request) -> Response:
        from starlette.responses import RedirectResponse

        return RedirectResponse("/tables", status_code=303)

    async def tables(self, request: Request) -> Response:
        found = await self._run(catalog.tables)
        if request.query_params.get("_format") == "json":
            return _json([vars(table) for table in found])
        return self.render(request, "tables.html", tables=found)

    async def table(self, request: Request) -> Response:
        name = links.table_name(request.path_params["table"])
        wanted = links.page_request(request)

        def read(connection: Connection) -> dict[str, Any]:
            table = _found(connection, name)
            columns = catalog.columns(connection, name)
            links.check_columns(wanted, columns)
            return {
                "table": table,
                "page": rows.read_page(connection, table, columns, wanted),
                "constraints": catalog.constraints(connection, name),
                "indexes": catalog.indexes(connection, name),
                "references": catalog.references(connection, name),
            }

        found = await self._run(read)
        page: rows.Page = found["page"]
        if request.query_params.get("_format") == "json":
            names = [column.name for column in page.columns]
            return _json(
                {
                    "table": name,
                    "count": page.count,
                    "exact": page.exact,
                    "rows": [dict(zip(names, row, strict=False)) for row in page.rows],
                    "next": links.next_url(request, page),
                }
            )
        return self.render(
            request,
            "table.html",
            operators=rows.OPERATORS,
            next_url=links.next_url(request, page),
            first_url=links.first_url(request),
            without=lambda item: links.without_filter(request, item),
            sort_url=lambda column: links.sort_url(request, column),
            row_url=lambda row: links.row_url(name, page.row_key(row)),
            **found,
        )

    async def row(self, request: Request) -> Response:
        name = links.table_name(request.path_params["table"])
        if request.method == "POST":
            return await self._save_row(request, name)
        key = links.json_values(request.query_params.get("key"), "key")

        def read(connection: Connection) -> dict[str, Any]:
            table = _found(connection, name)
            columns = catalog.columns(connection, name)
            return {
                "table": table,
                "columns": columns,
                "values": rows.read_row(connection, table, columns, key),
                "referenced_by": catalog.referenced_by(connection, name),
            }

        found = await self._run(read)
        return self.render(request, "row.html", key=json.dumps(key), conflict=None, **found)

    async def _save_row(self, request: Request, name: str) -> Response:
        from starlette.responses import RedirectResponse

        self._refuse_writes()
        form = await self._form(request)
        key = links.json_values(form.get("key"), "key")
        names = json.loads(form["columns"])
        old = {column: links.form_value(form, f"o{i}") for i, column in enumerate(names)}
        new = {column: links.form_value(form, f"v{i}") for i, column in enumerate(names)}
        deleting = form.get("action") == "delete"

        def save(connection: Connection) -> None:
            table = _found(connection, name)
            columns = catalog.columns(connection, name)
            if [column.name for column in columns] != names:
                raise edits.RowConflict("the table's columns changed since you read the row", None)
            if deleting:
                edits.delete_row(connection, table, columns, key, old)
            else:
                edits.update_row(connection, table, columns, key, old, new)

        try:
            await self._run(save, write=True)
        except edits.RowConflict as conflict:
            return self.render(
                request,
                "row.html",
                status=409,
                key=json.dumps(key),
                values=conflict.current,
                conflict=str(conflict),
                **await self._structure(name),
            )
        except (DBAPIError, psycopg.Error) as exc:  # the form again, with PostgreSQL's words
            return self.render(
                request,
                "row.html",
                status=400,
                key=json.dumps(key),
                values=tuple(old.values()),
                edited=tuple(new.values()),
                refused=_refusal(exc),
                **await self._structure(name),
            )
        done = "deleted" if deleting else "saved"
        return RedirectResponse(f"{links.table_path(name)}?_done={done}", status_code=303)

    async def new_row(self, request: Request) -> Response:
        from starlette.responses import RedirectResponse

        name = links.table_name(request.path_params["table"])
        if request.method == "GET":
            return self.render(request, "new.html", form={}, **await self._structure(name))
        self._refuse_writes()
        form = await self._form(request)
        names = json.loads(form["columns"])
        values = {
            column: links.form_value(form, f"v{i}")
            for i, column in enumerate(names)
            if form.get(f"d{i}") != "on"  # left to its default
        }

        def insert(connection: Connection) -> list[str | None]:
            table = _found(connection, name)
            return edits.insert_row(connection, table, catalog.columns(connection, name), values)

        try:
            await self._run(insert, write=True)
        except (DBAPIError, psycopg.Error) as exc:  # the form again, with PostgreSQL's words
            return self.render(
                request,
                "new.html",
                status=400,
                form=form,
                refused=_refusal(exc),
                **await self._structure(name),
            )
        return RedirectResponse(f"{links.table_path(name)}?_done=inserted", status_code=303)

    async def _structure(self, name: str) -> dict[str, Any]:
        """The table and its columns, for a form."""
        return await self._run(
            lambda connection: {
                "table": _found(connection, name),
                "columns": catalog.columns(connection, name),
            }
        )

    async def query(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "query.html", statement="", result=None, error=None)
        form = await self._form(request)
        statement = form.get("sql", "").strip()
        result, error = None, None
        try:
            result = await self._statement(statement)
        except Exception as exc:
            from migrail.postgres.database import server_message

            error = (
                exc.message
                if isinstance(exc, WriteRefused)
                else server_message(getattr(exc, "orig", None) or exc)
            )
        template = "query_result.html" if request.headers.get("hx-request") else "query.html"
        return self.render(request, template, statement=statement, result=result, error=error)

    async def _statement(self, statement: str) -> QueryResult:
        """The statement in its own transaction, committed only on an unprotected environment;
        its connection is closed after, so a ``SET`` it made reaches no other page."""
        from starlette.concurrency import run_in_threadpool

        database = self.studio.database

        def run() -> QueryResult:
            with database.transaction(
                write=not database.protected, timeout=query.TIMEOUT, discard=True
            ) as connection:
                return query.run_query(connection, statement, query_only=database.protected)

        return await run_in_threadpool(run)

    async def diagram(self, request: Request) -> Response:
        graph = await self._run(diagram.graph)
        if request.query_params.get("_format") == "json":
            return _json(graph)
        return self.render(request, "diagram.html", graph=graph)

    async def migrations(self, request: Request) -> Response:
        report = self.studio.staging_report
        found = await self._run(
            lambda c: migrations.read_migrations(self.studio.config, c, staging_report=report)
        )
        return self.render(
            request,
            "migrations.html",
            migrations=found,
            outcome=migrations.outcome,
            report=self.studio.config.shown(report) if report else None,
        )

    async def measure(self, request: Request) -> Response:
        found = await self._run(
            lambda c: migrations.read_migrations(self.studio.config, c, measure=True)
        )
        return self.render(request, "measured.html", migrations=found)


def _json(data: Any) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(json.loads(json.dumps(data, default=str)))


def _refusal(exc: Exception) -> str:
    """PostgreSQL's words for why it refused a write, and its detail (which key, which row)."""
    from migrail.postgres.database import server_message

    error = getattr(exc, "orig", None) or exc
    detail = getattr(getattr(error, "diag", None), "message_detail", None)
    return mask_text(server_message(error) + (f": {detail}" if detail else ""))


def _found(connection: Connection, name: str) -> catalog.TableInfo:
    from starlette.exceptions import HTTPException

    table = catalog.find_table(connection, name)
    if table is None:
        raise HTTPException(404, f"no table {name} in this database")
    return table

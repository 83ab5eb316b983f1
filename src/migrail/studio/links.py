"""The studio's URLs: a table's path, the page a table URL asks for (sorting, filters, keyset
position, all in the query string, so every view can be linked and reloaded), and the links
built from it."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from migrail.studio import cells, rows

if TYPE_CHECKING:
    from starlette.requests import Request

    from migrail.studio.catalog import Column

PAGE_SIZE = 50
# What the next page, the first page and a sort leave out of the URL they are built from.
_PAGING = ("_after", "_offset", "_done", "_format")


def table_path(qualified: str) -> str:
    """A table's URL: ``/tables/public.tasks``; a ``/`` (or ``~``, ``%``) in a name as ``~2F``,
    so that every name, however odd, is one path segment."""
    escaped = re.sub(r"[/~%?#]", lambda m: f"~{ord(m[0]):02X}", qualified)
    return "/tables/" + quote(escaped, safe=".,\"'$")


def table_name(segment: str) -> str:
    return re.sub(r"~([0-9A-F]{2})", lambda m: chr(int(m[1], 16)), segment)


def form_value(form: dict[str, str], field: str) -> str | None:
    """A field's text, or None where its NULL box is ticked: NULL is not the empty string."""
    return None if form.get(f"{field}n") == "on" else form.get(field, "")


def page_request(request: Request) -> rows.PageRequest:
    params = request.query_params
    filters = []
    for key, value in params.multi_items():
        column, _, operator = key.rpartition("__")
        if column and operator in rows.OPERATORS:
            filters.append(rows.Filter(column, operator, value))
    after = json_values(params["_after"], "_after") if params.get("_after") else None
    return rows.PageRequest(
        sort=params.get("_sort") or None,
        descending=params.get("_desc") == "1",
        filters=tuple(filters),
        after=tuple(after) if after is not None else None,
        offset=int(params.get("_offset", "0") or 0),
        size=min(int(params.get("_size", PAGE_SIZE) or PAGE_SIZE), 1000),
        cell_limit=None if params.get("_format") == "json" else cells.CELL_LIMIT,
    )


def json_values(text: str | None, name: str) -> list[str | None]:
    """``_after`` or a row's ``key``: a JSON list of texts (or nulls); anything else is a
    ValueError, which the page says is a URL that does not make sense (a 400)."""
    if text is None:
        raise ValueError(f"{name} is missing")
    values = json.loads(text)
    if not isinstance(values, list) or not all(
        value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))
        for value in values
    ):
        raise ValueError(f"{name} is not a list of values")
    return [value if value is None else str(value) for value in values]


def check_columns(wanted: rows.PageRequest, columns: list[Column]) -> None:
    """A sort or filter naming no column of the table is a 400, not an SQL error."""
    from starlette.exceptions import HTTPException

    known = {column.name for column in columns}
    named = [f.column for f in wanted.filters] + ([wanted.sort] if wanted.sort else [])
    unknown = [name for name in named if name not in known]
    if unknown:
        raise HTTPException(400, f"no column {unknown[0]} in this table")


def next_url(request: Request, page: rows.Page) -> str | None:
    if page.next_after is None and page.next_offset is None:
        return None
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in _PAGING]
    if page.next_after is not None:
        params.append(("_after", json.dumps(page.next_after)))
    else:
        params.append(("_offset", str(page.next_offset)))
    return f"{request.url.path}?{urlencode(params)}"


def first_url(request: Request) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in _PAGING]
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def without_filter(request: Request, item: rows.Filter) -> str:
    """The same view less one filter (from the first page)."""
    dropped = (f"{item.column}__{item.operator}", item.value)
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in _PAGING and (k, v) != dropped
    ]
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def sort_url(request: Request, column: str) -> str:
    """Sort by ``column``; again on the column sorted by: the other way round."""
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in (*_PAGING, "_sort", "_desc")
    ]
    current = request.query_params.get("_sort") == column
    descending = current and request.query_params.get("_desc") != "1"
    params.append(("_sort", column))
    if descending:
        params.append(("_desc", "1"))
    return f"{request.url.path}?{urlencode(params)}"


def row_url(name: str, key: list[str | None]) -> str:
    return f"{table_path(name)}/row?{urlencode({'key': json.dumps(key)})}"

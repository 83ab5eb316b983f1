"""How a value reads in a table cell: NULL unlike the empty string, JSON indented, long text
folded behind its first line, every byte escaped (a value is data, never markup)."""

from __future__ import annotations

import json

from markupsafe import Markup, escape

# Longer text is folded: its start shows, the rest opens on a click.
FOLD_AT = 80
# Longer text is cut (the table's page reads no more of it): the row's page shows it whole.
CELL_LIMIT = 2000
_JSON_TYPES = ("json", "jsonb")


def cell(value: str | None, base_type: str = "") -> Markup:
    if value is None:
        return Markup('<span class="null">NULL</span>')
    if value == "":
        return Markup('<span class="empty" title="the empty string">\'\'</span>')
    if len(value) > CELL_LIMIT:
        return Markup(
            '<details class="fold"><summary>{}…</summary><pre class="long">{}</pre>'
            '<p class="cut">cut at {:,} characters: the row\'s page shows all of it</p></details>'
        ).format(_first_line(value), value[:CELL_LIMIT], CELL_LIMIT)
    if base_type in _JSON_TYPES:
        try:
            pretty = json.dumps(json.loads(value), indent=2, ensure_ascii=False)
        except ValueError:
            pretty = value
        if len(value) <= FOLD_AT:
            return Markup('<code class="json">{}</code>').format(value)
        return Markup(
            '<details class="fold"><summary><code class="json">{}…</code></summary>'
            '<pre class="json">{}</pre></details>'
        ).format(value[:FOLD_AT], pretty)
    if len(value) <= FOLD_AT and "\n" not in value:
        return escape(value)
    return Markup(
        '<details class="fold"><summary>{}…</summary><pre class="long">{}</pre></details>'
    ).format(_first_line(value), value)


def _first_line(value: str) -> str:
    return value.splitlines()[0][:FOLD_AT] if value.strip() else value[:FOLD_AT]


def size(value: int) -> str:
    """``8.0 kB``, ``1.2 GB``: a table's size on disk."""
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"

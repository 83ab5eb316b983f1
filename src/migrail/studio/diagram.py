"""The relationships diagram's data: each table with its columns (keys marked), each foreign key
an edge. The page lays it out in the browser with dagre (vendored), left to right, so 50 tables
and more read as ranks of referencing tables, not a hairball."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migrail.studio import catalog

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Columns listed in a node; more are summed up in one line ("+ 12 more").
NODE_COLUMNS = 12
_COLUMNS = """
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname,
        format_type(a.atttypid, a.atttypmod),
        EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'
            AND a.attnum = ANY (k.conkey))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND NOT c.relispartition AND {where}
    ORDER BY 1, a.attnum"""


def graph(connection: Connection) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}``: what diagram.js draws."""
    tables = catalog.tables(connection)
    keys = catalog.foreign_keys(connection)
    referencing = {(key.table, column) for key in keys for column in key.columns}
    columns: dict[str, list[dict[str, Any]]] = {}
    for table, name, kind, primary in connection.exec_driver_sql(
        _COLUMNS.format(where=catalog.USER_SCHEMAS)
    ):
        columns.setdefault(table, []).append(
            {"name": name, "type": kind, "pk": primary, "fk": (table, name) in referencing}
        )
    nodes = []
    for table in tables:
        listed = columns.get(table.qualified, [])
        nodes.append(
            {
                "id": table.qualified,
                "kind": table.kind_name,
                "estimate": table.estimate,
                "columns": listed[:NODE_COLUMNS],
                "more": max(0, len(listed) - NODE_COLUMNS),
            }
        )
    known = {table.qualified for table in tables}
    edges = [
        {
            "from": key.table,
            "to": key.references,
            "label": f"{', '.join(key.columns)} → {', '.join(key.referenced)}",
        }
        for key in keys
        if key.table in known and key.references in known
    ]
    return {"nodes": nodes, "edges": edges}

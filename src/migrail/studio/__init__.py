"""``migrail studio``: a local web UI for an environment's database and its migrations.

Server-rendered pages (Starlette, Jinja2) with every asset inside the package, so it works with
no network; the environment decides what it may do: on a protected one every request runs in a
read-only transaction, and writes are refused by the server, not only hidden.
"""

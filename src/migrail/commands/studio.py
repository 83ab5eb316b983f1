"""``migrail studio``: a local web UI for an environment's database and its migrations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import output
from migrail.core.config import resolve_environment
from migrail.core.urls import mask_url

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.core.config import Config


def studio(
    config: Config,
    *,
    env_name: str | None,
    host: str,
    port: int | None,
    browser: bool,
    staging_report: Path | None,
    console: Console,
) -> int:
    """Serve the studio until interrupted; print its URL (with its token) and open it."""
    import webbrowser

    from migrail.studio.server import bind, require_web_stack, server, url

    require_web_stack()
    from migrail.studio.app import Studio, create_app
    from migrail.studio.database import StudioDatabase
    from migrail.studio.security import new_token

    environment, target = resolve_environment(config, env_name)
    database = StudioDatabase(
        target,
        environment=environment.name,
        protected=environment.protected,
        lock_timeout=config.lock_timeout,
    )
    warnings = database.check()
    sock = bind(host, port)
    token = new_token()
    address = url(sock, token)
    mode = "protected: read only" if database.protected else "writable"
    output.info(console, f"environment: {environment.name} ({mask_url(target)}), {mode}")
    for warning in warnings:
        output.warning(console, warning)
    if host not in ("127.0.0.1", "::1", "localhost"):
        output.warning(
            console,
            f"listening on {host}: other machines can reach the studio (they still need the "
            "token, which travels unencrypted over plain HTTP)",
        )
    output.success(console, f"studio at {address}")
    output.info(console, "stop it with Ctrl-C")
    if browser:
        webbrowser.open(address)
    try:
        app = create_app(Studio(config, database, token, staging_report))
        server(app).run(sockets=[sock])
    finally:
        sock.close()
        database.close()
    return 0

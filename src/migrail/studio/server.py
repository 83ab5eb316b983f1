"""Serving the studio: a socket on 127.0.0.1 (the usual port, or any free one when it is taken),
and uvicorn on it, quiet: its access log would write the token of the first request to the
terminal."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

# Drizzle Studio's: people who come from it find the studio where they look for it.
DEFAULT_PORT = 4983


def require_web_stack() -> None:
    """The studio's extra installed, or a FatalError saying how to install it."""
    import importlib.util

    missing = [
        name
        for name in ("starlette", "uvicorn", "jinja2", "multipart")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise FatalError(
            f"migrail studio needs {', '.join(missing)}, which are not installed",
            hint="pip install 'migrail[studio]' (or: nox -s studio)",
        )


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on ``port``; with none asked for, the default or else a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in (port,) if port is not None else (DEFAULT_PORT, 0):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if port is not None:
                raise FatalError(
                    f"cannot listen on {host}:{port}: {exc.strerror}",
                    hint="leave --port out for a free port, or pick another",
                ) from None
            continue
        sock.listen(128)
        return sock
    raise FatalError(f"cannot listen on {host}: no free port")  # pragma: no cover


def server(app: ASGIApp) -> uvicorn.Server:
    """A uvicorn server for ``app``: no access log, no banner, warnings and errors only."""
    import uvicorn

    config = uvicorn.Config(
        app, access_log=False, log_level="warning", lifespan="off", server_header=False
    )
    return uvicorn.Server(config)


def url(sock: socket.socket, token: str) -> str:
    """The address to open, with the token: ``http://127.0.0.1:4983/?token=...``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"

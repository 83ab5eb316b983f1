"""Who may use the studio: whoever holds the token printed at start, as Jupyter does.

The token comes once in the URL; the response sets it as a cookie (HttpOnly, SameSite=Strict)
and redirects to the same URL without it, so it does not stay in the address bar or history.
Every later request must carry the cookie, and every POST the token in its form too: a page
of another site cannot read the token, so it cannot forge a write (CSRF), and another user of
the machine, who can reach the port, does not have it. Browsers keep cookies per host, not per
port: the cookie's name carries the port, so two studios (development and production, say)
side by side do not log each other out.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "migrail_studio"
PARAMETER = "token"
FORM_FIELD = "csrf"
HEADER = "x-studio-token"


def cookie_name(port: int) -> str:
    """``migrail_studio_4983``: the cookie of the studio on that port."""
    return f"{COOKIE}_{port}"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def same(given: str | None, token: str) -> bool:
    """Compared in constant time: a timing difference says nothing about the token."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class TokenGuard:
    """ASGI middleware: the token exchanged for a cookie, then required on every request."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.requests import HTTPConnection
        from starlette.responses import PlainTextResponse, RedirectResponse

        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request = HTTPConnection(scope)
        cookie = cookie_name(scope["server"][1] if scope.get("server") else 0)
        given = request.query_params.get(PARAMETER)
        if given is not None and same(given, self.token):
            rest = [(k, v) for k, v in parse_qsl(scope["query_string"].decode()) if k != PARAMETER]
            location = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(location, status_code=303)
            response.set_cookie(cookie, self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        if not same(request.cookies.get(cookie), self.token):
            refused = PlainTextResponse(
                "403: open the studio through the URL `migrail studio` printed (it carries a "
                "token); this browser has not shown it one",
                status_code=403,
            )
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)

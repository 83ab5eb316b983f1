"""Database URLs: parsed once, driven by psycopg 3, and never shown with their password."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from migrail.errors import FatalError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_PASSWORD_IN_TEXT = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@"
)


def parse_url(raw: str, *, source: str) -> URL:
    """Parse ``raw`` into a SQLAlchemy URL for the psycopg 3 driver.

    ``source`` names where the URL came from (an environment variable) for the error message.
    Plain ``postgres://`` and ``postgresql://`` URLs, as libpq and Heroku write them, are accepted.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError) as exc:
        raise FatalError(
            f"{source} is not a valid database URL: {mask_text(raw)!r}",
            hint="expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        ) from exc
    backend = url.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend != "postgresql":
        raise FatalError(
            f"{source} is not a PostgreSQL URL: {mask_url(url)}",
            hint="migrail works with PostgreSQL only: postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        )
    if not url.database:
        raise FatalError(
            f"{source} names no database: {mask_url(url)}",
            hint="add the database name at the end: postgresql://HOST:PORT/DATABASE",
        )
    return url.set(drivername="postgresql+psycopg")


def mask_url(url: URL | str) -> str:
    """Render a URL for people: the password, if any, becomes ``***``."""
    if isinstance(url, str):
        return mask_text(url)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def mask_text(text: str) -> str:
    """Mask every ``scheme://user:password@`` password in free text (an error message, a log)."""
    return _PASSWORD_IN_TEXT.sub(
        lambda m: f"{m['scheme']}{m['user']}:***@" if m["pw"] else m[0], text
    )


def libpq_conninfo(url: URL) -> str:
    """The same URL as a libpq connection string (``postgresql://...``), for psycopg directly."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)

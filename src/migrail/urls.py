"""Database URLs: parsed once, driven by psycopg 3, and never shown with their password."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from migrail.errors import FatalError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# What a password can look like inside free text: in a URL's userinfo (with or without a
# scheme), or as a ``password=`` parameter of a URL query or a libpq connection string.
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]*@", re.IGNORECASE),
        r"\g<keep>***@",
    ),
    (re.compile(r"(?P<keep>(?<![\w/.:-])[\w.+-]+:)[^@/\s:]+@"), r"\g<keep>***@"),
    (
        # An already masked ``***`` is left alone, so masking twice changes nothing.
        re.compile(r"(?P<keep>password\s*=\s*)(?!\*\*\*(?:[&\s:]|$))[^&\s]+", re.IGNORECASE),
        r"\g<keep>***",
    ),
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
    url = url.set(drivername=url.get_backend_name())
    if "password" in url.query:
        url = url.difference_update_query(["password"]).update_query_dict({"password": "***"})
    return mask_text(url.render_as_string(hide_password=True))


def mask_text(text: str) -> str:
    """Mask every password in free text (an error message, a traceback, a log line)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def libpq_conninfo(url: URL) -> str:
    """The same URL as a libpq connection string (``key=value ...``), for psycopg directly;
    libpq quotes each value, so a database name with spaces or quotes stays one name."""
    from psycopg.conninfo import make_conninfo

    parts: dict[str, str | int | None] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    for key, value in url.query.items():  # host=/socket/dir, sslmode=...: as given
        parts[key] = value if isinstance(value, str) else value[-1]
    return make_conninfo("", **{key: value for key, value in parts.items() if value is not None})

"""Database URLs: parsed once, driven by psycopg 3, and never shown with their password."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_SCHEME = r"[a-z][a-z0-9+.-]*://"

# What a password can look like inside free text, masked in this order: a ``password=``
# parameter (of a URL query or a libpq connection string, quoted or not), a password literal of
# SQL (``PASSWORD '...'`` of CREATE/ALTER ROLE, ``OPTIONS (password '...')`` of a foreign server
# or user mapping), then a URL's userinfo, with or without a scheme. A password may hold any
# character, ``@`` and spaces included, so a URL's is masked up to the LAST ``@`` on the line
# (short of another URL starting further on): more may be hidden than the password, but no
# character of it is shown.
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # An already masked ``***`` is left alone, so masking twice changes nothing. In a URL's
    # query a value ends at ``&``; in a connection string at a space, unless it is quoted.
    (
        re.compile(r"(?P<keep>[?&]password=)(?!\*\*\*(?:[&\s:]|$))[^&\s]+", re.IGNORECASE),
        r"\g<keep>***",
    ),
    # libpq quotes with backslash escapes, and a string shown as Python shows it doubles them
    # (``'a\\'b'``) or escapes the quotes (``\'a\'``): a quote after any backslash does not end
    # the value, and what follows the closing quote up to a space is masked with it.
    (
        re.compile(
            r"(?P<keep>(?<![?&])password\s*=\s*)(?!\*\*\*(?:\s|$))"
            r"(?:\\*'(?:[^'\\\n]|\\+'|\\.)*'?\S*|\S+)",
            re.IGNORECASE,
        ),
        r"\g<keep>***",
    ),
    # A literal of SQL: '' and (in E'...') backslashes escape a quote; one that does not end
    # masks the rest. Dollar-quoted too.
    (
        re.compile(
            r"(?P<keep>\bpassword\s+)(?:(?:E|U&)?'(?:[^'\\]|''|\\.)*'?"
            r"|\$(?P<tag>(?:[a-z_]\w*)?)\$.*?(?:\$(?P=tag)\$|\Z))",
            re.IGNORECASE | re.DOTALL,
        ),
        r"\g<keep>'***'",
    ),
    (
        re.compile(
            rf"(?P<keep>{_SCHEME}[^:/?#\s]*:)(?:(?!\s[^\w\s]*{_SCHEME})[^\n])*@", re.IGNORECASE
        ),
        r"\g<keep>***@",
    ),
    (re.compile(r"(?P<keep>(?<![\w/.:-])[\w.+-]+:)(?!//)\S*@"), r"\g<keep>***@"),
)
# Where a URL's userinfo ends: the last ``@`` followed by a host (a name, an address, or nothing
# for a socket in the query), an optional port, then the database, the query or the end.
_USERINFO = re.compile(
    rf"(?P<scheme>{_SCHEME})(?P<userinfo>.*)@(?P<rest>(?:\[[^\]]*\]|[^\s/?#@\[\]:]*)"
    r"(?::[^\s/?#@]*)?(?:[/?].*)?)",
    re.IGNORECASE | re.DOTALL,
)


def parse_url(raw: str, *, source: str) -> URL:
    """Parse ``raw`` into a SQLAlchemy URL for the psycopg 3 driver.

    ``source`` names where the URL came from (an environment variable) for the error message.
    Plain ``postgres://`` and ``postgresql://`` URLs, as libpq and Heroku write them, are accepted.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(_encode_userinfo(raw.strip()))
    except (ArgumentError, ValueError) as exc:
        # Not shown at all beyond its scheme: where it does not parse, nothing says where its
        # password ends.
        scheme = re.match(_SCHEME, raw.strip(), re.IGNORECASE)
        raise FatalError(
            f"{source} is not a valid {scheme[0] + ' ' if scheme else 'database '}URL "
            "(its value is not shown: it may hold a password)",
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


def _encode_userinfo(raw: str) -> str:
    """``raw`` with the ``@`` of its user and password (and a ``/`` of its user) percent-encoded.

    A password may hold an unencoded ``@`` (``app:p@ss@db/x``): SQLAlchemy, like libpq, would end
    it at the first one and take the rest for the host, which error messages then show. Here the
    userinfo ends at the last ``@`` that a host follows, so no piece of a password is taken for
    a host or a database. In a URL with a password, an ``@`` in the database name or the query
    (rare) must then be percent-encoded, or the URL is refused (showing nothing of it).
    """
    found = _USERINFO.match(raw)
    if found is None or ":" not in found["userinfo"]:
        return raw  # no password: SQLAlchemy's own reading
    user, colon, password = found["userinfo"].partition(":")
    user = user.replace("@", "%40").replace("/", "%2F")
    return f"{found['scheme']}{user}{colon}{password.replace('@', '%40')}@{found['rest']}"


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

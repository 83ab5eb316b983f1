"""Connections to real databases; the one place their errors become messages people act on."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migrail.errors import FatalError
from migrail.urls import mask_text, mask_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), hint)
    for pattern, hint in (
        (r"password authentication failed|no password supplied", "check the user and password"),
        (r'role ".*" does not exist', "check the user name in the URL"),
        (r'database ".*" does not exist', "create the database (createdb NAME) or fix its name"),
        (
            r"connection refused|could not connect|no such file or directory|timeout expired"
            r"|could not translate host name|name or service not known|network is unreachable",
            "is the server running and reachable? try: pg_isready{where}",
        ),
    )
)


def create_engine(url: URL) -> Engine:
    """An engine without a pool: migrail opens few connections and must leave none behind."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    return sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})


@contextmanager
def connect(url: URL) -> Iterator[Connection]:
    """A connection to ``url``; failing to connect is a FatalError naming the masked URL."""
    from sqlalchemy.exc import DBAPIError

    engine = create_engine(url)
    try:
        try:
            connection = engine.connect()
        except DBAPIError as exc:
            raise connection_error(url, exc.orig or exc) from None
        with connection:
            yield connection
    finally:
        engine.dispose()


def connection_error(url: URL, exc: BaseException) -> FatalError:
    """Turn a driver's connection failure into one line plus a hint."""
    detail = _first_line(str(exc))
    hint = next((hint for pattern, hint in _HINTS if pattern.search(detail)), None)
    if hint:
        host = url.host or url.query.get("host")
        where = (f" -h {host}" if host else "") + (f" -p {url.port}" if url.port else "")
        hint = hint.format(where=where)
    return FatalError(f"cannot connect to {mask_url(url)}: {mask_text(detail)}", hint=hint)


def server_version(connection: Connection) -> str:
    """The server's version as PostgreSQL spells it, e.g. ``15.20 (Debian 15.20-0+deb12u1)``."""
    from sqlalchemy import text

    return str(connection.execute(text("SHOW server_version")).scalar_one())


def _first_line(message: str) -> str:
    """The reason in a libpq error: ``connection to server at ... failed: FATAL:  <reason>``."""
    lines = message.strip().splitlines() or ["unknown error"]
    return lines[0].rsplit(" failed: ", 1)[-1].replace("FATAL:", "").strip()


# One constant key: every migrail that migrates this database takes the same lock.
MIGRATE_LOCK_KEY = 0x6D69677261696C  # "migrail"


@contextmanager
def advisory_lock(connection: Connection, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock for migrating; ``on_wait`` is called if it is taken.

    A session lock outlives the per-revision transactions, and is released by PostgreSQL itself
    if the process dies, so a killed run never leaves the database locked.
    """
    from sqlalchemy import text

    key = {"key": MIGRATE_LOCK_KEY}
    if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar_one():
        on_wait()
        connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
    connection.commit()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            connection.commit()

"""Connections to real databases; the one place their errors become messages people act on."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migrail.core import durations
from migrail.core.errors import FatalError
from migrail.core.urls import mask_text, mask_url

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


# ``options=-c statement_timeout=1`` (or ``--statement-timeout=1``) in a URL's query: libpq
# passes it to the server as the session's default.
_STATEMENT_TIMEOUT = re.compile(
    r"(?:^|\s)(?:-c\s*|--)statement[_-]timeout=(?P<value>\S+)", re.IGNORECASE
)
# Shorter than this, a URL's statement_timeout cancels migrail's own statements (reading the
# catalog, waiting for its lock) more often than not; it is mostly a unit left out (1 is 1 ms).
SHORTEST_STATEMENT_TIMEOUT_MS = 1000
_URL_TIMEOUT_HINT = (
    "remove statement_timeout from the URL's options, or {what}: migrail times each revision "
    "itself, with [tool.migrail] statement_timeout"
)


def create_engine(url: URL) -> Engine:
    """An engine without a pool: migrail opens few connections and must leave none behind.

    Its connections notice a server that stops answering (``liveness``).
    """
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    from migrail.postgres.liveness import tcp_settings, watch

    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=tcp_settings(url))
    watch(engine)
    return engine


@contextmanager
def connect(url: URL) -> Iterator[Connection]:
    """A connection to ``url``; failing to connect is a FatalError naming the masked URL, and
    so is a statement of migrail's cancelled by a timeout of the URL, the role or the database
    (a revision's own failure is the executor's to report)."""
    from sqlalchemy.exc import DBAPIError

    _refuse_cancelling_options(url)
    engine = create_engine(url)
    try:
        try:
            connection = engine.connect()
        except DBAPIError as exc:
            raise connection_error(url, exc.orig or exc) from None
        with connection:
            try:
                yield connection
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != "57014":  # query_canceled
                    raise
                raise cancelled_error(url, exc.orig or exc) from None
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


def cancelled_error(url: URL, exc: BaseException) -> FatalError:
    """A statement of migrail's was cancelled: by whom, as far as can be told, and what to do."""
    detail = _first_line(str(exc))
    if _statement_timeout(url) is not None:
        return FatalError(
            f"a statement was cancelled: the database URL's options set statement_timeout="
            f"{_statement_timeout(url)} ({mask_text(detail)})",
            hint=_URL_TIMEOUT_HINT.format(what="make it longer"),
        )
    hint = "someone cancelled it (pg_cancel_backend): run again"
    if "statement timeout" in detail:
        hint = (
            "the role or the database sets a statement_timeout too short for migrail "
            "(ALTER ROLE ... SET statement_timeout): reset it for the user migrail connects as"
        )
    return FatalError(f"a statement was cancelled: {mask_text(detail)}", hint=hint)


def _refuse_cancelling_options(url: URL) -> None:
    """A statement_timeout in the URL's options so short that migrail's statements are
    cancelled (``statement_timeout=1`` is one millisecond): said before connecting."""
    value = _statement_timeout(url)
    length = durations.milliseconds(value) if value is not None else None
    if length is not None and 0 < length < SHORTEST_STATEMENT_TIMEOUT_MS:
        raise FatalError(
            f"the database URL's options cancel statements: statement_timeout={value} stops "
            f"any statement after {length:g} ms",
            hint=_URL_TIMEOUT_HINT.format(what="give it a unit: 60s (a bare number is ms)"),
        )


def _statement_timeout(url: URL) -> str | None:
    """The statement_timeout the URL's ``options`` set, if they set one (the last one wins)."""
    options = url.query.get("options")
    text = " ".join((options,) if isinstance(options, str) else options or ())
    found = _STATEMENT_TIMEOUT.findall(text)
    return found[-1] if found else None


def server_version(connection: Connection) -> str:
    """The server's version as PostgreSQL spells it, e.g. ``15.20 (Debian 15.20-0+deb12u1)``."""
    from sqlalchemy import text

    return str(connection.execute(text("SHOW server_version")).scalar_one())


def major_version(version: str) -> str:
    """The major version in ``version`` as PostgreSQL spells one (``15.20 (Debian ...)``,
    ``16``, ``9.6.24``): ``15``, ``16``, ``9.6`` (before 10, a major version had two parts)."""
    found = re.match(r"\s*(\d+)(?:\.(\d+))?", version)
    if found is None:
        return version.strip()
    first, second = found.groups()
    return first if int(first) >= 10 or second is None else f"{first}.{second}"


def server_message(error: BaseException) -> str:
    """PostgreSQL's own words for a driver's error: its primary message and SQLSTATE, masked
    (a statement quoted in it may hold a URL with its password)."""
    diag = getattr(error, "diag", None)
    if diag is None:
        return mask_text(f"{type(error).__name__}: {error}")
    primary = getattr(diag, "message_primary", None) or str(error).splitlines()[0]
    code = getattr(diag, "sqlstate", None)
    return mask_text(f"{primary} (SQLSTATE {code})" if code else primary)


def _first_line(message: str) -> str:
    """The reason in a libpq error: ``connection to server at ... failed: FATAL:  <reason>``."""
    lines = message.strip().splitlines() or ["unknown error"]
    return lines[0].rsplit(" failed: ", 1)[-1].replace("FATAL:", "").strip()


# How long a waiting migrate sleeps between its asks for the lock: short at first (the other run
# may be about to finish), then at most a second.
_FIRST_POLL = 0.05
_LAST_POLL = 1.0


def _try_advisory_lock(connection: Connection, key: dict[str, int]) -> bool:
    """Ask for the migrate lock once, in a transaction ended at once (no snapshot kept)."""
    from sqlalchemy import text

    taken = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar_one())
    connection.commit()
    return taken


# One constant key: every migrail that migrates this database takes the same lock.
MIGRATE_LOCK_KEY = 0x6D69677261696C  # "migrail"


@contextmanager
def advisory_lock(connection: Connection, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock for migrating; ``on_wait`` is called if it is taken.

    A session lock outlives the per-revision transactions, and is released by PostgreSQL itself
    if the process dies, so a killed run never leaves the database locked.

    A waiting run asks again and again (``pg_try_advisory_lock``, each time in a transaction of
    its own) rather than blocking in ``pg_advisory_lock``: a statement blocked there holds a
    snapshot, and ``CREATE INDEX CONCURRENTLY`` in the run that holds the lock waits for every
    older snapshot to end, so the two runs would wait for each other until PostgreSQL's deadlock
    detector killed one of them, possibly leaving an INVALID index behind.
    """
    from sqlalchemy import text

    key = {"key": MIGRATE_LOCK_KEY}
    if not _try_advisory_lock(connection, key):
        on_wait()
        pause = _FIRST_POLL
        while not _try_advisory_lock(connection, key):
            time.sleep(pause)
            pause = min(pause * 2, _LAST_POLL)
    try:
        yield
    finally:
        # A lost connection took the lock with it; a new one would only wait for a dead server.
        with contextlib.suppress(Exception):
            connection.rollback()
            if not connection.invalidated:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                connection.commit()

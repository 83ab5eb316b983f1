"""A server that stops answering is noticed in bounded time, and the run fails saying so.

Two layers, because each misses what the other sees:

- TCP: keepalives and ``tcp_user_timeout`` on every libpq connection migrail opens. When the
  network loses the packets (a failover, a cut link, a dropped NAT entry), the kernel gives up
  within ``TCP_BOUND_SECONDS`` and the waiting call fails.
- The statement's own bound: a peer whose kernel still acknowledges everything but forwards
  nothing (a hung proxy or pooler) passes every TCP check. But the server ends a statement at
  ``statement_timeout`` and answers; a call that has heard nothing for that long and
  ``GRACE_SECONDS`` more will never hear: a watchdog shuts its socket down, so it fails at once.

The statement_timeout is the session's as migrail sees it set (``SET statement_timeout``, by
migrail or a revision): the largest seen, as ``SET LOCAL`` may have raised it for a while.
A session with none known, or that sets it in a way not read here, is left to TCP alone.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine, ExceptionContext

# libpq settings for every connection, unless its URL sets them: probes after 10 s of silence,
# then every 5 s; data unacknowledged for 30 s, or 4 probes unanswered, and the kernel gives up.
TCP_SETTINGS = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "4",
    "tcp_user_timeout": "30000",
    "connect_timeout": "10",
}
TCP_BOUND_SECONDS = 30
GRACE_SECONDS = 10

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_MENTIONS = re.compile(r"statement_timeout|\breset\s+all\b|\bdiscard\s+all\b", re.IGNORECASE)
_SET = re.compile(
    r"\s*SET\s+(?:SESSION\s+|LOCAL\s+)?statement_timeout\s*(?:=|TO)\s*"
    r"'?\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*'?\s*;?\s*",
    re.IGNORECASE,
)


class ConnectionLost(FatalError):
    """The connection to the server is gone: the server or the network stopped answering.

    ``statement`` is the one that was waiting for its answer (``None``: a COMMIT, say).
    """

    def __init__(self, message: str, hint: str, statement: str | None) -> None:
        super().__init__(message, hint)
        self.statement = statement


def tcp_settings(url: URL) -> dict[str, str]:
    """``TCP_SETTINGS`` less those the URL sets itself: what the user wrote wins."""
    return {key: value for key, value in TCP_SETTINGS.items() if key not in url.query}


def statement_timeout(statement: str) -> float | None:
    """The statement_timeout, in seconds, that ``statement`` sets: ``None`` if it touches none,
    ``inf`` if it sets no limit (0) or one this cannot read (a reset, set_config, ...)."""
    if not _MENTIONS.search(statement):
        return None
    found = _SET.fullmatch(statement)
    if found is None:
        return math.inf
    seconds = float(found[1]) * _UNITS[(found[2] or "ms").lower()]
    return seconds or math.inf


class Watchdog:
    """Shuts a socket down when a call on it has waited past the session's bound."""

    def __init__(self, fileno: int) -> None:
        self.fileno = fileno
        self.limit: float | None = None  # the session's statement_timeout, in seconds
        self.fired = False
        self._deadline: float | None = None
        # When the watching thread wakes next by itself (inf: only when woken). A call ending
        # no earlier than that needs no wake-up, which spares every call a thread switch.
        self._sleeps_until = math.inf
        self._stopped = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def learn(self, statement: str) -> None:
        seconds = statement_timeout(statement)
        if seconds is not None:
            self.limit = seconds if self.limit is None else max(self.limit, seconds)

    @property
    def bound(self) -> float | None:
        """How long a call may wait for its answer, when a limit is known."""
        if self.limit is None or math.isinf(self.limit):
            return None
        return self.limit + GRACE_SECONDS

    def no_answer(self) -> str:
        """Why the watchdog closed the connection, in words."""
        assert self.limit is not None and self.bound is not None
        return (
            f"no answer from the server for {_seconds(self.bound)} s (statement_timeout "
            f"{_seconds(self.limit)} s, and {GRACE_SECONDS} s for its answer to arrive)"
        )

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """A call on the connection, timed against the bound."""
        bound = self.bound
        if bound is None:
            yield
            return
        with self._wake:
            self._deadline = time.monotonic() + bound
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="migrail-watchdog")
                self._thread.daemon = True
                self._thread.start()
            elif self._deadline < self._sleeps_until:
                self._wake.notify()
        try:
            yield
        finally:
            with self._wake:
                self._deadline = None

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def _watch(self) -> None:
        with self._wake:
            while not self._stopped:
                if self._deadline is None:
                    self._sleeps_until = math.inf
                    self._wake.wait()
                elif (left := self._deadline - time.monotonic()) > 0:
                    # The calls after this one end later: it wakes then and looks again.
                    self._sleeps_until = self._deadline
                    self._wake.wait(left)
                else:  # under the lock: the call cannot end, and the socket close, meanwhile
                    self._deadline = None
                    self.fired = True
                    with (
                        contextlib.suppress(OSError),
                        socket.fromfd(self.fileno, socket.AF_INET, socket.SOCK_STREAM) as sock,
                    ):
                        sock.shutdown(socket.SHUT_RDWR)


def _seconds(value: float) -> str:
    """12 for 12.0, 0.5 for 0.5: seconds as people write them."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


class WatchedConnection(psycopg.Connection[Any]):
    """psycopg's connection, each wait for the server (execute, fetch, commit) watched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watchdog = Watchdog(self.pgconn.socket)
        self._ahead_of_commit: bytes | None = None

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        with self.watchdog.waiting():
            return super().wait(*args, **kwargs)

    def commit_after(self, statement: bytes) -> None:
        """Send ``statement`` (one, whose answer is not needed) ahead of the next COMMIT, in the
        same message: a round trip fewer. If it fails, nothing commits, as when the COMMIT
        itself fails."""
        self._ahead_of_commit = statement

    def rollback(self) -> None:
        self._ahead_of_commit = None  # it went with the transaction it was to end
        super().rollback()

    def commit(self) -> None:
        from psycopg import pq

        from migrail.postgres.together import send_together

        statement, self._ahead_of_commit = self._ahead_of_commit, None
        if statement is None or self.pgconn.transaction_status != pq.TransactionStatus.INTRANS:
            super().commit()  # nothing ahead of it, or no transaction to end: psycopg's own
            return
        try:
            send_together(self, statement + b"; COMMIT")
        except psycopg.Error:
            # The statement failed and the COMMIT after it never ran: the transaction ends
            # here, as a failed COMMIT ends it, not left aborted for the next statement.
            if self.pgconn.transaction_status == pq.TransactionStatus.INERROR:
                with contextlib.suppress(psycopg.Error):
                    super().rollback()
            raise

    def close(self) -> None:
        self.watchdog.stop()
        super().close()


def watch(engine: Engine) -> None:
    """Make ``engine``'s connections watched, and a lost one a ``ConnectionLost``."""
    from sqlalchemy import event

    event.listen(engine, "do_connect", _connect)
    event.listen(engine, "before_cursor_execute", _learn)
    event.listen(engine, "handle_error", _lost)


def _connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> WatchedConnection:
    return WatchedConnection.connect(*cargs, **cparams)


def _learn(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
    watchdog = getattr(cursor.connection, "watchdog", None)
    if isinstance(watchdog, Watchdog):
        watchdog.learn(statement)


def _lost(context: ExceptionContext) -> None:
    """A call that failed because the connection is gone raises ``ConnectionLost``, which names
    the connection and says why."""
    from migrail.core.urls import mask_url
    from migrail.postgres.database import server_message

    # SQLAlchemy counts Ctrl-C and SIGTERM as disconnects too; they stay what they are.
    original = context.original_exception
    if (
        context.connection is None
        or not context.is_disconnect
        or not isinstance(original, psycopg.Error)
    ):
        return
    watchdog = getattr(context.connection.connection.driver_connection, "watchdog", None)
    if isinstance(watchdog, Watchdog) and watchdog.fired:
        reason = watchdog.no_answer()
    else:
        reason = server_message(original)
    raise ConnectionLost(
        f"lost the connection to {mask_url(context.connection.engine.url)}: {reason}",
        hint="check the server and the network to it, then run it again (what was not "
        "committed, PostgreSQL rolls back once it notices the connection is gone)",
        statement=context.statement,
    )

"""The studio's connections: a small pool, one transaction per request, and on a protected
environment a read-only one, set by the server before anything runs.

The transaction is the guard, not the pages: a write that reaches a protected database through
any route (a form, the query box) fails in PostgreSQL with "cannot execute UPDATE in a
read-only transaction".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL, Connection, Engine


_SUPERUSER = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"


class WriteRefused(FatalError):
    """A write asked of a protected environment's database."""


class StudioDatabase:
    """An environment's database as the studio reaches it."""

    def __init__(
        self, url: URL, *, environment: str, protected: bool, lock_timeout: str = "5s"
    ) -> None:
        self.url = url
        self.environment = environment
        self.protected = protected
        self.lock_timeout = lock_timeout
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """A pool of a few connections that notice a server that stops answering."""
        if self._engine is None:
            import sqlalchemy

            from migrail.postgres.liveness import tcp_settings

            arguments: dict[str, Any] = {**tcp_settings(self.url)}
            arguments["application_name"] = "migrail studio"
            if self.protected:  # also what a library call that commits midway starts next
                given = self.url.query.get("options")
                given = " ".join((given,) if isinstance(given, str) else given or ())
                arguments["options"] = f"{given} -c default_transaction_read_only=on".strip()
            self._engine = sqlalchemy.create_engine(
                self.url, pool_size=4, max_overflow=4, pool_pre_ping=True, connect_args=arguments
            )
        return self._engine

    @contextmanager
    def transaction(
        self, *, write: bool = False, timeout: str = "30s", discard: bool = False
    ) -> Iterator[Connection]:
        """One transaction: committed if ``write`` and nothing failed, else rolled back.

        Protected: ``SET TRANSACTION READ ONLY`` is its first statement, and ``write`` is
        refused before connecting. ``discard``: the connection is closed after, not pooled
        (custom SQL may have changed its session: a ``SET`` must reach no other page).
        """
        if write and self.protected:
            raise WriteRefused(
                f"{self.environment} is a protected environment: the studio only reads it",
                hint="change a protected database through a reviewed revision "
                "(migrail plan, approve, apply)",
            )
        with self.engine.connect() as connection:
            if self.protected:
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            # Durations of the config's form, or the studio's own constants: nothing to quote.
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = '{timeout}'")
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{self.lock_timeout}'")
            try:
                yield connection
            except BaseException:
                if not connection.invalidated:
                    connection.rollback()
                raise
            else:
                if write:
                    connection.commit()
                else:
                    connection.rollback()
            finally:
                if discard and not connection.invalidated:
                    connection.invalidate()

    def check(self) -> list[str]:
        """Connect once, so that a wrong URL is said at start, not on the first page; what to
        warn of.

        A database that says it is a protected environment (``migrail.environment``) is read
        only, whatever the configuration calls it: a variable can be mislabeled, the database
        cannot (``migrate`` and ``push`` refuse it). Then the studio takes the database's name.
        A superuser's functions act outside any transaction: that is worth a warning where the
        studio promises read only."""
        from sqlalchemy.exc import DBAPIError

        from migrail.postgres.bookkeeping import TableProblem
        from migrail.postgres.database import connection_error
        from migrail.postgres.identity import read_identity

        try:
            with self.engine.connect() as connection:
                superuser = bool(connection.exec_driver_sql(_SUPERUSER).scalar())
                try:
                    identity = read_identity(connection)
                except TableProblem:  # this role cannot read it: the configuration is all
                    identity = None
        except DBAPIError as exc:
            raise connection_error(self.url, exc.orig or exc) from None
        warnings = []
        if identity is not None and identity.protected and not self.protected:
            warnings.append(
                f"the database says it is {identity.name}, a protected environment, but was "
                f"reached as {self.environment}: the studio only reads it"
            )
            self.close()  # its pool's connections were not opened read-only
            self._engine, self.protected, self.environment = None, True, identity.name
        if self.protected and superuser:
            warnings.append(
                f"{self.environment} is protected, and its URL's role is a superuser: a function "
                "can act beyond the read-only transaction (pg_terminate_backend, pg_reload_conf); "
                "give the studio a role that may only read"
            )
        return warnings

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def cursor(connection: Connection) -> psycopg.Cursor[tuple[Any, ...]]:
    """A cursor of psycopg itself on ``connection``, in its transaction: for SQL composed with
    ``psycopg.sql`` (identifiers quoted by the driver) and for streaming results."""
    driver = connection.connection.driver_connection
    assert driver is not None
    return driver.cursor()  # type: ignore[no-any-return]

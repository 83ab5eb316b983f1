"""The one transaction of a run, left by the ways a run can end."""

from __future__ import annotations

import psycopg
import pytest

from migrail.core.urls import libpq_conninfo
from migrail.postgres.ephemeral import Server
from migrail.sqlite_import.target import one_transaction


def test_an_interruption_mid_copy_is_reported_as_such_and_rolls_everything_back(
    pg_server: Server,
) -> None:
    with pg_server.database() as url:
        dsn = libpq_conninfo(url)
        with psycopg.connect(dsn, autocommit=True) as setup:
            setup.execute("CREATE TABLE t (n integer)")
        connection = psycopg.connect(dsn)
        with pytest.raises(KeyboardInterrupt), one_transaction(connection):
            connection.execute("INSERT INTO t VALUES (1)")
            connection.pgconn.send_query(b"COPY t FROM STDIN")  # as Ctrl-C leaves a COPY
            raise KeyboardInterrupt
        assert connection.closed
        with psycopg.connect(dsn) as check:
            assert check.execute("SELECT count(*) FROM t").fetchone() == (0,)

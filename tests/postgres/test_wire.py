"""The driverless query a receipt is read with, against a real private cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrail.postgres.ephemeral import ephemeral_server
from migrail.postgres.wire import WireError, query_rows


def test_rows_nulls_errors_and_several_statements_on_a_private_cluster(private_tmp: Path) -> None:
    with ephemeral_server("embedded") as server:
        socket_dir = Path(str(server.admin_url.query["host"]))
        assert query_rows(socket_dir, "SELECT 1, NULL, 'ж''s'") == [["1", None, "ж's"]]
        many = "SELECT g FROM generate_series(1, 20000) g"  # more than one read of the socket
        assert query_rows(socket_dir, many)[-1] == ["20000"]
        assert query_rows(socket_dir, "CREATE TEMP TABLE t (a int); SELECT 2") == [["2"]]
        with pytest.raises(WireError, match='relation "nowhere" does not exist'):
            query_rows(socket_dir, "SELECT * FROM nowhere")


def test_no_server_is_a_wire_error(tmp_path: Path) -> None:
    with pytest.raises(WireError):
        query_rows(tmp_path, "SELECT 1")

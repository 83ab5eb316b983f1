"""One query to the warm cluster without a driver: PostgreSQL's simple query protocol over its
private socket.

A warm run with nothing new answers from a receipt (``staging.receipts``) in a fifth of a
second, and importing psycopg alone costs three quarters of that (0.15 s measured, asyncio and
importlib.metadata with it). The warm cluster is migrail's own: trust authentication, behind a
socket in a directory only its owner can enter (``postgres.warm``). So the one question such a
run asks is put in the protocol's own words (startup, one simple query, its rows, terminate),
which the socket module can say. Anything unexpected (another authentication asked for, an
error, a broken frame) is ``WireError``, and the run then goes the full way, with psycopg.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

PROTOCOL_3 = 196608
_TIMEOUT_SECONDS = 5.0


class WireError(Exception):
    """The server could not be asked, or answered otherwise than expected."""


def query_rows(socket_dir: Path, sql: str, *, user: str = "postgres") -> list[list[str | None]]:
    """The rows (as text) of the last statement of ``sql`` that returns rows, run as one
    simple query (several statements run in one transaction) on the server whose socket is in
    ``socket_dir``, as ``user`` of database postgres, with no password."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(_TIMEOUT_SECONDS)
        try:
            connection.connect(str(socket_dir / ".s.PGSQL.5432"))
            reader = _Reader(connection)
            parameters = f"user\0{user}\0database\0postgres\0\0".encode()
            connection.sendall(struct.pack("!ii", 8 + len(parameters), PROTOCOL_3) + parameters)
            _until_ready(reader, startup=True)
            body = sql.encode() + b"\0"
            connection.sendall(b"Q" + struct.pack("!i", 4 + len(body)) + body)
            rows = _until_ready(reader, startup=False)
            connection.sendall(b"X" + struct.pack("!i", 4))
        except OSError as exc:
            raise WireError(str(exc)) from None
    return rows


def _until_ready(reader: _Reader, *, startup: bool) -> list[list[str | None]]:
    """Read messages up to ReadyForQuery; the data rows of the last result that had rows."""
    rows: list[list[str | None]] = []
    failure = None
    while True:
        kind, payload = reader.message()
        if kind == b"R" and (not startup or struct.unpack("!i", payload[:4])[0] != 0):
            raise WireError("the server asks for a password")  # not a warm cluster of ours
        if kind == b"E":
            failure = _error_message(payload)
        elif kind == b"T":
            rows = []
        elif kind == b"D":
            rows.append(_data_row(payload))
        elif kind == b"Z":
            if failure is not None:
                raise WireError(failure)
            return rows


def _data_row(payload: bytes) -> list[str | None]:
    (count,) = struct.unpack("!h", payload[:2])
    values: list[str | None] = []
    at = 2
    for _ in range(count):
        (length,) = struct.unpack("!i", payload[at : at + 4])
        at += 4
        if length < 0:
            values.append(None)
            continue
        values.append(payload[at : at + length].decode())
        at += length
    return values


def _error_message(payload: bytes) -> str:
    """The M (message) field of an ErrorResponse."""
    for field in payload.split(b"\0"):
        if field.startswith(b"M"):
            return field[1:].decode(errors="replace")
    return "error"


class _Reader:
    """Whole protocol messages from a socket: a kind byte, a length, the payload."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.buffer = b""

    def message(self) -> tuple[bytes, bytes]:
        header = self._exactly(5)
        (length,) = struct.unpack("!i", header[1:])
        if length < 4:
            raise WireError("a broken message")
        return header[:1], self._exactly(length - 4)

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.connection.recv(max(65536, size - len(self.buffer)))
            if not chunk:
                raise WireError("the server closed the connection")
            self.buffer += chunk
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

"""A TCP proxy in front of a real server, which a test can freeze.

Frozen, it forwards nothing more and keeps every socket open, as a hung proxy or pooler does:
its kernel still acknowledges what the client sends, and answers TCP keepalives, so nothing at
the TCP level tells the client that its server has gone silent.

``python -m testing.proxy PATH`` runs one listening on 127.0.0.1 (the port is printed) and
forwarding to the unix socket ``PATH``: inside a network namespace of its own, whose loopback a
test takes down to lose packets for real.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import threading
from pathlib import Path

from sqlalchemy.engine import URL

Address = tuple[str, int] | str  # (host, port), or the path of a unix socket


def server_address(url: URL) -> Address:
    """Where the server of ``url`` listens: its host and port, or its unix socket."""
    port = url.port or 5432
    if url.host:
        return (url.host, port)
    directory = url.query.get("host")
    assert isinstance(directory, str), f"no host in {url}"
    return f"{directory}/.s.PGSQL.{port}"


class Proxy:
    """Forwards connections from ``listen`` to ``upstream``, in a thread of its own.

    ``freeze_on``: freeze as soon as a client sends these bytes (after forwarding them), so the
    freeze lands inside the statement that contains them, not at a moment a clock guessed.
    """

    def __init__(
        self,
        upstream: Address,
        listen: Address = ("127.0.0.1", 0),
        freeze_on: bytes | None = None,
    ) -> None:
        self.upstream = upstream
        self.freeze_on = freeze_on
        self.frozen = threading.Event()
        self._closed = threading.Event()
        self._listener = _listening(listen)
        self.port = 0 if isinstance(listen, str) else int(self._listener.getsockname()[1])
        self._peers: dict[socket.socket, socket.socket] = {}
        self._clients: set[socket.socket] = set()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="test-proxy", daemon=True)
        self._thread.start()

    def url(self, url: URL) -> URL:
        """``url``'s database, reached through the proxy."""
        return url.difference_update_query(["host"]).set(host="127.0.0.1", port=self.port)

    def close(self) -> None:
        """Stop, and close every socket: the server sees its clients go."""
        self._closed.set()
        self._thread.join(timeout=10)
        for sock in [self._listener, *self._peers]:
            with contextlib.suppress(OSError):
                sock.close()
        self._selector.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            if self.frozen.is_set():
                self._closed.wait(0.1)
                continue
            for key, _ in self._selector.select(timeout=0.1):
                if self.frozen.is_set():
                    break
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                elif sock in self._peers:
                    self._forward(sock)

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        try:
            server = _connected(self.upstream)
        except OSError:
            client.close()  # the client sees the server refuse, as without the proxy
            return
        self._peers[client], self._peers[server] = server, client
        self._clients.add(client)
        for sock in (client, server):
            self._selector.register(sock, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
        except OSError:
            data = b""
        if not data:  # one side went: the other is closed too, as a proxy does
            for end in (sock, peer):
                self._selector.unregister(end)
                self._peers.pop(end, None)
                self._clients.discard(end)
                end.close()
        elif self.freeze_on is not None and self.freeze_on in data and sock in self._clients:
            self.frozen.set()


def _listening(address: Address) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen()
    return sock


def _connected(address: Address) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
        return sock
    return socket.create_connection(address)


def main(path: str) -> None:
    """Forward 127.0.0.1:<port printed> to the unix socket ``path`` until stdin closes."""
    proxy = Proxy(path)
    print(proxy.port, flush=True)
    sys.stdin.read()
    proxy.close()


if __name__ == "__main__":
    main(str(Path(sys.argv[1])))

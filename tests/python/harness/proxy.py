"""A TCP proxy between one client and a server, so a test can cut the client off.

Session expiry, reconnects with the same session and SetWatches are only observable when a
client loses its connection while the server keeps running. Clients connect to the proxy's port;
`cut()` closes every forwarded connection and turns new ones away, exactly as if the network
between that client and the server failed, and `restore()` lets the client back in. Nothing
else about the traffic is touched: bytes are forwarded as they come.
"""

from __future__ import annotations

import socket
import threading


def _close(sock: socket.socket) -> None:
    # shutdown() wakes a thread blocked in recv() on the same socket; close() alone does not.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._refusing = False
        self._closed = False
        self.accepted = 0
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"proxy-{self.port}", daemon=True
        )
        self._acceptor.start()

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every forwarded connection and refuse new ones until `restore()`."""
        with self._lock:
            self._refusing = True
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            _close(client)
            _close(upstream)

    def drop(self) -> None:
        """Drop every forwarded connection once; the client may reconnect at once."""
        self.cut()
        self.restore()

    def restore(self) -> None:
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.cut()
        _close(self._listener)
        self._acceptor.join(timeout=5)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                turned_away = self._refusing or self._closed
            if turned_away:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._refusing or self._closed:
                    _close(client)
                    _close(upstream)
                    continue
                self._pairs.append((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(src, dst, (client, upstream)), daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
        _close(src)
        _close(dst)

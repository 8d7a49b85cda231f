"""A TCP relay the chaos test controls: `cut()` drops every connection and refuses new ones until `restore()`.

It stands for the WAN link between an agent and its hub (or NATS); the peers on both ends are real.
"""

from __future__ import annotations

import socket
import threading

from tests.support.procs import free_port


class LinkProxy:
    """Relays 127.0.0.1:`port` to 127.0.0.1:`target_port` on plain threads."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._up = True
        self._closed = False
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self.cuts = 0
        self.bytes_up = 0  # client → target, as sent on the wire (TLS records included)
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def cut(self) -> None:
        """The link goes down: open connections are reset, new ones are closed at once."""
        with self._lock:
            self._up = False
            self.cuts += 1
            for c in self._conns:
                _close(c)
            self._conns.clear()

    def restore(self) -> None:
        with self._lock:
            self._up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if not self._up:
                    _close(client)
                    continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                _close(client)  # the hub is down: the agent sees a refused link, as over a WAN
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if up:
                    self.bytes_up += len(data)  # one writer thread per connection; a bench reads it after
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()

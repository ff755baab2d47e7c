"""A TCP proxy on loopback that a test can cut: the app's road to a dependency (PostgreSQL,
Redis) goes through it. `refuse()` makes the dependency refuse (every open connection
reset, new ones refused), `cut()` makes it unreachable without a word (connections are
accepted and kept, nothing passes either way: a dead host or a partition, which only a
timeout reveals), each until `resume()`."""

from __future__ import annotations

import contextlib
import socket
import threading


class Proxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False

    def resume(self) -> None:
        """Listen (on the same port as before, once there was one), or end a cut: what was
        held during it is reset (its bytes were lost, so the clients must start over)."""
        if self._cut:
            self._cut = False
            self._reset_all()
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def refuse(self) -> None:
        """Stop listening and reset every connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._cut = False
        self._reset_all()

    def cut(self) -> None:
        """Keep accepting, but let nothing through, and answer nothing."""
        self._cut = True

    def _reset_all(self) -> None:
        with self._lock:
            doomed, self._open = self._open, set()
        for conn in doomed:  # as a server that goes down: both ends see the close at once
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked on it; close alone
            conn.close()  # would not while another thread is in recv()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # refused: the listener is closed
            if self._cut:  # held open, silent, until the cut ends
                with self._lock:
                    self._open.add(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._cut:  # cut: the bytes are lost on the way
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

"""The port relay: a kernel's ports open on the host only once the kernel listens behind them.

Some engines publish ports through a proxy process (rootless Podman's rootlessport, Docker's
docker-proxy) that accepts a connection before the kernel listens, then drops it. ZeroMQ
reconnects, but a frontend's IOPub socket (SUB) sends its subscription again only when the
frontend next touches that socket, so the output of its first request can be lost:
``jupyter console`` then waits forever on its first cell. On those engines the container's
ports are published on spare host ports instead, and once the kernel answers on every one of
them the relay listens on the connection file's ports and copies each connection through.
Until then connecting is refused, as with a kernel on the host, and ZeroMQ keeps its
subscription. The shell and control ports open last, a little after the others, so that a
frontend's IOPub is connected before its first request can be answered (``jupyter console``
sends its first cell without waiting for IOPub).
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time

# How often the relay asks whether the kernel listens yet: often at first, rarely after a while.
PROBE_INTERVAL_S = 0.05
SLOW_PROBE_AFTER_S = 30.0
SLOW_PROBE_INTERVAL_S = 0.5
# A kernel's ZeroMQ greets at once; a connection held this long without a greeting is taken as an answer too.
PROBE_TIMEOUT_S = 1.0
# How long the relay waits for the connection file's ports while the previous kernel's launcher lets go of them.
PORT_WAIT_S = 3.0
# How much sooner IOPub opens than shell and control: more than ZeroMQ's reconnect interval
# (100 ms plus up to 100 ms of jitter), so that every frontend already trying has connected it.
IOPUB_HEAD_START_S = 0.25
CHUNK_BYTES = 65536


def spare_ports(count: int) -> list[int]:
    """``count`` ports on 127.0.0.1 that nothing uses now, for the engine to publish the kernel on."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def kernel_answers(port: int) -> bool:
    """Whether the kernel listens behind published ``port``: the proxy does not drop a connection to it."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT_S) as probe:
            return bool(probe.recv(1))
    except socket.timeout:
        return True
    except OSError:
        return False


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy ``source`` to ``target`` until either ends; then shut both, which ends the other direction too."""
    try:
        while data := source.recv(CHUNK_BYTES):
            target.sendall(data)
    except OSError:
        pass
    for end in (source, target):
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _splice(client: socket.socket, upstream: socket.socket) -> None:
    """Copy both ways between a frontend's connection and the published port, then close both."""
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _listen(port: int) -> socket.socket | None:
    """A listening socket on 127.0.0.1:``port``, or None while something else holds the port."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError:
        listener.close()
        return None
    listener.listen(64)
    return listener


class PortRelay:
    """Relays each connection file port to the port the engine published it on (``routes``), once the kernel answers.

    The ports in ``last`` (shell and control) open :data:`IOPUB_HEAD_START_S` after the
    others. It works in daemon threads. Should it fail (a port held by another program),
    ``error`` says why and ``failed`` (a file descriptor to poll) becomes readable.
    """

    def __init__(self, routes: dict[int, int], last: tuple[int, ...] = ()):
        self.routes = routes
        self.last = last
        self.error = ""
        self.failed, self._failed_write = os.pipe2(os.O_CLOEXEC)

    def start(self) -> None:
        threading.Thread(target=self._serve, name="podkernel-relay", daemon=True).start()

    def _serve(self) -> None:
        self._wait_for_kernel()
        selector = selectors.DefaultSelector()
        first = {port: target for port, target in self.routes.items() if port not in self.last}
        if not self._listen_all(first, selector):
            return
        self._accept(selector, until=time.monotonic() + IOPUB_HEAD_START_S)
        if not self._listen_all({port: self.routes[port] for port in self.last}, selector):
            return
        self._accept(selector, until=None)

    def _accept(self, selector: selectors.BaseSelector, until: float | None) -> None:
        """Relay each new connection to the listeners in ``selector``, until the ``until`` deadline or forever."""
        while until is None or time.monotonic() < until:
            for key, _ in selector.select(None if until is None else max(0.0, until - time.monotonic())):
                try:
                    client, _ = key.fileobj.accept()
                    upstream = socket.create_connection(("127.0.0.1", key.data))
                except OSError:  # the frontend gave up at once, or the container is going away
                    continue
                for end in (client, upstream):
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                threading.Thread(target=_splice, args=(client, upstream), daemon=True).start()

    def _wait_for_kernel(self) -> None:
        started = time.monotonic()
        waiting = set(self.routes.values())
        while waiting:
            waiting = {port for port in waiting if not kernel_answers(port)}
            if waiting:
                slow = time.monotonic() - started > SLOW_PROBE_AFTER_S
                time.sleep(SLOW_PROBE_INTERVAL_S if slow else PROBE_INTERVAL_S)

    def _listen_all(self, routes: dict[int, int], selector: selectors.BaseSelector) -> bool:
        """Listen on ``routes``' ports (waiting a little for a previous launcher to let go of them); False on failure."""
        waiting = dict(routes)
        deadline = time.monotonic() + PORT_WAIT_S
        while waiting:
            for port in list(waiting):
                listener = _listen(port)
                if listener is not None:
                    selector.register(listener, selectors.EVENT_READ, waiting.pop(port))
            if waiting and time.monotonic() > deadline:
                self.error = (
                    f"port(s) {', '.join(map(str, sorted(waiting)))} of this kernel are taken by another program: "
                    f"restart the kernel so that Jupyter picks new ports, or stop that program"
                )
                os.write(self._failed_write, b"!")
                return False
            if waiting:
                time.sleep(0.02)
        return True

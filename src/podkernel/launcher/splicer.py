"""Copies bytes both ways between frontends' connections and the kernel's ports, in one thread.

One event loop, non-blocking sockets and no thread per connection: however many connections
another local user opens, the launcher neither spins nor runs out of threads. It bounds what
it holds (connections at once, a client that says nothing), and pauses accepting while the
process is out of file descriptors instead of busy-looping on the error.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable

from ..model.launch import Address

CHUNK_BYTES = 65536
# A ZeroMQ peer sends its greeting the moment it connects: a connection that has sent nothing
# for this long is not a frontend, and is closed.
SILENT_CLIENT_S = 10.0
# A connection to the kernel's published port on 127.0.0.1 is established at once or is lost
# (its SYN translated to an address that no longer answers): it is made again after this
# long, from a new source port, while what the frontend has sent waits unread.
CONNECT_S = 1.0
# At most this many relayed connections at once (a frontend uses 5); more wait in the backlog.
MAX_CONNECTIONS = 2048
# How long accepting pauses when the process is out of file descriptors.
EXHAUSTED_PAUSE_S = 0.5


def upstream_socket(address: Address) -> socket.socket:
    """A new non-blocking socket of the kind that reaches ``address``; :func:`connect_upstream` connects it."""
    upstream = socket.socket(socket.AF_UNIX if isinstance(address, str) else socket.AF_INET)
    upstream.setblocking(False)
    if not isinstance(address, str):
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return upstream


def socket_address(address: Address) -> str | tuple[str, int]:
    """What ``connect`` takes for ``address``."""
    return address if isinstance(address, str) else ("127.0.0.1", address)


def connect_upstream(upstream: socket.socket, address: Address) -> None:
    """Start connecting ``upstream`` (from :func:`upstream_socket`) to ``address``; writable once done."""
    upstream.connect_ex(socket_address(address))


class _Link:
    """A frontend's connection and its connection to the kernel's published port."""

    def __init__(self, client: socket.socket, upstream: socket.socket, port: Address):
        self.client, self.upstream, self.port = client, upstream, port
        self.pending = {client: b"", upstream: b""}  # bytes waiting to be written to that socket
        self.connected = False  # the upstream connection is established
        self.ending = False  # one side has ended: deliver what is pending, then close both
        self.heard = False  # the client has sent something
        self.accepted = self.connecting_since = time.monotonic()

    def peer(self, end: socket.socket) -> socket.socket:
        return self.upstream if end is self.client else self.client

    def events(self, end: socket.socket) -> int:
        """What to wait for on ``end``: to write what is pending for it, to read while its peer has nothing pending."""
        if not self.connected:
            return selectors.EVENT_WRITE if end is self.upstream else 0
        events = selectors.EVENT_WRITE if self.pending[end] else 0
        if not self.ending and not self.pending[self.peer(end)]:
            events |= selectors.EVENT_READ
        return events


class Splicer:
    """Relays connections accepted on registered listeners to the address ``upstream_port(key)``."""

    def __init__(self, upstream_port: Callable[[str], Address]):
        self._upstream_port = upstream_port
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[socket.socket, str] = {}
        self._links: dict[socket.socket, _Link] = {}
        self._paused_until = 0.0

    def listen(self, listener: socket.socket, key: str) -> None:
        """Relay the connections that arrive on ``listener`` (already listening) for port ``key``."""
        listener.setblocking(False)
        self._listeners[listener] = key
        if not self._paused_until:
            self._selector.register(listener, selectors.EVENT_READ)

    @property
    def connections(self) -> int:
        return len(self._links) // 2

    def run(self, until: float | None = None, watch: str | None = None) -> bool:
        """Relay until the monotonic time ``until`` (None: for ever); return True as soon as a connection
        to the port ``watch`` has been taken, False when ``until`` has come."""
        while until is None or time.monotonic() < until:
            self._resume_accepting()
            now = time.monotonic()  # awake at the latest when a connection is due to be made again
            wake = [link.connecting_since + CONNECT_S for link in self._links.values() if not link.connected]
            timeout = max(0.0, min([now + 1.0, *wake, *([until] if until is not None else [])]) - now)
            taken = []
            for selected, events in self._selector.select(timeout):
                end = selected.fileobj
                if end in self._listeners:
                    taken += self._accept(end)
                elif end in self._links:
                    self._service(self._links[end], end, events)
            self._close_silent_clients()
            if watch in taken:
                return True
        return False

    def _accept(self, listener: socket.socket) -> list[str]:
        if self.connections >= MAX_CONNECTIONS:
            self._pause()
            return []
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return []
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self._pause()
            return []
        address = self._upstream_port(self._listeners[listener])
        try:
            upstream = upstream_socket(address)
        except OSError:
            client.close()
            self._pause()
            return []
        link = _Link(client, upstream, address)
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for end in (client, upstream):
            self._links[end] = link
        connect_upstream(upstream, address)
        self._update(link)
        return [self._listeners[listener]]

    def _pause(self) -> None:
        """Stop accepting for a moment: connections wait in the backlog meanwhile."""
        if not self._paused_until:
            for listener in self._listeners:
                self._selector.unregister(listener)
        self._paused_until = time.monotonic() + EXHAUSTED_PAUSE_S

    def _resume_accepting(self) -> None:
        if self._paused_until and time.monotonic() >= self._paused_until:
            self._paused_until = 0.0
            for listener in self._listeners:
                self._selector.register(listener, selectors.EVENT_READ)

    def _service(self, link: _Link, end: socket.socket, events: int) -> None:
        try:
            if end is link.upstream and not link.connected:
                if end.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise ConnectionRefusedError  # the container is going away
                link.connected = True
            else:
                if events & selectors.EVENT_WRITE:
                    self._flush(link, end)
                if events & selectors.EVENT_READ:
                    self._read(link, end)
        except OSError:
            self._close(link)
            return
        self._update(link)

    def _read(self, link: _Link, end: socket.socket) -> None:
        try:
            data = end.recv(CHUNK_BYTES)
        except BlockingIOError:
            return
        if not data:  # one side ended: so does the other, once it has what was sent before
            link.ending = True
            return
        if end is link.client:
            link.heard = True
        link.pending[link.peer(end)] = data
        self._flush(link, link.peer(end))

    def _flush(self, link: _Link, end: socket.socket) -> None:
        try:
            sent = end.send(link.pending[end])
        except BlockingIOError:
            sent = 0
        link.pending[end] = link.pending[end][sent:]

    def _update(self, link: _Link) -> None:
        if link.ending and not any(link.pending.values()):
            self._close(link)
            return
        for end in (link.client, link.upstream):
            events = link.events(end)
            registered = self._selector.get_map().get(end)
            if not events and registered:
                self._selector.unregister(end)
            elif events and not registered:
                self._selector.register(end, events)
            elif events and registered.events != events:
                self._selector.modify(end, events)

    def _close_silent_clients(self) -> None:
        """Close clients that said nothing for too long; connect again where the kernel side did not connect."""
        now = time.monotonic()
        silent = {id(link): link for link in self._links.values() if not link.heard}
        for link in silent.values():
            if now - link.accepted > SILENT_CLIENT_S:
                self._close(link)
            elif not link.connected and now - link.connecting_since > CONNECT_S:
                self._connect_again(link)

    def _connect_again(self, link: _Link) -> None:
        """A new connection to the kernel's port, over a new source port; the client's bytes wait unread."""
        if self._selector.get_map().get(link.upstream):
            self._selector.unregister(link.upstream)
        self._links.pop(link.upstream, None)
        link.pending.pop(link.upstream, None)
        link.upstream.close()
        try:
            link.upstream = upstream_socket(link.port)
        except OSError:
            self._close(link)
            return
        link.pending[link.upstream] = b""
        self._links[link.upstream] = link
        link.connecting_since = time.monotonic()
        connect_upstream(link.upstream, link.port)
        self._update(link)

    def _close(self, link: _Link) -> None:
        for end in (link.client, link.upstream):
            if self._links.pop(end, None) is not None and self._selector.get_map().get(end):
                self._selector.unregister(end)
            end.close()

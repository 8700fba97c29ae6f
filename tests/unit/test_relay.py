"""The port relay, over real sockets on 127.0.0.1: a stand-in kernel that starts listening late."""

import os
import select
import socket
import threading
import time

from podkernel import relay
from podkernel.relay import PortRelay, kernel_answers, spare_ports

GREETING = b"\xff" + bytes(8) + b"\x7f"  # how a ZeroMQ peer's greeting begins


def stop_listening(listener: socket.socket) -> None:
    """Close a listening socket, waking the thread blocked in its accept() (close alone does not)."""
    try:
        listener.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    listener.close()


class StandInKernel:
    """Listens on a port when told to; greets each connection, then echoes what it gets."""

    def __init__(self, port: int):
        self.port = port
        self.listener = None

    def listen(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    @staticmethod
    def _echo(connection: socket.socket) -> None:
        with connection:
            try:
                connection.sendall(GREETING)
                while data := connection.recv(65536):
                    connection.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        if self.listener:
            stop_listening(self.listener)


class DroppingProxy:
    """What rootlessport does while the kernel is not listening yet: accept, then close."""

    def __init__(self, port: int):
        self.listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            connection.close()

    def close(self) -> None:
        stop_listening(self.listener)


def connect(port: int) -> socket.socket | None:
    """A connection to ``port``, or None when it is refused."""
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionRefusedError:
        return None


def receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_spare_ports_are_distinct_and_free():
    ports = spare_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.create_server(("127.0.0.1", port)):
            pass


def test_kernel_answers_only_when_a_kernel_greets():
    port = spare_ports(1)[0]
    assert not kernel_answers(port)  # nothing listens: refused
    proxy = DroppingProxy(port)
    try:
        assert not kernel_answers(port)  # accepted, then dropped
    finally:
        proxy.close()
    kernel = StandInKernel(port)
    kernel.listen()
    try:
        assert kernel_answers(port)
    finally:
        kernel.close()


def test_ports_are_refused_until_the_kernel_answers_then_relayed_both_ways():
    iopub, shell, published_iopub, published_shell = spare_ports(4)
    kernels = [StandInKernel(published_iopub), StandInKernel(published_shell)]
    the_relay = PortRelay({iopub: published_iopub, shell: published_shell}, last=(shell,))
    the_relay.start()
    try:
        time.sleep(0.3)
        assert connect(iopub) is None and connect(shell) is None
        for kernel in kernels:
            kernel.listen()
        deadline = time.monotonic() + 5
        while (connection := connect(iopub)) is None:
            assert time.monotonic() < deadline, "the relay never opened"
            time.sleep(0.01)
        opened = time.monotonic()
        # Shell opens last, IOPUB_HEAD_START_S after IOPub.
        assert connect(shell) is None
        while (shell_connection := connect(shell)) is None:
            time.sleep(0.01)
        assert time.monotonic() - opened >= relay.IOPUB_HEAD_START_S - 0.05
        for each in (connection, shell_connection):
            with each:
                assert receive(each, len(GREETING)) == GREETING
                payload = os.urandom(1_000_000)
                sender = threading.Thread(target=each.sendall, args=(payload,))
                sender.start()
                assert receive(each, len(payload)) == payload
                sender.join()
    finally:
        for kernel in kernels:
            kernel.close()


def test_a_connection_ends_when_the_kernel_side_ends():
    port, published = spare_ports(2)
    kernel = StandInKernel(published)
    kernel.listen()
    PortRelay({port: published}).start()
    deadline = time.monotonic() + 5
    while (connection := connect(port)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with connection:
        assert receive(connection, len(GREETING)) == GREETING
        connection.shutdown(socket.SHUT_WR)  # the frontend is done: the stand-in's echo loop ends
        assert connection.recv(10) == b""
    kernel.close()


def test_a_port_held_by_another_program_fails_the_relay(monkeypatch):
    monkeypatch.setattr(relay, "PORT_WAIT_S", 0.2)
    port, published = spare_ports(2)
    kernel = StandInKernel(published)
    kernel.listen()
    squatter = socket.create_server(("127.0.0.1", port))
    try:
        the_relay = PortRelay({port: published})
        the_relay.start()
        readable, _, _ = select.select([the_relay.failed], [], [], 5)
        assert readable == [the_relay.failed]
        assert f"port(s) {port} of this kernel are taken by another program" in the_relay.error
    finally:
        squatter.close()
        kernel.close()


def test_many_clients_at_once():
    clients = 8
    port, published = spare_ports(2)
    kernel = StandInKernel(published)
    kernel.listen()
    PortRelay({port: published}).start()
    deadline = time.monotonic() + 5
    while (first := connect(port)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    connections = [first] + [connect(port) for _ in range(clients - 1)]
    for index, connection in enumerate(connections):
        assert receive(connection, len(GREETING)) == GREETING
        connection.sendall(b"client %d" % index)
    for index, connection in enumerate(connections):
        expected = b"client %d" % index
        assert receive(connection, len(expected)) == expected
        connection.close()
    kernel.close()

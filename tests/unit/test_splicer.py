"""The splicer under abuse, over real sockets: silent clients, descriptor exhaustion, a failing relay."""

import os
import resource
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from helpers import cpu_seconds
from podkernel.launcher import relay, splicer
from podkernel.launcher.splicer import Splicer

SOURCE = str(Path(__file__).resolve().parents[2] / "src")


def echo_server() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    def echo(connection):
        with connection:
            try:
                while data := connection.recv(65536):
                    connection.sendall(data)
            except OSError:  # the splicer closed it: a silent client, or the test's end
                pass

    threading.Thread(target=serve, daemon=True).start()
    return server


def started_splicer(upstream: int) -> int:
    listener = socket.create_server(("127.0.0.1", 0))
    the_splicer = Splicer(lambda key: upstream)
    the_splicer.listen(listener, "shell_port")
    threading.Thread(target=the_splicer.run, daemon=True).start()
    return listener.getsockname()[1]


def round_trip(port: int, payload: bytes = b"hello") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_a_client_that_says_nothing_is_closed(monkeypatch):
    monkeypatch.setattr(splicer, "SILENT_CLIENT_S", 0.3)
    port = started_splicer(echo_server().getsockname()[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
        started = time.monotonic()
        assert silent.recv(10) == b""
        assert 0.3 <= time.monotonic() - started < 3
    assert round_trip(port) == b"hello"


def test_a_lost_connection_to_the_kernel_is_made_again_while_the_client_waits(monkeypatch):
    """A SYN that vanishes (a stale translation in the wild) is tried again from a new socket every
    CONNECT_S, not only at TCP's own 1 s, 3 s, 7 s...; the client stays connected, its bytes unread."""
    from test_relay import port_that_drops_syns

    monkeypatch.setattr(splicer, "CONNECT_S", 0.2)
    with port_that_drops_syns() as lost:
        port = started_splicer(lost)
        created = []

        class CountedSocket(socket.socket):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                created.append(self)

        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            monkeypatch.setattr(socket, "socket", CountedSocket)  # from here on: the splicer's new ones
            client.sendall(b"greeting")
            time.sleep(1.1)
            monkeypatch.undo()
            assert len(created) >= 3, f"{len(created)} new connections to the kernel's port in 1.1 s"
            client.settimeout(0.1)
            try:
                client.recv(10)
                raise AssertionError("the client was closed")
            except TimeoutError:
                pass  # still connected, waiting


RELAY_WITH_FEW_DESCRIPTORS = textwrap.dedent(
    """
    import resource, socket, sys
    from podkernel.launcher.splicer import Splicer
    resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
    listener = socket.create_server(("127.0.0.1", 0))
    the_splicer = Splicer(lambda key: int(sys.argv[1]))
    the_splicer.listen(listener, "shell_port")
    print(listener.getsockname()[1], flush=True)
    the_splicer.run()
    """
)


def test_out_of_descriptors_it_neither_spins_nor_dies_and_recovers():
    """Another local user can open idle connections until the launcher has no descriptor left."""
    server = echo_server()
    process = subprocess.Popen(
        [sys.executable, "-c", RELAY_WITH_FEW_DESCRIPTORS, str(server.getsockname()[1])],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=SOURCE),
    )
    try:
        port = int(process.stdout.readline())
        flood = []
        for _ in range(60):  # each takes two of the relay's 40 descriptors
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            flood[-1].sendall(b"x")  # not silent: only running out of descriptors ends them
        before = cpu_seconds(process.pid)
        time.sleep(2)
        assert cpu_seconds(process.pid) - before < 0.5, "the relay spins while out of descriptors"
        assert process.poll() is None
        for connection in flood:
            connection.close()
        deadline = time.monotonic() + 10
        while round_trip(port) != b"hello":
            assert time.monotonic() < deadline, "the relay did not recover"
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait()


def test_a_relay_that_fails_says_so(monkeypatch):
    def broken(self, until=None, watch=None):
        raise OSError("boom")

    monkeypatch.setattr(Splicer, "run", broken)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        connection_port = probe.getsockname()[1]
    the_relay = relay.PortRelay({"shell_port": connection_port})
    the_relay.published_ports = {"shell_port": echo_server().getsockname()[1]}  # a "kernel" that listens
    the_relay.hold_connection_ports()
    the_relay.start()
    readable, _, _ = select.select([the_relay.failed], [], [], 5)
    assert readable == [the_relay.failed]
    assert "the port relay failed" in the_relay.error


def test_the_launcher_may_use_every_descriptor_it_is_allowed():
    relay.PortRelay({}).start()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard

"""The port relay, over real sockets on 127.0.0.1: a stand-in kernel that starts listening late."""

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from podkernel.errors import PodkernelError
from podkernel.launcher import relay
from podkernel.launcher.relay import PortRelay, hold_port, hold_spare_port, kernel_answers

GREETING = b"\xff" + bytes(8) + b"\x7f"  # how a ZeroMQ peer's greeting begins


def stop_listening(listener: socket.socket) -> None:
    """Close a listening socket, waking the thread blocked in its accept() (close alone does not)."""
    try:
        listener.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    listener.close()


class Listener:
    """Listens on a port when told to and hands each connection to ``handle`` in a thread of its own."""

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
            threading.Thread(target=self.handle, args=(connection,), daemon=True).start()

    def handle(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.listener:
            stop_listening(self.listener)


class StandInKernel(Listener):
    """Greets each connection as a ZeroMQ peer does, then echoes what it gets."""

    def handle(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.sendall(GREETING)
                while data := connection.recv(65536):
                    connection.sendall(data)
            except OSError:
                pass


class DroppingProxy(Listener):
    """What rootlessport does while the kernel is not listening yet: accept, then close."""

    def __init__(self, port: int):
        super().__init__(port)
        self.listen()

    def handle(self, connection: socket.socket) -> None:
        connection.close()


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_open(port: int) -> socket.socket:
    deadline = time.monotonic() + 5
    while (connection := connect(port)) is None:
        assert time.monotonic() < deadline, "the relay never opened"
        time.sleep(0.01)
    return connection


def test_a_spare_port_refuses_connections_and_is_given_to_nobody_else():
    holder = hold_spare_port()
    port = holder.getsockname()[1]
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            assert port < int(handle.read().split()[0])  # never a port Jupyter would pick
        assert connect(port) is None
        for _ in range(200):  # other launchers' spare ports
            other = hold_spare_port()
            assert other.getsockname()[1] != port
            other.close()
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))  # what bind(0) and jupyter_client do
    finally:
        holder.close()


def test_the_engines_proxy_can_listen_on_a_spare_port():
    holder = hold_spare_port()
    try:
        proxy = socket.create_server(("127.0.0.1", holder.getsockname()[1]))  # SO_REUSEADDR, as Go's listeners
        proxy.close()
    finally:
        holder.close()


def test_a_held_connection_port_refuses_connections():
    port = free_port()
    holder = hold_port(port)
    try:
        assert connect(port) is None
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    finally:
        holder.close()


def test_kernel_answers_only_when_a_kernel_greets():
    port = free_port()
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


@contextmanager
def port_that_drops_syns():
    """A port whose connections are never established, as one that netfilter translates to a
    container that is gone (or whose network is not up yet): a listener with a full accept queue."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    queued = []
    for _ in range(3):
        waiting = socket.socket()
        waiting.setblocking(False)
        waiting.connect_ex(server.getsockname())
        queued.append(waiting)
    time.sleep(0.2)
    try:
        yield server.getsockname()[1]
    finally:
        for each in (*queued, server):
            each.close()


def test_a_port_whose_connection_is_never_established_is_no_answer():
    with port_that_drops_syns() as port:
        assert not kernel_answers(port)


def started_relay(ports: dict[str, int]) -> tuple[PortRelay, list[StandInKernel]]:
    """A relay for ``ports`` whose stand-in kernels are not listening yet."""
    the_relay = PortRelay(ports)
    the_relay.hold_connection_ports()
    kernels = [StandInKernel(port) for port in the_relay.published_ports.values()]
    the_relay.start()  # lets go of the spare ports: the stand-ins take them below
    return the_relay, kernels


def test_ports_are_refused_until_the_kernel_answers_then_relayed_both_ways():
    iopub, shell = free_port(), free_port()
    the_relay, kernels = started_relay({"iopub_port": iopub, "shell_port": shell})
    try:
        time.sleep(0.3)
        assert connect(iopub) is None and connect(shell) is None
        for kernel in kernels:
            kernel.listen()
        connection = wait_until_open(iopub)
        shell_connection = wait_until_open(shell)
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


def greeted_at(connection: socket.socket) -> float:
    assert receive(connection, len(GREETING)) == GREETING
    return time.monotonic()


@contextmanager
def relayed_kernel(*keys: str):
    """A relay in front of a listening stand-in kernel; yields the connection ports by key."""
    the_relay, kernels = started_relay({key: free_port() for key in keys})
    for kernel in kernels:
        kernel.listen()
    try:
        yield the_relay.ports
    finally:
        for kernel in kernels:
            kernel.close()


def test_shell_waits_for_an_iopub_connection():
    """A frontend's IOPub is relayed before its shell, so that its subscription is in place first."""
    with relayed_kernel("iopub_port", "shell_port") as ports:
        with wait_until_open(ports["shell_port"]) as shell_connection:  # waits in the listen backlog
            time.sleep(0.05)
            with connect(ports["iopub_port"]) as iopub_connection:
                iopub_greeted = greeted_at(iopub_connection)
                shell_greeted = greeted_at(shell_connection)
    assert iopub_greeted < shell_greeted < iopub_greeted + relay.SUBSCRIPTION_SETTLE_S + 0.1


def test_shell_opens_after_the_head_start_without_an_iopub_connection():
    with relayed_kernel("iopub_port", "shell_port") as ports, wait_until_open(ports["shell_port"]) as shell:
        connected = time.monotonic()
        assert greeted_at(shell) - connected >= relay.IOPUB_HEAD_START_S - 0.1


def test_a_connection_ends_when_the_frontend_ends_it():
    the_relay, (kernel,) = started_relay({"iopub_port": free_port()})
    kernel.listen()
    with wait_until_open(the_relay.ports["iopub_port"]) as connection:
        assert receive(connection, len(GREETING)) == GREETING
        connection.shutdown(socket.SHUT_WR)  # the frontend is done: the stand-in's echo loop ends
        assert connection.recv(10) == b""
    kernel.close()


def test_a_connection_port_held_by_another_program_is_reported():
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        with pytest.raises(PodkernelError, match=f"port\\(s\\) {port} of this kernel are taken"):
            PortRelay({"shell_port": port}).hold_connection_ports(wait_s=0.1)


TAKEOVER = """
import socket, sys
squatter = socket.socket()
squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    squatter.bind(("127.0.0.1", int(sys.argv[1])))
    squatter.listen()
except OSError:
    sys.exit(0)
sys.exit("took the port over")
"""


@pytest.mark.parametrize("who", ["the same user", "another user"])
def test_no_one_can_take_over_a_held_connection_port(who):
    """Linux lets any user bind a port whose holders all set SO_REUSEADDR and none listens."""
    if who == "another user" and os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    become = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if who == "another user" else []
    port = free_port()
    holder = hold_port(port)
    try:
        squatter = subprocess.run([*become, sys.executable, "-c", TAKEOVER, str(port)], capture_output=True, text=True)
        assert squatter.returncode == 0, squatter.stderr
    finally:
        holder.close()


def test_a_restart_holds_ports_that_the_previous_launcher_releases_while_it_waits():
    port = free_port()
    previous = socket.create_server(("127.0.0.1", port))
    threading.Timer(0.3, stop_listening, args=(previous,)).start()
    the_relay = PortRelay({"shell_port": port})
    started = time.monotonic()
    the_relay.hold_connection_ports(wait_s=5)
    assert 0.3 <= time.monotonic() - started < 2


def test_a_held_port_can_be_listened_on_despite_lingering_connections():
    """A restart reuses ports on which the previous launcher's connections linger in TIME_WAIT."""
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the launcher's end closes first: TIME_WAIT on the port
    client.close()
    listener.close()
    holder = hold_port(port)
    try:
        relay.listen_on_held(holder)
        assert connect(port) is not None
    finally:
        holder.close()


def test_many_clients_at_once():
    the_relay, (kernel,) = started_relay({"iopub_port": free_port()})
    kernel.listen()
    port = the_relay.ports["iopub_port"]
    connections = [wait_until_open(port)] + [connect(port) for _ in range(7)]
    for index, connection in enumerate(connections):
        assert receive(connection, len(GREETING)) == GREETING
        connection.sendall(b"client %d" % index)
    for index, connection in enumerate(connections):
        expected = b"client %d" % index
        assert receive(connection, len(expected)) == expected
        connection.close()
    kernel.close()


def test_a_spare_port_reaches_itself_and_then_refuses_connections():
    """The probe that passes over ports translated elsewhere (tests/integration/test_host.py has
    a real translation) leaves a spare port bound, refusing connections, for the engine's proxy."""
    holder = hold_spare_port()
    port = holder.getsockname()[1]
    try:
        assert relay.reaches_itself(holder)
        assert connect(port) is None
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        socket.create_server(("127.0.0.1", port)).close()
    finally:
        holder.close()


def test_ports_with_a_translation_rule_are_no_spares_even_when_the_rule_is_dormant():
    """netavark 1.4 left a removed container's DNAT rule in its chain with no jump to it; it woke
    up when the port was published again (CI: a restarted kernel's control port never answered)."""
    chain = "-A NETAVARK-DN-1D8721804F16F -d 127.0.0.1/32 -p tcp -m tcp"
    rules = "\n".join(
        [
            f"{chain} --dport 29901 -j DNAT --to-destination 10.88.6.99:1",
            f"{chain} --dport 26632 -j NETAVARK-HOSTPORT-SETMARK",
            "-A NETAVARK-HOSTPORT-DNAT -p tcp -m tcp --dport 30405 -j NETAVARK-DN-1D8721804F16F",
            "-A CNI-DN-abc -p tcp -m tcp --dport 2999 -j DNAT --to-destination 10.89.0.5:2999",
        ]
    )
    assert relay.dnat_ports(rules) == {29901, 2999}
    low = relay._ephemeral_low()
    avoid = frozenset(range(low - relay.SPARE_RANGE, low, 2))  # every other port of the spare range
    for _ in range(20):
        with relay.hold_spare_port(avoid) as holder:
            assert holder.getsockname()[1] not in avoid

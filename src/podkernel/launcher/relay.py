"""The port relay: frontends connect to the launcher, which forwards to the kernel's container.

The container's ports are published on spare host ports, fresh for every container. The
relay holds the connection file's ports from the start (bound, not listening: connecting is
refused, as with a kernel on the host) and listens on them only once the kernel greets on
every spare port, IOPub before shell and control. So a frontend never reaches a port that
accepts and then drops it (rootless Podman's and Docker's proxies do, before the kernel
listens), nor one that the engine translates to a container that is gone (rootful Podman's
netfilter rules, after a restart). The README's "How a kernel runs" tells the whole story.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable

from ..errors import PodkernelError
from ..model.launch import Address
from .splicer import Splicer, socket_address, upstream_socket

# How often the relay asks whether the kernel listens yet: often at first, rarely after a while.
PROBE_INTERVAL_S = 0.02
SLOW_PROBE_AFTER_S = 10.0
SLOW_PROBE_INTERVAL_S = 0.5
# A kernel's ZeroMQ greets at once; a connection held this long without a greeting is taken as an answer too.
PROBE_TIMEOUT_S = 1.0
# Shell and control connections are taken (they wait in the listen backlog until then) once
# IOPub has had a connection for SUBSCRIPTION_SETTLE_S, time for that frontend's subscription
# to reach the kernel, or after IOPUB_HEAD_START_S without one: more than ZeroMQ's reconnect
# interval (100 ms plus up to 100 ms of jitter), so that every frontend already trying has
# connected its IOPub.
SUBSCRIPTION_SETTLE_S = 0.05
IOPUB_HEAD_START_S = 0.25
LAST_TO_OPEN = ("shell_port", "control_port")
# How long a restarted kernel waits for the previous launcher to let go of the connection's
# ports, and how often it tries them meanwhile.
PORT_WAIT_S = 3.0
PORT_RETRY_INTERVAL_S = 0.02
# How long a connection to a spare port may take to reach it (it does at once, locally).
STALE_PROBE_TIMEOUT_S = 0.2
# How many ports below the ephemeral range spare ports are drawn from.
SPARE_RANGE = 8000


def hold_port(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:``port``, not listening: connecting to it is refused and no other
    program, of any user, can bind the port.

    It binds with SO_REUSEADDR, so that the connections a previous launcher left in TIME_WAIT
    on the port (a restart reuses the ports) do not stand in the way, then clears it: Linux lets
    any user bind a port whose holders all have SO_REUSEADDR and none listens.
    """
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", port))
    except OSError:
        holder.close()
        raise
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    return holder


def listen_on_held(holder: socket.socket) -> None:
    """Listen on a port held by :func:`hold_port`.

    ``listen`` checks the port against lingering TIME_WAIT connections again, so SO_REUSEADDR
    is set back just before; once the socket listens no other socket can bind the port.
    """
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.listen(64)


def translated_ports() -> frozenset[int]:
    """The host ports that a netfilter rule translates (DNAT) on this machine, dormant rules included.

    Rootful Podman 4.3's netavark can delete the jump to a removed container's port translation
    but leave the translation itself in its chain; it wakes up when the same port is published
    again, ahead of the new container's rule, and every connection goes to the dead address.
    Such ports are no spare ports. Only root can read the rules, and only rootful engines write them.
    """
    if os.geteuid() != 0:
        return frozenset()
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    iptables = shutil.which("iptables", path=search)
    if iptables is None:
        return frozenset()
    try:
        rules = subprocess.run([iptables, "-t", "nat", "-S"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return dnat_ports(rules)


def dnat_ports(rules: str) -> frozenset[int]:
    """The ports named by ``--dport`` in the DNAT rules of ``iptables -S`` output."""
    return frozenset(
        int(match.group(1)) for line in rules.splitlines() if "-j DNAT" in line for match in re.finditer(DPORT, line)
    )


DPORT = r"--dport (\d+)\b"


def hold_spare_port(avoid: frozenset[int] = frozenset()) -> socket.socket:
    """Hold a free port below the ephemeral range, for the engine to publish a kernel port on.

    Jupyter picks kernel ports in the ephemeral range, so a spare port from below it is never
    another kernel's connection port, even one not held yet. It is bound without SO_REUSEADDR,
    so that no other launcher takes it too, and given SO_REUSEADDR after, so that the engine's
    proxy (a Go listener, which sets it) can still listen there. A port whose connections do
    not reach it is translated elsewhere (see :func:`reaches_itself`) and is passed over, and
    so are the ports in ``avoid`` (:func:`translated_ports`).
    """
    low = _ephemeral_low()
    for _ in range(500):
        port = low - 1 - int.from_bytes(os.urandom(2), "big") % SPARE_RANGE
        if port in avoid:
            continue
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", port))
        except OSError:
            holder.close()
            continue
        if not reaches_itself(holder):
            holder.close()
            continue
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return holder
    raise OSError(f"no free port between {low - SPARE_RANGE} and {low - 1}")


def reaches_itself(holder: socket.socket) -> bool:
    """Whether a connection to the port that ``holder`` holds reaches ``holder`` itself.

    It does not where netfilter translates the port elsewhere: rootful Podman's network
    backend leaves a container's port translation behind when ``podman run`` is killed midway,
    or leaves it when removing one (netavark 1.4), and every connection
    to that port goes to another address (hanging, or refused there), whoever publishes it
    next. A rootless launcher cannot read the rules; this sees what they do. ``holder`` listens
    for the probe and is bound but not listening again afterwards.
    """
    holder.listen(1)
    holder.settimeout(STALE_PROBE_TIMEOUT_S)
    try:
        probe = socket.create_connection(("127.0.0.1", holder.getsockname()[1]), timeout=STALE_PROBE_TIMEOUT_S)
        with probe:
            address = probe.getsockname()
            accepted, peer = holder.accept()
        with accepted:  # the probe closed first: no TIME_WAIT on the port stands in the proxy's way
            accepted.settimeout(STALE_PROBE_TIMEOUT_S)
            accepted.recv(1)
        return peer == address
    except OSError:
        return False
    finally:
        holder.settimeout(None)
        holder.shutdown(socket.SHUT_RD)  # stops listening; the port stays bound


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as handle:
            return max(int(handle.read().split()[0]), 1024 + SPARE_RANGE)
    except (OSError, ValueError, IndexError):
        return 32768


def kernel_answers(address: Address) -> bool:
    """Whether the kernel listens behind its published ``address`` (a port on 127.0.0.1, or the
    Unix socket of an SSH forward): the proxy or forward does not drop a connection to it.

    A connection that is not even established in time is no answer: rootful Podman translates
    the port to the container's address before the container's network is up, and its SYN is
    lost. An established connection that stays silent is taken as one (a kernel that does not
    greet first).
    """
    probe = upstream_socket(address)
    with probe:
        probe.settimeout(PROBE_TIMEOUT_S)
        try:
            probe.connect(socket_address(address))
        except OSError:
            return False
        try:
            return bool(probe.recv(1))
        except TimeoutError:
            return True
        except OSError:
            return False


class PortRelay:
    """Stands in front of one kernel's ``ports`` (the connection file's, by key).

    Creating it holds a spare port for each (``published_ports``, for the engine to publish
    the kernel on); :meth:`hold_connection_ports` holds the connection file's ports before the
    container starts, and :meth:`start` relays them, in one daemon thread, once the kernel
    answers. Should listening fail, ``error`` says why and ``failed`` (a file descriptor to
    poll) becomes readable.
    """

    def __init__(self, ports: dict[str, int], spares: bool = True):
        """Without ``spares`` (a remote engine's kernel), the engine picks the published ports and
        tells the relay later (:meth:`relay_to`); ``published_ports`` are empty until then."""
        self.ports = ports
        self._spares: dict[str, socket.socket] = {}
        if spares:
            avoid = translated_ports()
            self._spares = {key: hold_spare_port(avoid) for key in ports}
        self.published_ports: dict[str, Address] = {
            key: self._spares[key].getsockname()[1] if spares else "" for key in ports
        }
        self._held: dict[str, socket.socket] = {}
        self._when_open: Callable[[], None] | None = None
        self.error = ""
        self.failed, self._failed_write = os.pipe2(os.O_CLOEXEC)

    def hold_connection_ports(self, wait_s: float = PORT_WAIT_S) -> None:
        """Hold the connection file's ports, refusing connections for now, or say which another program has.

        A restart reuses the ports, and the previous launcher holds them until it has exited:
        taken ports are tried again for up to ``wait_s`` seconds.
        """
        deadline = time.monotonic() + wait_s
        while True:
            taken = []
            for key, port in self.ports.items():
                if key in self._held:
                    continue
                try:
                    self._held[key] = hold_port(port)
                except PermissionError:
                    raise PodkernelError(
                        f"port {port} of this kernel is a privileged port this user may not use: "
                        "restart the kernel so that Jupyter picks new ports"
                    ) from None
                except OSError:
                    taken.append(port)
            if not taken:
                return
            if time.monotonic() >= deadline:
                raise PodkernelError(
                    f"port(s) {', '.join(map(str, taken))} of this kernel are taken by another program: "
                    "restart the kernel so that Jupyter picks new ports, or stop that program"
                )
            time.sleep(PORT_RETRY_INTERVAL_S)

    def relay_to(self, published_ports: dict[str, Address]) -> None:
        """Forward to ports a container publishes already (a warm one's), and let go of the spare ones."""
        for spare in self._spares.values():
            spare.close()
        self._spares = {}
        self.published_ports = dict(published_ports)

    def when_open(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the relay's thread) once the kernel answers and its ports listen."""
        self._when_open = callback

    def start(self) -> None:
        """Let go of the spare ports, where the engine's proxy listens now, and relay once the kernel answers."""
        for spare in self._spares.values():
            spare.close()
        _, most = resource.getrlimit(resource.RLIMIT_NOFILE)  # each relayed connection takes two
        resource.setrlimit(resource.RLIMIT_NOFILE, (most, most))
        threading.Thread(target=self._serve, name="podkernel-relay", daemon=True).start()

    def _serve(self) -> None:
        try:
            self._relay()
        except Exception as error:  # any failure here leaves the kernel unreachable: say so
            self._fail(f"the port relay failed ({error})")

    def _fail(self, message: str) -> None:
        self.error = f"{message}: restart the kernel"
        os.write(self._failed_write, b"!")

    def _relay(self) -> None:
        self._wait_for_kernel()
        try:
            for holder in self._held.values():
                listen_on_held(holder)
        except OSError as error:
            self._fail(f"cannot listen on this kernel's ports ({error.strerror})")
            return
        if self._when_open is not None:
            self._when_open()
        splicer = Splicer(self.published_ports.__getitem__)
        for key in self._held:
            if key not in LAST_TO_OPEN:
                splicer.listen(self._held[key], key)
        deadline = time.monotonic() + IOPUB_HEAD_START_S
        if splicer.run(until=deadline, watch="iopub_port"):
            splicer.run(until=min(deadline, time.monotonic() + SUBSCRIPTION_SETTLE_S))
        for key in LAST_TO_OPEN:
            if key in self._held:
                splicer.listen(self._held[key], key)
        splicer.run()

    def _wait_for_kernel(self) -> None:
        started = time.monotonic()
        waiting = set(self.published_ports.values())
        while waiting:
            waiting = {port for port in waiting if not kernel_answers(port)}
            if waiting:
                slow = time.monotonic() - started > SLOW_PROBE_AFTER_S
                time.sleep(SLOW_PROBE_INTERVAL_S if slow else PROBE_INTERVAL_S)

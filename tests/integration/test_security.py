"""Nobody but the kernel's user gets at it: another local user tries to take its ports and to
exhaust the launcher's descriptors (tests/integration/intruder.py, running as that other user)."""

import socket
import threading
import time

import pytest
from jupyter_client.manager import KernelManager

from helpers import cpu_seconds
from kernel_helpers import DEBIAN_IMAGE, execute, running_kernel

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_another_user_cannot_take_the_ports_while_the_kernel_starts(install, intruder, engine, request):
    """The ports are held from the launcher's first moments; a port held with SO_REUSEADDR and not
    listening could be bound by any user, who would then receive the frontend's connections."""
    if engine == "docker":
        request.getfixturevalue("docker_host")
    # A kernel that takes 4 s to listen: its ports are held, not listening, all that time.
    slow_kernel = ["sh", "-c", 'sleep 4; exec python3 -m ipykernel_launcher -f "$PODKERNEL_CONNECTION_FILE"']
    manager = KernelManager(kernel_name=install("--engine", engine, DEBIAN_IMAGE, "--", *slow_kernel))
    manager.start_kernel()
    try:
        ports = [getattr(manager, name) for name in PORT_NAMES]
        wait_until_held(ports)
        answer = intruder.request(take=ports, seconds=3)
        assert answer["took"] == [], f"user {answer['uid']} took port(s) {answer['took']} of the kernel"
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        assert execute(client, "print(6 * 7)")[1].strip() == "42"
        assert intruder.request(take=ports, seconds=0.5)["took"] == []  # nor once it runs
        client.stop_channels()
    finally:
        manager.shutdown_kernel()


def wait_until_held(ports: list[int], timeout: float = 60) -> None:
    """Until the launcher holds every port: binding it fails, and connecting to it is refused."""
    deadline = time.monotonic() + timeout
    while True:
        held = 0
        for port in ports:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    held += 1
        if held == len(ports):
            return
        assert time.monotonic() < deadline, "the launcher did not hold the kernel's ports"
        time.sleep(0.01)


def test_a_flood_of_connections_from_another_user_does_not_break_the_launcher(install, intruder):
    with running_kernel(install(DEBIAN_IMAGE)) as (manager, client):
        launcher = manager.provisioner.process.pid
        flood = threading.Thread(
            target=intruder.request, kwargs={"flood": manager.shell_port, "count": 5000, "seconds": 6}
        )
        before = cpu_seconds(launcher)
        flood.start()
        time.sleep(3)
        # The frontend's own connections keep working, and the launcher does not spin.
        assert execute(client, "print('during the flood')", timeout=30)[1].strip() == "during the flood"
        flood.join()
        assert cpu_seconds(launcher) - before < 4, "the launcher spun during the flood"
        assert manager.is_alive()
        # After it, a new frontend connects as before.
        other = manager.client()
        other.start_channels()
        try:
            other.wait_for_ready(timeout=30)
            assert execute(other, "print('after the flood')")[1].strip() == "after the flood"
        finally:
            other.stop_channels()
